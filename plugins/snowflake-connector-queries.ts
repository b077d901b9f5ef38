// Statement routes of the connector protocol: query-request (sync, asyncExec, multi-statement),
// GET /queries/{id}/result (333333 while running), both abort-request forms, monitoring and the
// result chunks Sluice serves in place of cloud storage. Registered inside the session-token
// context of snowflake-connector.ts; query ids are Sluice's and belong to their principal.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_BAD_REQUEST, ERR_NOT_FOUND } from '../src/errors.js'
import type { ExecuteRequest } from '../src/warehouses/snowflake/execute.js'
import type { Handle } from '../src/warehouses/snowflake/handles.js'
import { sliceOf } from '../src/warehouses/snowflake/manifest.js'
import { settle, submit as submitStatement } from '../src/warehouses/snowflake/submit.js'
import { cancelHeld, pollHeld, waitingFor, type HeldPoll } from '../src/warehouses/snowflake/held.js'
import { connectorRequestId, fingerprint, resubmitText } from '../src/warehouses/snowflake/idempotency.js'
import { statementParameters } from '../src/warehouses/snowflake/parameters.js'
import type { ConnectorSession } from '../src/warehouses/snowflake/sessions.js'
import { cancelAllResult, cancelsOwnSession } from '../src/warehouses/snowflake/housekeeping.js'
import { resultFormat } from '../src/warehouses/snowflake/result-format.js'
import { chunkEncoder, connectorOk, errorInfo, queryResponseData } from '../src/warehouses/snowflake/wire.js'
import { FRONT_END, sendConnectorError } from './snowflake-connector.js'
import { releaseText, sendCompressible } from './snowflake-http.js'

