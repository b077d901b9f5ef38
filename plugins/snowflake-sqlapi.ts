// SQL API v2 front end (specs/snowflake-sqlapi.yaml): POST /api/v2/statements (sync, async=true),
// GET /api/v2/statements/{handle} (status, ?partition=N), POST …/{handle}/cancel. Bearer OIDC
// via sluice-auth. `/api/v2/…` uses the default Snowflake connection; `/snowflake/<connection>/
// api/v2/…` names one. Upstream it runs on pooled connector sessions of the caller's own, in the
// chosen context: a session is never reused by another principal (pool.ts).
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_NOT_FOUND, ERR_UNKNOWN_CONNECTION, isSluiceError } from '../src/errors.js'
import type { Principal } from '../src/identity/principal.js'
import type { PrepareInput } from '../src/warehouses/snowflake/execute.js'
import { ownerKey, type Handle } from '../src/warehouses/snowflake/handles.js'
import { settle, submit as submitStatement } from '../src/warehouses/snowflake/submit.js'
import { cancelHeld, pollHeld, waitingFor, type HeldPoll } from '../src/warehouses/snowflake/held.js'
import { fingerprint } from '../src/warehouses/snowflake/idempotency.js'
import { statementParameters } from '../src/warehouses/snowflake/parameters.js'
import { allowedContext } from '../src/warehouses/snowflake/runtime.js'
import { statusQuery, submitBody, submitQuery } from '../src/warehouses/snowflake/sqlapi-request.js'
import {
  failureStatus, linkHeader, partitionCount, queryStatus, resultSetEncoder, sqlApiRefusal, statusBase
} from '../src/warehouses/snowflake/sqlapi-wire.js'
import { errorInfo } from '../src/warehouses/snowflake/wire.js'
import { refuseOtherMethods } from './method-not-allowed.js'
import { catalogueErrorsAs, gzipStream, lenientJsonBodies, releaseText } from './snowflake-http.js'

export const FRONT_END = 'snowflake-sqlapi'

interface Params { connection?: string, handle?: string }
// Checked by sqlapi-request.ts: a repeated parameter arrives as an array.
type Req = FastifyRequest<{ Params: Params, Querystring: Record<string, unknown>, Body: unknown }>

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function prefixOf (request: Req): string {
  return request.params.connection === undefined ? '' : `/snowflake/${encodeURIComponent(request.params.connection)}`
}

function statusUrl (request: Req, id: string): string {
  return `${prefixOf(request)}/api/v2/statements/${id}`
}

/** Sends JSON, gzipped when the client accepts it (the spec's Accept-Encoding: gzip). */
async function sendJson (request: FastifyRequest, reply: FastifyReply, status: number, body: unknown): Promise<FastifyReply> {
  return await sendJsonText(request, reply, status, JSON.stringify(body))
}

/** A body already encoded (a partition's ResultSet), gzip-compressed when the client accepts it. */
async function sendJsonText (request: FastifyRequest, reply: FastifyReply, status: number, text: string | Buffer): Promise<FastifyReply> {
  reply.code(status).type('application/json')
  if (/\bgzip\b/i.test(String(request.headers['accept-encoding'] ?? ''))) {
    request.roundTrip.bytesReturned ??= Buffer.byteLength(text)
    return await reply.header('content-encoding', 'gzip').send(gzipStream(text))
  }
  return await reply.send(text)
}

const UNAVAILABLE_RETRY_AFTER_SECONDS = 5

