// The connector protocol front end (what snowflake-sdk and the Python connector speak):
// session routes here, statement routes in snowflake-connector-queries.ts.
//
// Login takes the agent's OIDC access token (AUTHENTICATOR=OAUTH, TOKEN=<token>) and issues
// Sluice's own opaque session and master tokens; upstream, Sluice logs in with the connection's
// credential. The account the client names (ACCOUNT_NAME) selects the connection.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  ERR_AUTH_INVALID, ERR_SNOWFLAKE_MASTER_EXPIRED, ERR_SNOWFLAKE_SESSION, ERR_SNOWFLAKE_SESSION_EXPIRED, ERR_UNKNOWN_CONNECTION, isSluiceError
} from '../src/errors.js'
import type { Principal } from '../src/identity/principal.js'
import { clientFormats } from '../src/warehouses/snowflake/result-format.js'
import { allowedContext } from '../src/warehouses/snowflake/runtime.js'
import type { ConnectorSession } from '../src/warehouses/snowflake/sessions.js'
import { connectorErrorBody, connectorOk, errorInfo, sessionParameters } from '../src/warehouses/snowflake/wire.js'
import type { AuthFailure } from './auth.js'
import connectorQueries, { connectorChunks } from './snowflake-connector-queries.js'
import { catalogueErrorsAs, lenientJsonBodies, releaseText } from './snowflake-http.js'

export const FRONT_END = 'snowflake-connector'

declare module 'fastify' {
  interface FastifyRequest {
    /** The connector session a Snowflake session token resolved to. */
    snowflakeSession: ConnectorSession | null
  }
  interface FastifyContextConfig {
    /**
     * Fields every answer of the route carries in `data`, refusals included: the drivers parse
     * monitoring answers by their shape (`queries`) before they look at success or code.
     */
    connectorErrorData?: Record<string, unknown>
  }
}

const SNOWFLAKE_TOKEN = /^Snowflake Token="([^"]*)"$/

export function snowflakeToken (header: string | undefined): string | undefined {
  const match = SNOWFLAKE_TOKEN.exec(header ?? '')
  return match?.[1] === '' ? undefined : match?.[1]
}

const RETRYABLE = new Set(['SLUICE_UPSTREAM_UNAVAILABLE', 'SLUICE_STORE_UNAVAILABLE'])

/** Renders any error in the connector's shape (HTTP 200, success:false): what the drivers read. */
export function sendConnectorError (request: FastifyRequest, reply: FastifyReply, err: unknown, queryId?: string, extra?: Record<string, unknown>): FastifyReply {
  const info = errorInfo(err, request.id, releaseText(request))
  request.roundTrip.errorCode = info.catalogueCode
  // The event records what the client was told: released text, never the upstream's own.
  request.roundTrip.errorMessage = info.message
  if (!isSluiceError(err)) request.log.error({ err }, 'snowflake connector request failed')
  // An upstream that never received the request, or a store that could not be read (the session
  // lookup: nothing ran): HTTP 503, which both drivers retry (5xx), as Snowflake's own front door
  // answers when it is unavailable; everything else is 200 success:false.
  const status = RETRYABLE.has(info.catalogueCode) ? 503 : 200
  return reply.code(status).send(connectorErrorBody(info, queryId, extra))
}

/**
 * A round trip that could not be recorded, in the connector's shape. Store down: HTTP 503,
 * which both drivers retry (nothing ran). A statement that ran: HTTP 200 success:false, which
 * they raise at once, so the agent is told instead of the driver running it again.
 */
export function connectorRecordingFailure (err: Error & { code: string }): { statusCode: number, contentType: string, body: string } {
  const info = errorInfo(err, '')
  return {
    statusCode: err.code === 'SLUICE_RESULT_UNRECORDED' ? 200 : 503,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify(connectorErrorBody(info))
  }
}