interface QueryBody {
  sqlText?: unknown
  bindings?: Record<string, unknown>
  parameters?: Record<string, unknown>
  asyncExec?: boolean
  describeOnly?: boolean
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function executeRequestOf (request: FastifyRequest, session: ConnectorSession, body: QueryBody): ExecuteRequest {
  if (typeof body.sqlText !== 'string') throw new ERR_BAD_REQUEST('sqlText is required')
  const { count, forwarded, formats } = statementParameters(body.parameters)
  const req: ExecuteRequest = {
    frontEnd: FRONT_END,
    requestId: request.id,
    principal: session.principal,
    settings: session.settings,
    upstream: session.upstream,
    session: session.upstreamSession,
    context: session.upstreamSession.context,
    sql: body.sqlText,
    parameters: forwarded,
    formats,
    statementCount: count,
    client: { sourceIp: request.ip, userAgent: request.headers['user-agent'], application: session.application },
    sessionId: `snowflake:${session.id}`
  }
  if (body.bindings !== undefined && body.bindings !== null) req.bindings = body.bindings
  if (body.describeOnly === true) req.describeOnly = true
  // Snowflake's EXPLAIN on the login's own session, asked only if a rule or a preview needs it.
  req.estimateOn = async () => ({ session: session.upstreamSession, release: () => {} })
  return req
}

function asyncAnswer (handle: Pick<Handle, 'id'>): Record<string, unknown> {
  return {
    code: '333334',
    message: 'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.',
    success: true,
    data: { queryId: handle.id, getResultUrl: `/queries/${handle.id}/result`, queryAbortsAfterSecs: 300, progressDesc: null }
  }
}

export function createQueryHandler (fastify: FastifyInstance) {
  return async function queryRequest (request: FastifyRequest<{ Body: QueryBody, Querystring: Record<string, unknown> }>, reply: FastifyReply) {
    const session = request.snowflakeSession as ConnectorSession
    const body = request.body ?? {}
    try {
      // Both drivers resend a query-request with the same requestId when they retry it (adding
      // retryCount, retryReason, request_guid): the retry is answered from the first one's handle.
      const requestId = connectorRequestId(request.query.requestId)
      const req = executeRequestOf(request, session, body)
      request.roundTrip.sql = req.sql
      const asyncExec = body.asyncExec === true
      const idempotency = fastify.snowflake.idempotency
      const connection = session.settings.name
      const respond = async (handle: Handle, submitted = false): Promise<FastifyReply> => {
        if (!asyncExec) return await answer(request, reply, handle, session, submitted)
        request.roundTrip.pending = true
        return await reply.send(asyncAnswer(handle))
      }
      if (requestId !== undefined && req.sql === resubmitText(requestId)) {
        // snowflake-sdk resubmitting by request id: the result of whatever ran under it, if anything did.
        const bound = await idempotency.bound(session.principal, connection, requestId)
        if (bound !== undefined) return await respond(bound)
      }
      const fp = fingerprint({
        frontEnd: FRONT_END,
        sql: req.sql,
        rest: { bindings: req.bindings, parameters: req.parameters, count: req.statementCount, describeOnly: req.describeOnly === true }
      })
      const deps = { pipeline: fastify.pipeline, statements: fastify.snowflake.handles, idempotency, approvals: fastify.approvals }
      const { handle, submitted } = await submitStatement(deps, req, {
        ...(requestId === undefined ? {} : { requestId }),
        fingerprint: fp,
        async: asyncExec,
        sessionKey: `snowflake:${session.id}`,
        // A held statement waits for its approval behind getResultUrl (333333).
        hold: true,
        // The login's own upstream session: its state (USE, temp tables) is the client's.
        session: async () => ({ session: session.upstreamSession, release: () => {} })
      }, request.roundTrip)
      return await respond(handle, submitted)
    } catch (err) {
      return sendConnectorError(request, reply, err)
    }
  }
}

/**
 * Waits for the statement up to the connection's sync wait, then answers 333333 (poll again).
 * `submitted`: this request submitted the statement (a retryable failure is answered as such).
 */
export async function answer (request: FastifyRequest, reply: FastifyReply, found: Handle, session: ConnectorSession, submitted = false): Promise<FastifyReply> {
  const statements = request.server.snowflake.handles
  const trip = request.roundTrip
  if (found.state === 'held') {
    // Held a moment ago by this request: the drivers poll getResultUrl, and each poll waits
    // up to the sync wait for a decision (snowflake-sdk polls again at once).
    if (submitted) return await reply.send(inProgress(found, waitingFor(found.approvalId ?? '', trip)))
    const out = await pollHeld(heldDeps(request), found, heldPoll(request, session), trip, session.settings.syncWaitSeconds)
    if (out.state === 'waiting') return await reply.send(inProgress(found, out.message))
    // Released by a poll on another replica that has not started it yet: wait for that.
    found = out.state === 'elsewhere' ? await statements.waitReleased(found, session.settings.syncWaitSeconds) : out.handle
    if (found.state === 'held') {
      trip.pending = true
      return await reply.send(inProgress(found))
    }
  }
  const settled = await settle(statements, found, session.settings.syncWaitSeconds, trip, submitted)
  const handle = settled.handle
  if (settled.state === 'running') return await reply.send(inProgress(handle))
  if (settled.state !== 'succeeded') return sendConnectorError(request, reply, settled.error, handle.id)
  const result = settled.result
  const first = result.manifest.pages[0]
  // What this answer releases: the inline page (chunks are recorded as they are downloaded),
  // unless this request released it already (a capture may be off for the connection).
  if (trip.rowsReturned === undefined && first !== undefined) request.server.pipeline.served(handle.connection, result.manifest.schema, sliceOf(result, first), trip)
  const links = {
    baseUrl: `${request.protocol}://${request.host}`,
    token: statements.tokens.issue(handle),
    format: resultFormat(session.formats, result.manifest.formats)
  }
  const body = connectorOk(queryResponseData(handle, result, links, session.upstreamSession.parameters))
  // A result cut at its row limit says so where Snowflake puts a statement's message.
  if (result.manifest.notice !== undefined) body.message = result.manifest.notice
  return await sendCompressible(request, reply, JSON.stringify(body))
}

/** Snowflake's "query in progress": both drivers GET getResultUrl until the answer changes. */
function inProgress (handle: Pick<Handle, 'id'>, message = 'Query execution in progress. Poll the result URL.'): Record<string, unknown> {
  return {
    code: '333333',
    message,
    success: true,
    data: { queryId: handle.id, getResultUrl: `/queries/${handle.id}/result`, queryAbortsAfterSecs: 300, progressDesc: null }
  }
}

function heldDeps (request: FastifyRequest) {
  const server = request.server
  return { pipeline: server.pipeline, statements: server.snowflake.handles, approvals: server.approvals }
}

/** A held statement, once approved, runs on the polling login's own upstream session, in its context. */
function heldPoll (request: FastifyRequest, session: ConnectorSession): HeldPoll {
  return {
    frontEnd: FRONT_END,
    requestId: request.id,
    principal: session.principal,
    settings: session.settings,
    upstream: session.upstream,
    context: () => session.upstreamSession.context,
    session: async () => ({ session: session.upstreamSession, release: () => {} })
  }
}

/** A cancel by the client: a held statement's approval is withdrawn; a running one is cancelled. */
async function cancelStatement (fastify: FastifyInstance, handle: Handle, principal: ConnectorSession['principal']): Promise<void> {
  const now = handle.state === 'held' ? await cancelHeld({ approvals: fastify.approvals, statements: fastify.snowflake.handles }, handle, principal) : handle
  if (now.state === 'running') await fastify.snowflake.handles.cancel(now)
}

async function ownedHandle (fastify: FastifyInstance, request: FastifyRequest<{ Params: { id: string } }>): Promise<Handle> {
  const session = request.snowflakeSession as ConnectorSession
  const handle = UUID.test(request.params.id) ? await fastify.snowflake.handles.get(request.params.id, session.principal) : undefined
  // Unknown and foreign ids get the same answer: nothing confirms that a query exists.
  if (handle === undefined) throw new ERR_NOT_FOUND(`statement ${request.params.id}`)
  return handle
}

export function createResultHandler (fastify: FastifyInstance) {
  return async function queryResult (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
    try {
      const handle = await ownedHandle(fastify, request)
      return await answer(request, reply, handle, request.snowflakeSession as ConnectorSession)
    } catch (err) {
      return sendConnectorError(request, reply, err)
    }
  }
}

export function createAbortHandler (fastify: FastifyInstance) {
  return async function abortQuery (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
    try {
      const handle = await ownedHandle(fastify, request)
      request.roundTrip.sql = handle.sql
      await cancelStatement(fastify, handle, (request.snowflakeSession as ConnectorSession).principal)
      return await reply.send(connectorOk())
    } catch (err) {
      return sendConnectorError(request, reply, err)
    }
  }
}

/** abort-request by the client's requestId (sent when the driver has no query id yet). */
export function createAbortByRequestHandler (fastify: FastifyInstance) {
  return async function abortByRequest (request: FastifyRequest<{ Body: { requestId?: string } }>, reply: FastifyReply) {
    const session = request.snowflakeSession as ConnectorSession
    const requestId = request.body?.requestId
    const handle = typeof requestId === 'string' ? await fastify.snowflake.handles.byClientRequest(session.principal, requestId) : undefined
    if (handle !== undefined) await cancelStatement(fastify, handle, session.principal)
    return await reply.send(connectorOk())
  }
}

const MONITOR_STATUS: Record<Handle['state'], string> = {
  // Waiting for approval reads as queued: both drivers keep waiting on a queued query.
  held: 'QUEUED', running: 'RUNNING', succeeded: 'SUCCESS', failed: 'FAILED_WITH_ERROR', aborted: 'ABORTED'
}

export function createMonitoringHandler (fastify: FastifyInstance) {
  return async function monitorQuery (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
    let handle: Handle
    try {
      handle = await ownedHandle(fastify, request)
    } catch (err) {
      // An empty `queries` list makes the Python connector poll for minutes ("no data yet");
      // a not-found error ends both drivers' waits at once, for unknown and foreign ids alike.
      return sendConnectorError(request, reply, err, undefined, { queries: [] })
    }
    const entry: Record<string, unknown> = {
      id: handle.id,
      status: MONITOR_STATUS[handle.state],
      state: MONITOR_STATUS[handle.state],
      sqlText: handle.sql,
      startTime: handle.createdOn,
      endTime: handle.finishedAt ?? 0
    }
    if (handle.state === 'failed') {
      entry.errorCode = (handle.error as { snowflakeCode?: string } | undefined)?.snowflakeCode ?? '000603'
      // Statement failures were released under their statement; anything else gets the detectors.
      entry.errorMessage = errorInfo(handle.error, request.id, releaseText(request)).message
    }
    return await reply.send(connectorOk({ queries: [entry] }))
  }
}

/**
 * A result chunk, served by Sluice in place of cloud storage. The driver sends only the chunk
 * headers Sluice issued (a short-lived token bound to the query and its owner), no session.
 */
export function createChunkHandler (fastify: FastifyInstance) {
  return async function chunk (request: FastifyRequest<{ Params: { id: string, n: string }, Querystring: { format?: string } }>, reply: FastifyReply) {
    const token = request.headers['x-sluice-chunk-token']
    const n = Number(request.params.n)
    const handle = typeof token === 'string' && UUID.test(request.params.id) ? await fastify.snowflake.handles.getForChunk(request.params.id, token) : undefined
    const pages = handle?.result?.manifest.pages ?? []
    const principal = handle?.admitted?.record.statement.principal
    if (handle === undefined || principal === undefined || !Number.isInteger(n) || n < 0 || n + 1 >= pages.length) {
      return await reply.code(403).type('application/xml').send('<Error><Code>AccessDenied</Code><Message>chunk token invalid or expired; fetch the result again</Message></Error>')
    }
    request.principal = principal
    request.connectionName = handle.connection
    request.roundTrip.sql = handle.sql
    let body: Buffer
    try {
      // Produced now: the upstream chunk fetched (on this replica, whichever ran it) and masked.
      body = (await fastify.snowflake.handles.page(handle, n + 1, request.roundTrip, chunkEncoder(handle.result!.manifest, request.query.format))).body
    } catch (err) {
      // As cloud storage fails: a 5xx the drivers retry; the event keeps what went wrong.
      const info = errorInfo(err, request.id, releaseText(request))
      request.roundTrip.errorCode = info.catalogueCode
      request.roundTrip.errorMessage = info.message
      return await reply.code(503).type('application/xml').send(`<Error><Code>ServiceUnavailable</Code><Message>${xmlText(info.message)}</Message></Error>`)
    }
    return await sendCompressible(request, reply, body, 'application/octet-stream')
  }
}

function xmlText (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * Snowpark's own housekeeping, answered by Sluice: on close it cancels its session's queries
 * with `select system$cancel_all_queries(<session id>)`, naming the session id Sluice issued.
 * Sent upstream it would name Sluice's upstream session (shared with nothing of the client's),
 * and the analyzer makes any other use of the function a call the policy decides; so exactly
 * this statement, for the caller's own session, cancels that session's running statements here
 * and answers as Snowflake does ("<n> cancelled.").
 */
export function createHousekeepingHook (fastify: FastifyInstance) {
  return async function snowparkHousekeeping (request: FastifyRequest<{ Body: QueryBody }>, reply: FastifyReply) {
    const session = request.snowflakeSession
    const sql = request.body?.sqlText
    if (session === null || typeof sql !== 'string' || !cancelsOwnSession(sql, session.id)) return undefined
    const handles = fastify.snowflake.handles
    const key = `snowflake:${session.id}`
    const running = await handles.runningIn(session.principal, key)
    for (const handle of running) await handles.cancel(handle)
    const handle = await handles.put(session.principal, session.settings.name, sql, cancelAllResult(session.id, running.length), { sessionKey: key })
    return await answer(request, reply, handle, session)
  }
}

export default async function connectorQueries (app: FastifyInstance): Promise<void> {
  const config = { frontEnd: FRONT_END, authenticate: false }
  app.post('/queries/v1/query-request', { config, preHandler: createHousekeepingHook(app) }, createQueryHandler(app))
  app.get('/queries/:id/result', { config }, createResultHandler(app))
  app.post('/queries/:id/abort-request', { config }, createAbortHandler(app))
  app.post('/queries/v1/abort-request', { config }, createAbortByRequestHandler(app))
  // The drivers read a monitoring answer by its `queries` before anything else, refusals too.
  const monitoring = { config: { ...config, connectorErrorData: { queries: [] } } }
  app.get('/monitoring/queries/:id', monitoring, createMonitoringHandler(app))
  // The Python connector (5.x) asks for /monitoring/queries//<id>; answer it the same way.
  app.get('/monitoring/queries//:id', monitoring, createMonitoringHandler(app))
}

/** Registered outside the session-token context: chunk downloads carry a chunk token instead. */
export async function connectorChunks (app: FastifyInstance): Promise<void> {
  app.get('/sluice/snowflake/chunks/:id/:n', { config: { frontEnd: FRONT_END, authenticate: false } }, createChunkHandler(app))
}