/** Spec error bodies: 422 QueryFailureStatus for statement failures, plain code/message otherwise. */
async function sendError (request: Req, reply: FastifyReply, err: unknown, handle?: { id: string, createdOn: number }): Promise<FastifyReply> {
  const info = errorInfo(err, request.id, releaseText(request))
  request.roundTrip.errorCode = info.catalogueCode
  // The event records what the client was told: released text, never the upstream's own.
  request.roundTrip.errorMessage = info.message
  if (!isSluiceError(err)) request.log.error({ err }, 'snowflake SQL API request failed')
  const status = (err as { statusCode?: number }).statusCode ?? 500
  // Nothing reached the warehouse: the spec's 503, which the clients retry after Retry-After.
  if (info.catalogueCode === 'SLUICE_UPSTREAM_UNAVAILABLE') {
    reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS))
    return await sendJson(request, reply, 503, { code: info.code, message: info.message })
  }
  // A syntax error is a statement failure too: Snowflake answers it 422 QueryFailureStatus.
  if (status === 422 || status === 403 || info.catalogueCode === 'SLUICE_SQL_SYNTAX' || info.catalogueCode.startsWith('SLUICE_UPSTREAM')) {
    const h = handle ?? { id: randomUUID(), createdOn: Date.now() }
    return await sendJson(request, reply, 422, failureStatus(info, h, statusUrl(request, h.id)))
  }
  return await sendJson(request, reply, status, { code: info.code, message: info.message })
}

/**
 * A round trip that could not be recorded, in the spec's shapes: store down is 503 (the
 * clients retry it; nothing ran), a statement that ran is a 422 QueryFailureStatus (not retried).
 */
export function sqlApiRecordingFailure (err: Error & { code: string }): { statusCode: number, contentType: string, body: string } {
  const info = errorInfo(err, '')
  if (err.code !== 'SLUICE_RESULT_UNRECORDED') {
    return { statusCode: 503, contentType: 'application/json', body: JSON.stringify({ code: info.code, message: info.message }) }
  }
  const id = randomUUID()
  return { statusCode: 422, contentType: 'application/json', body: JSON.stringify(failureStatus(info, { id, createdOn: Date.now() }, `/api/v2/statements/${id}`)) }
}

function settingsFor (fastify: FastifyInstance, request: Req) {
  const settings = fastify.snowflake.select(request.params.connection)
  // A named connection must exist; only the unprefixed path falls back to the default.
  if (settings === undefined || (request.params.connection !== undefined && settings.name !== request.params.connection)) {
    throw new ERR_UNKNOWN_CONNECTION(request.params.connection ?? '(default)')
  }
  request.connectionName = settings.name
  return settings
}

export function createSubmitHandler (fastify: FastifyInstance) {
  return async function submit (request: Req, reply: FastifyReply) {
    const principal = request.principal as Principal
    const runtime = fastify.snowflake
    try {
      const settings = settingsFor(fastify, request)
      const query = submitQuery(request.query)
      const body = submitBody(request.body ?? {})
      // Recorded as sent, also when it is refused before admission (a reused requestId).
      request.roundTrip.sql = body.statement
      const timeout = body.timeout
      const { count, forwarded } = statementParameters(body.parameters, 'lower')
      if (timeout > 0) forwarded.STATEMENT_TIMEOUT_IN_SECONDS = timeout
      const context = allowedContext(settings, body.context)
      const input: PrepareInput = {
        frontEnd: FRONT_END,
        requestId: request.id,
        principal,
        settings,
        upstream: runtime.upstream(settings),
        context,
        sql: body.statement,
        parameters: forwarded,
        statementCount: count,
        client: { sourceIp: request.ip, userAgent: request.headers['user-agent'], application: 'sql-api' },
        refuse: sqlApiRefusal
      }
      if (body.bindings !== undefined) input.bindings = body.bindings
      // Snowflake's EXPLAIN, asked only if a rule or an approval's preview needs it.
      input.estimateOn = async () => {
        const session = await input.upstream.lease(ownerKey(principal), context)
        return { session, release: () => { input.upstream.release(session) } }
      }
      const deps = { pipeline: fastify.pipeline, statements: runtime.handles, idempotency: runtime.idempotency, approvals: fastify.approvals }
      const { handle, submitted } = await submitStatement(deps, input, {
        ...(query.requestId === undefined ? {} : { requestId: query.requestId }),
        fingerprint: fingerprint({ frontEnd: FRONT_END, sql: body.statement, rest: { bindings: body.bindings, parameters: forwarded, count, context } }),
        async: query.async,
        timeoutSeconds: timeout,
        // A held statement waits for its approval behind statementStatusUrl.
        hold: true,
        // A pooled session of the caller's own, in the requested context (pool.ts).
        session: async () => {
          const session = await input.upstream.lease(ownerKey(principal), context)
          return { session, release: () => { input.upstream.release(session) } }
        }
      }, request.roundTrip)
      // A retry of an async submission is not held for the sync wait: 202 while it runs.
      if (!submitted) return await answer(request, reply, handle, query.async ? 0 : settings.syncWaitSeconds, 0, query.nullable, false)
      if (query.async && handle.state !== 'held') {
        request.roundTrip.pending = true
        return await sendJson(request, reply, 202, queryStatus(handle, statusUrl(request, handle.id)))
      }
      return await answer(request, reply, handle, settings.syncWaitSeconds, 0, query.nullable, true)
    } catch (err) {
      return await sendError(request, reply, err)
    }
  }
}

