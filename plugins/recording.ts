// Every authenticated request to a front end opens or continues a session and writes an event
// before its response leaves the gateway (record, then release). If the event cannot be
// written the client gets a retryable 503 instead of the response: an unrecorded round trip
// is never released. Failed authentications are recorded too, without a session.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_STORE_UNAVAILABLE } from '../src/errors.js'
import type { RoundTrip } from '../src/pipeline.js'
import { SessionRecorder, type EventOutcome } from '../src/recording/sessions.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks a front-end route: its requests are recorded as session events. */
    frontEnd?: string
  }
  interface FastifyRequest {
    /** What the pipeline did for this request; front ends fill it, recording writes it. */
    roundTrip: RoundTrip
    /** Front ends with their own session notion (connector sessions) set this; else token-based. */
    sessionKey: string | null
    /** The connection the request addressed, once the front end resolved it. */
    connectionName: string | null
  }
  interface FastifyInstance {
    recorder: SessionRecorder
    recordAuthFailure: (request: FastifyRequest, err: Error & { code?: string }) => Promise<void>
  }
}

/** A SQL API-style session lives as long as its bearer token: key it by the token's hash. */
export function tokenSessionKey (request: FastifyRequest, frontEnd: string): string | null {
  const header = request.headers.authorization
  if (header === undefined) return null
  return `${frontEnd}:${createHash('sha256').update(header).digest('base64url')}`
}

function outcomeOf (statusCode: number, trip: RoundTrip): EventOutcome {
  if (statusCode === 401) return 'unauthenticated'
  if (trip.decision?.effect === 'deny' || trip.errorCode === 'SLUICE_POLICY_DENIED') return 'denied'
  if (trip.errorCode === 'SLUICE_APPROVAL_REQUIRED') return 'held'
  return statusCode < 400 ? 'ok' : 'error'
}

export function createRecordHook (recorder: SessionRecorder) {
  return async function recordRoundTrip (request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const frontEnd = request.routeOptions.config.frontEnd
    const principal = request.principal
    // Unauthenticated requests were recorded by recordAuthFailure; public routes are not events.
    if (frontEnd === undefined || principal === null || principal === undefined) return payload
    const trip = request.roundTrip
    try {
      const session = await recorder.openOrContinue({
        sessionKey: request.sessionKey ?? tokenSessionKey(request, frontEnd) ?? `${frontEnd}:${request.id}`,
        principal,
        connection: request.connectionName ?? undefined,
        frontEnd,
        sourceIp: request.ip,
        userAgent: request.headers['user-agent']
      })
      await recorder.writeEvent({
        sessionId: session.id,
        requestId: request.id,
        principalSubject: principal.subject,
        connection: request.connectionName ?? undefined,
        frontEnd,
        route: request.routeOptions.url ?? request.url,
        method: request.method,
        statusCode: reply.statusCode,
        outcome: outcomeOf(reply.statusCode, trip),
        errorCode: trip.errorCode,
        durationMs: reply.elapsedTime,
        sourceIp: request.ip,
        userAgent: request.headers['user-agent'],
        sqlText: trip.sql,
        analysis: trip.analysis,
        decision: trip.decision?.effect,
        ruleId: trip.decision?.ruleId,
        reason: trip.decision?.reason,
        upstreamId: trip.upstreamId,
        rowsReturned: trip.rowsReturned
      })
    } catch (err) {
      request.log.error({ err: (err as Error).message }, 'recording failed; response withheld')
      const refusal = new ERR_STORE_UNAVAILABLE('the round trip could not be recorded')
      reply.code(503).header('retry-after', '5').type('application/json; charset=utf-8')
      reply.removeHeader('content-length')
      return JSON.stringify({ code: refusal.code, message: refusal.message })
    }
    return payload
  }
}

async function recordingPlugin (fastify: FastifyInstance): Promise<void> {
  const recorder = new SessionRecorder(fastify.store)
  fastify.decorate('recorder', recorder)
  fastify.decorateRequest('roundTrip', null as unknown as RoundTrip)
  fastify.decorateRequest('sessionKey', null)
  fastify.decorateRequest('connectionName', null)

  fastify.addHook('onRequest', async function startRoundTrip (request) {
    request.roundTrip = {}
  })
  fastify.addHook('onSend', createRecordHook(recorder))

  fastify.decorate('recordAuthFailure', async function recordAuthFailure (request: FastifyRequest, err: Error & { code?: string }) {
    const frontEnd = request.routeOptions.config.frontEnd
    if (frontEnd === undefined) return
    // A forged or expired token is exactly what an auditor looks for; a store failure here
    // must not turn a 401 into something else, so it is logged and the 401 stands.
    try {
      await recorder.writeEvent({
        requestId: request.id,
        frontEnd,
        route: request.routeOptions.url ?? request.url,
        method: request.method,
        statusCode: 401,
        outcome: 'unauthenticated',
        errorCode: err.code,
        reason: err.message,
        durationMs: 0,
        sourceIp: request.ip,
        userAgent: request.headers['user-agent']
      })
    } catch (recordErr) {
      request.log.error({ err: (recordErr as Error).message }, 'could not record a failed authentication')
    }
  })
}

export default fp(recordingPlugin, { name: 'sluice-recording', fastify: '5.x', dependencies: ['sluice-store'] })