/** onRequest for session-token routes: resolves the Sluice session or answers as Snowflake would. */
export function createSessionHook (fastify: FastifyInstance) {
  return async function resolveSession (request: FastifyRequest, reply: FastifyReply) {
    const token = snowflakeToken(request.headers.authorization)
    // The store, every request: a logout or renewal on another replica counts here at once.
    const found = token === undefined ? { state: 'unknown' as const } : await fastify.snowflake.sessions.bySessionToken(token)
    if (found.state === 'valid') {
      const session = found.session
      request.principal = session.principal
      request.snowflakeSession = session
      request.sessionKey = `snowflake:${session.id}`
      request.connectionName = session.settings.name
      return undefined
    }
    const data = request.routeOptions.config.connectorErrorData
    if (found.state === 'expired') {
      // 390112 makes both drivers renew with their master token and retry, unnoticed by the agent.
      return reply.code(200).send(connectorErrorBody(errorInfo(new ERR_SNOWFLAKE_SESSION_EXPIRED(), request.id), undefined, data))
    }
    const err = new ERR_SNOWFLAKE_SESSION(token === undefined ? 'no Snowflake session token was sent' : 'unknown or closed session')
    await fastify.recordAuthFailure(request, err)
    return sendConnectorError(request, reply, err, undefined, data)
  }
}

interface LoginBody {
  data?: Record<string, unknown>
}

export function createLoginHandler (fastify: FastifyInstance) {
  return async function login (request: FastifyRequest<{ Body: LoginBody, Querystring: Record<string, string | undefined> }>, reply: FastifyReply) {
    const data = request.body?.data ?? {}
    const query = request.query
    let principal: Principal
    try {
      principal = await verifyLogin(fastify, data)
    } catch (err) {
      await fastify.recordAuthFailure(request, err as Error & { code?: string })
      return sendConnectorError(request, reply, err)
    }
    request.principal = principal
    try {
      const runtime = fastify.snowflake
      // Clients that never logged out leave upstream sessions behind: close a batch of those that
      // ran out (any replica's), without making this login wait for it.
      void runtime.sessions.purgeExpired().catch((err: unknown) => { request.log.warn({ err }, 'purging expired connector sessions failed') })
      const account = typeof data.ACCOUNT_NAME === 'string' ? data.ACCOUNT_NAME : undefined
      const settings = runtime.select(account)
      if (settings === undefined) throw new ERR_UNKNOWN_CONNECTION(account ?? '(none named and no default)')
      request.connectionName = settings.name
      const context = allowedContext(settings, {
        database: query.databaseName, schema: query.schemaName, warehouse: query.warehouse, role: query.roleName
      })
      const upstream = runtime.upstream(settings)
      const upstreamSession = await upstream.open(context)
      const application = typeof data.CLIENT_APP_ID === 'string' ? data.CLIENT_APP_ID : undefined
      const formats = clientFormats(application, request.headers['user-agent'], data.SESSION_PARAMETERS)
      let created: Awaited<ReturnType<typeof runtime.sessions.create>>
      try {
        created = await runtime.sessions.create(principal, settings, upstream, upstreamSession, { application, formats })
      } catch (err) {
        // Not stored, so no replica could ever serve it: the upstream session is nobody's.
        await upstream.close(upstreamSession)
        throw err
      }
      const { session, tokens } = created
      request.sessionKey = `snowflake:${session.id}`
      return await reply.send(connectorOk({
        token: tokens.token,
        masterToken: tokens.masterToken,
        validityInSeconds: tokens.validityInSeconds,
        masterValidityInSeconds: tokens.masterValidityInSeconds,
        sessionId: session.id,
        serverVersion: upstreamSession.serverVersion ?? '9.0.0',
        displayUserName: principal.subject,
        firstLogin: false,
        remMeToken: null,
        remMeValidityInSeconds: 0,
        healthCheckInterval: 45,
        newClientForUpgrade: null,
        idToken: null,
        idTokenValidityInSeconds: 0,
        responseData: null,
        mfaToken: null,
        mfaTokenValidityInSeconds: 0,
        parameters: sessionParameters(upstreamSession.parameters),
        sessionInfo: {
          databaseName: context.database ?? null,
          schemaName: context.schema ?? null,
          warehouseName: context.warehouse ?? null,
          roleName: context.role ?? null
        }
      }))
    } catch (err) {
      return sendConnectorError(request, reply, err)
    }
  }
}

async function verifyLogin (fastify: FastifyInstance, data: Record<string, unknown>): Promise<Principal> {
  const authenticator = String(data.AUTHENTICATOR ?? '').toUpperCase()
  if (authenticator !== 'OAUTH' || typeof data.TOKEN !== 'string' || data.TOKEN === '') {
    throw new ERR_AUTH_INVALID('Sluice accepts only authenticator OAUTH with your OIDC access token as the token; no password or key pair is needed')
  }
  const verifier = fastify.tokenVerifier
  if (verifier === null) throw new ERR_AUTH_INVALID('identity is not configured on this gateway, so no token can be accepted')
  return await verifier.verify(data.TOKEN)
}