/**
 * Waits up to `waitSeconds`; 202 while running, the spec's status for every other outcome.
 * `submitted`: this request submitted the statement (a retryable failure is answered as such).
 */
async function answer (request: Req, reply: FastifyReply, found: Handle, waitSeconds: number, partition: number, nullable: boolean, submitted: boolean): Promise<FastifyReply> {
  const statements = request.server.snowflake.handles
  if (found.state === 'held') {
    const url = statusUrl(request, found.id)
    // Held a moment ago by this request: the client polls statementStatusUrl until someone decides.
    if (submitted) return await sendJson(request, reply, 202, { ...queryStatus(found, url), message: waitingFor(found.approvalId ?? '', request.roundTrip) })
    const settings = settingsOf(request, found)
    const out = await pollHeld(heldDeps(request), found, heldPoll(request, settings), request.roundTrip, 0)
    if (out.state === 'waiting') return await sendJson(request, reply, 202, { ...queryStatus(found, url), message: out.message })
    if (out.state === 'elsewhere') {
      request.roundTrip.pending = true
      return await sendJson(request, reply, 202, queryStatus(found, url))
    }
    // Released: a run that started now gets the connection's sync wait, as a submission does.
    found = out.handle
    waitSeconds = settings.syncWaitSeconds
  }
  const settled = await settle(statements, found, waitSeconds, request.roundTrip, submitted)
  const handle = settled.handle
  const url = statusUrl(request, handle.id)
  if (settled.state === 'running') return await sendJson(request, reply, 202, queryStatus(handle, url))
  if (settled.state === 'aborted') {
    if (settled.reason === 'timeout') {
      return await sendJson(request, reply, 408, { code: '000630', sqlState: '57014', message: 'Statement reached its timeout and was canceled.', ...statusBase(handle, url) })
    }
    return await sendError(request, reply, settled.error, handle)
  }
  if (settled.state === 'failed') return await sendError(request, reply, settled.error, handle)
  const result = settled.result
  const partitions = partitionCount(result)
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
    return await sendJson(request, reply, 400, { code: '000400', message: `partition ${partition} does not exist; this result has ${partitions} (0 to ${partitions - 1})` })
  }
  // Produced now: a slice of the stored first page, or an upstream chunk fetched and masked.
  const body = await statements.page(handle, partition, request.roundTrip, resultSetEncoder(handle, result, { statusUrl: url, nullAsText: !nullable }, partition))
  reply.header('link', linkHeader(url, partitions, partition))
  return await sendJsonText(request, reply, 200, body)
}

function heldDeps (request: Req) {
  const server = request.server
  return { pipeline: server.pipeline, statements: server.snowflake.handles, approvals: server.approvals }
}

/** The connection a handle names, as this gateway configures it. */
function settingsOf (request: Req, handle: Handle) {
  const settings = request.server.snowflake.select(handle.connection)
  if (settings === undefined || settings.name !== handle.connection) throw new ERR_UNKNOWN_CONNECTION(handle.connection)
  return settings
}

