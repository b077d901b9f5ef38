// /admin/v1: the auditor's window on the trail — search sessions and events, replay a
// session's timeline with its captured results, export, verify. Every route needs an OIDC
// bearer token with the auditor role, and is itself a recorded front-end route: reading the
// audit trail leaves a trace in it (PCI DSS 10.2.1.3 asks for exactly that).
import { Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_NOT_FOUND } from '../src/errors.js'
import { refuseOtherMethods } from './method-not-allowed.js'
import { verifyStore } from '../src/recording/audit.js'
import { exportLines, type ExportFormat } from '../src/recording/export.js'
import { getEvent, searchEvents, searchSessions, sessionTimeline, type EventFilter, type SessionFilter } from '../src/recording/search.js'
import { eventQuery, exportQuery, idParams, openApiDocument, sessionQuery, timelineQuery, verifyQuery } from './admin-openapi.js'

export const ADMIN_PREFIX = '/admin/v1'
export const AUDITOR_ROLE = 'auditor'

type Paged<T> = T & { cursor?: string, limit?: number }
interface SessionsRoute { Querystring: Paged<SessionFilter> }
interface EventsRoute { Querystring: Paged<EventFilter> }
interface TimelineRoute { Params: { id: string }, Querystring: { cursor?: string, limit?: number } }
interface EventRoute { Params: { id: string } }
interface ExportRoute { Querystring: { since?: string, until?: string, format: ExportFormat } }
interface VerifyRoute { Querystring: { strict?: boolean } }

export function createAdminHandlers (fastify: FastifyInstance) {
  const store = fastify.store
  return {
    async listSessions (request: FastifyRequest<SessionsRoute>) {
      const { cursor, limit, ...filter } = request.query
      return await searchSessions(store, filter, cursor, limit)
    },

    async listEvents (request: FastifyRequest<EventsRoute>) {
      const { cursor, limit, ...filter } = request.query
      return await searchEvents(store, filter, cursor, limit)
    },

    async timeline (request: FastifyRequest<TimelineRoute>) {
      const session = await fastify.recorder.getSession(request.params.id)
      if (session === undefined) throw new ERR_NOT_FOUND(`session ${request.params.id}`)
      const page = await sessionTimeline(store, request.params.id, request.query.cursor, request.query.limit)
      return { session, ...page }
    },

    async event (request: FastifyRequest<EventRoute>) {
      const event = await getEvent(store, request.params.id)
      if (event === undefined) throw new ERR_NOT_FOUND(`event ${request.params.id}`)
      return event
    },

    async exportStream (request: FastifyRequest<ExportRoute>, reply: FastifyReply) {
      const { since, until, format } = request.query
      const lines = exportLines(store, { since, until, format, key: fastify.recording.key })
      // The first line is read before anything is sent: a refused filter or an unreachable store
      // is then an ordinary JSON error, not a CSV / NDJSON response that breaks off.
      const first = await lines.next()
      async function * withNewlines (): AsyncGenerator<string> {
        if (first.done === true) return
        yield `${first.value}\n`
        for await (const line of lines) yield `${line}\n`
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, '-')
      reply.type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      reply.header('content-disposition', `attachment; filename="sluice-audit-${stamp}.${format}"`)
      return reply.send(Readable.from(withNewlines()))
    },

    async verify (request: FastifyRequest<VerifyRoute>) {
      return await verifyStore(store, fastify.recording.key, { strict: request.query.strict === true })
    }
  }
}

async function adminPlugin (fastify: FastifyInstance): Promise<void> {
  const handlers = createAdminHandlers(fastify)
  const guard = fastify.requireRole(AUDITOR_ROLE)
  const config = { authenticate: true, frontEnd: 'admin' }
  const document = openApiDocument()

  await fastify.register(async function adminRoutes (api) {
    // The description holds no data; tools fetch it without a token.
    api.get('/openapi.json', async function openapi () { return document })
    // Authenticate (onRequest), authorize (preValidation), then validate: a caller without the
    // auditor role is refused before the schema is checked, so it learns nothing of the API.
    const guarded = { config, preValidation: guard }
    api.get<SessionsRoute>('/sessions', { ...guarded, schema: { querystring: sessionQuery } }, handlers.listSessions)
    api.get<TimelineRoute>('/sessions/:id/timeline', { ...guarded, schema: { params: idParams, querystring: timelineQuery } }, handlers.timeline)
    api.get<EventsRoute>('/events', { ...guarded, schema: { querystring: eventQuery } }, handlers.listEvents)
    api.get<EventRoute>('/events/:id', { ...guarded, schema: { params: idParams } }, handlers.event)
    api.get<ExportRoute>('/export', { ...guarded, schema: { querystring: exportQuery } }, handlers.exportStream)
    api.get<VerifyRoute>('/verify', { ...guarded, schema: { querystring: verifyQuery } }, handlers.verify)
    for (const path of ['/sessions', '/sessions/:id/timeline', '/events', '/events/:id', '/export', '/verify']) {
      refuseOtherMethods(api, path, ['GET'], { config, authorize: guard, label: `${ADMIN_PREFIX}${path}` })
    }
  }, { prefix: ADMIN_PREFIX })
}

export default fp(adminPlugin, {
  name: 'sluice-admin',
  fastify: '5.x',
  dependencies: ['sluice-auth', 'sluice-roles', 'sluice-recording']
})