export function createTokenRequestHandler (fastify: FastifyInstance) {
  return async function tokenRequest (request: FastifyRequest<{ Body: { requestType?: string } }>, reply: FastifyReply) {
    const masterToken = snowflakeToken(request.headers.authorization)
    const renewed = masterToken === undefined || String(request.body?.requestType ?? 'RENEW').toUpperCase() !== 'RENEW'
      ? undefined
      : await fastify.snowflake.sessions.renew(masterToken)
    if (renewed === undefined || masterToken === undefined) {
      return sendConnectorError(request, reply, new ERR_SNOWFLAKE_MASTER_EXPIRED())
    }
    const { session, tokens } = renewed
    request.principal = session.principal
    request.sessionKey = `snowflake:${session.id}`
    request.connectionName = session.settings.name
    return await reply.send(connectorOk({
      sessionToken: tokens.token,
      validityInSecondsST: tokens.validityInSeconds,
      masterToken,
      validityInSecondsMT: tokens.masterValidityInSeconds,
      sessionId: session.id
    }))
  }
}

export function createSessionHandler (fastify: FastifyInstance) {
  return async function sessionRequest (request: FastifyRequest<{ Querystring: { delete?: string } }>, reply: FastifyReply) {
    const session = request.snowflakeSession
    if (session !== null && request.query.delete === 'true') {
      await fastify.snowflake.sessions.logout(session)
    }
    return await reply.send(connectorOk())
  }
}

export function createHeartbeatHandler () {
  return async function heartbeat (request: FastifyRequest, reply: FastifyReply) {
    const session = request.snowflakeSession
    if (session !== null) {
      try {
        await session.upstream.heartbeat(session.upstreamSession)
      } catch (err) {
        request.log.warn({ code: (err as { code?: string }).code }, 'upstream heartbeat failed')
      }
    }
    return await reply.send(connectorOk())
  }
}

/** Client telemetry is accepted and dropped: it describes the agent's machine, not the warehouse. */
export async function telemetry (_request: FastifyRequest, reply: FastifyReply) {
  return await reply.send(connectorOk())
}

/** A refusal by sluice-auth (a token in the URL) keeps its 401 but reads as the drivers expect. */
function connectorAuthFailureBody (failure: AuthFailure, message: string, request: FastifyRequest): unknown {
  return connectorErrorBody({ ...errorInfo(failure, request.id), message })
}

/** What every connector context shares: its bodies, and errors in the connector's shape. */
function connectorContext (app: FastifyInstance): void {
  lenientJsonBodies(app)
  catalogueErrorsAs(app, (request, reply, err) => sendConnectorError(request, reply, err))
  app.addHook('onRoute', function connectorRefusals (route) {
    route.config = { ...route.config, authFailureBody: connectorAuthFailureBody, recordingFailure: connectorRecordingFailure }
  })
}

async function snowflakeConnector (fastify: FastifyInstance): Promise<void> {
  fastify.decorateRequest('snowflakeSession', null)
  const config = { frontEnd: FRONT_END, authenticate: false }

  // Routes without a session token (login, renewal); encapsulated so the gunzip hook stays ours.
  await fastify.register(async function sessionless (app) {
    connectorContext(app)
    app.post('/session/v1/login-request', { config }, createLoginHandler(fastify))
    app.post('/session/token-request', { config }, createTokenRequestHandler(fastify))
    app.post('/session/authenticator-request', { config }, async (request, reply) =>
      await sendConnectorError(request, reply, new ERR_AUTH_INVALID('use authenticator OAUTH with your OIDC access token')))
    await app.register(connectorChunks)
  })

  await fastify.register(async function withSession (app) {
    connectorContext(app)
    app.addHook('onRequest', createSessionHook(fastify))
    app.post('/session', { config }, createSessionHandler(fastify))
    app.post('/session/heartbeat', { config }, createHeartbeatHandler())
    app.post('/telemetry/send', { config }, telemetry)
    await app.register(connectorQueries)
  })
}

export default fp(snowflakeConnector, {
  name: 'sluice-snowflake-connector',
  fastify: '5.x',
  dependencies: ['sluice-auth', 'sluice-recording']
})