/** A poll of a held statement runs it, once approved, on a pooled session of the caller's own. */
function heldPoll (request: Req, settings: ReturnType<typeof settingsOf>): HeldPoll {
  const principal = request.principal as Principal
  const upstream = request.server.snowflake.upstream(settings)
  return {
    frontEnd: FRONT_END,
    requestId: request.id,
    principal,
    settings,
    upstream,
    refuse: sqlApiRefusal,
    session: async (held) => {
      const session = await upstream.lease(ownerKey(principal), held.context)
      return { session, release: () => { upstream.release(session) } }
    }
  }
}

async function ownedHandle (request: Req): Promise<Handle> {
  const id = request.params.handle ?? ''
  const handle = UUID.test(id) ? await request.server.snowflake.handles.get(id, request.principal as Principal) : undefined
  // Unknown and foreign handles answer alike: nothing confirms that a statement exists.
  if (handle === undefined) throw new ERR_NOT_FOUND(`statement ${id}`)
  return handle
}

export function createStatusHandler () {
  return async function status (request: Req, reply: FastifyReply) {
    try {
      const { partition, nullable } = statusQuery(request.query)
      const handle = await ownedHandle(request)
      request.connectionName = handle.connection
      return await answer(request, reply, handle, 0, partition, nullable, false)
    } catch (err) {
      return await sendError(request, reply, err)
    }
  }
}

export function createCancelHandler (fastify: FastifyInstance) {
  return async function cancel (request: Req, reply: FastifyReply) {
    try {
      let handle = await ownedHandle(request)
      request.connectionName = handle.connection
      request.roundTrip.sql = handle.sql
      const url = statusUrl(request, handle.id)
      // Held: the approval is withdrawn and nothing runs (unless a poll released it just now).
      if (handle.state === 'held') {
        handle = await cancelHeld({ approvals: fastify.approvals, statements: fastify.snowflake.handles }, handle, request.principal as Principal)
        if (handle.state === 'aborted') return await sendJson(request, reply, 200, { code: '000604', sqlState: '57014', message: 'successfully canceled', statementHandle: handle.id, statementStatusUrl: url })
      }
      // Cancelled in the store, which the replica running it (any of them) watches.
      if (handle.state !== 'running' || !await fastify.snowflake.handles.cancel(handle)) {
        const now = await fastify.snowflake.handles.get(handle.id, request.principal as Principal)
        return await sendJson(request, reply, 422, { message: `the statement has already finished (${now?.state ?? handle.state})`, statementHandle: handle.id, statementStatusUrl: url })
      }
      return await sendJson(request, reply, 200, { code: '000604', sqlState: '57014', message: 'successfully canceled', statementHandle: handle.id, statementStatusUrl: url })
    } catch (err) {
      return await sendError(request, reply, err)
    }
  }
}

async function snowflakeSqlApi (fastify: FastifyInstance): Promise<void> {
  await fastify.register(async function sqlApi (app) {
    lenientJsonBodies(app)
    catalogueErrorsAs(app, async (request, reply, err) => await sendError(request as Req, reply, err))
    const config = { frontEnd: FRONT_END, authenticate: true, recordingFailure: sqlApiRecordingFailure }
    for (const prefix of ['', '/snowflake/:connection']) {
      app.post(`${prefix}/api/v2/statements`, { config }, createSubmitHandler(fastify))
      app.get(`${prefix}/api/v2/statements/:handle`, { config }, createStatusHandler())
      app.post(`${prefix}/api/v2/statements/:handle/cancel`, { config }, createCancelHandler(fastify))
      // 405 with Allow (spec: 405MethodNotAllowed), after authentication, in the spec's error shape.
      refuseOtherMethods(app, `${prefix}/api/v2/statements`, ['POST'], { config })
      refuseOtherMethods(app, `${prefix}/api/v2/statements/:handle`, ['GET'], { config })
      refuseOtherMethods(app, `${prefix}/api/v2/statements/:handle/cancel`, ['POST'], { config })
    }
  })
}

export default fp(snowflakeSqlApi, {
  name: 'sluice-snowflake-sqlapi',
  fastify: '5.x',
  dependencies: ['sluice-auth', 'sluice-recording']
})
