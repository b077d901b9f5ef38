// Bearer-token authentication for routes that opt in with `config: { authenticate: true }`.
// The check is a per-request look at the route's config rather than an onRoute rewrite so a
// route registered before this plugin is protected all the same.
// Every front-end route, whoever authenticates it, also refuses a token in the URL query.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ERR_AUTH_INVALID } from '../src/errors.js'
import { authenticateToken, errorName, scrubToken, type AuthFailure } from '../src/identity/authenticate.js'
import type { Principal } from '../src/identity/principal.js'
import type { TokenVerifier } from '../src/identity/verifier.js'
import { bearerTokensInQuery } from '../src/url-credentials.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by sluice-auth on routes with `config.authenticate`; null everywhere else. */
    principal: Principal | null
  }
  interface FastifyContextConfig {
    /** Require a valid bearer token on this route. */
    authenticate?: boolean
    /**
     * The body of a refusal in the front end's own shape (default `{code, message}`); status
     * and WWW-Authenticate stay as RFC 6750 has them. `message` is the one to show (scrubbed).
     */
    authFailureBody?: (failure: AuthFailure, message: string, request: FastifyRequest) => unknown
    /**
     * Further auth-params of the 401 challenge, e.g. MCP's `resource_metadata="…"` (RFC 9728
     * §5.1), so a client that does the OAuth flow finds the authorization server.
     */
    authChallengeParams?: (request: FastifyRequest) => string
  }
}

export type { AuthFailure }

export type AuthFailureListener = (request: FastifyRequest, err: AuthFailure) => Promise<void> | void

export interface AuthHookDeps {
  /** null when no identity section is configured: every protected request is refused. */
  verifier: TokenVerifier | null
  /** Called before the refusal is sent, so a forged token is recorded as well as refused. */
  onFailure?: AuthFailureListener
}

export type AuthPluginOptions = AuthHookDeps

export type AuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

const BEARER = /^Bearer +([^ ]*) *$/i

export function createAuthHook (deps: AuthHookDeps): AuthHook {
  const { verifier, onFailure } = deps

  return async function authenticate (request, reply) {
    request.principal = null
    const token = bearerToken(request.headers.authorization)
    const outcome = await authenticateToken(verifier, token, request.log)
    if ('principal' in outcome) {
      request.principal = outcome.principal
      return undefined
    }
    return refuse(request, reply, outcome.failure, token, onFailure)
  }
}

/**
 * RFC 6750 §2.3 allows `?access_token=`, and Google's clients accept one; Sluice does not. A
 * URL is logged, cached and forwarded, so a token there has already leaked once: the request
 * is refused (401, invalid_request) before the token is verified, used or written anywhere,
 * and the refusal names the parameter, never its value.
 */
export function createQueryTokenHook (deps: Pick<AuthHookDeps, 'onFailure'>): AuthHook {
  return async function refuseQueryToken (request, reply) {
    const names = bearerTokensInQuery(request.url)
    if (names.length === 0) return undefined
    request.principal = null
    const failure = new ERR_AUTH_INVALID(
      `a token in the URL query string (${[...new Set(names)].join(', ')}) is not accepted: URLs are logged and cached; send the token in the Authorization: Bearer header`) as AuthFailure
    return refuse(request, reply, failure, undefined, deps.onFailure, 'invalid_request')
  }
}

async function refuse (
  request: FastifyRequest,
  reply: FastifyReply,
  failure: AuthFailure,
  token: string | undefined,
  onFailure: AuthFailureListener | undefined,
  errorCode: 'invalid_token' | 'invalid_request' | undefined = token === undefined ? undefined : 'invalid_token'
): Promise<FastifyReply> {
  const message = scrubToken(failure.message, token)
  request.log.warn({ code: failure.code, reason: message }, 'authentication refused')
  if (onFailure !== undefined) {
    try {
      await onFailure(request, failure)
    } catch (err) {
      // The request is refused either way; a recorder that fails must not turn 401 into 500.
      request.log.error({ code: failure.code, listenerError: errorName(err) }, 'recording an authentication failure failed')
    }
  }
  if (failure.statusCode === 401) {
    const extra = request.routeOptions.config.authChallengeParams?.(request)
    reply.header('www-authenticate', challenge(message, errorCode) + (extra === undefined ? '' : `, ${extra}`))
  }
  const render = request.routeOptions.config.authFailureBody
  return reply.code(failure.statusCode).send(render === undefined ? { code: failure.code, message } : render(failure, message, request))
}

/** RFC 6750 §3: no error code when the request carried no token at all. */
function challenge (description: string, errorCode: 'invalid_token' | 'invalid_request' | undefined): string {
  if (errorCode === undefined) return 'Bearer realm="sluice"'
  return `Bearer realm="sluice", error="${errorCode}", error_description="${quotable(description)}"`
}

/** error_description allows %x20-21 / %x23-5B / %x5D-7E only (RFC 6750 §3). */
function quotable (text: string): string {
  return text.replace(/[^\x20-\x7e]|["\\]/g, ' ')
}

/** Another scheme (Basic, DPoP) counts as no bearer token; `Bearer` with nothing after it does not. */
function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = BEARER.exec(header)
  return match === null ? undefined : match[1]
}

async function sluiceAuth (fastify: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const authenticate = createAuthHook(opts)
  const refuseQueryToken = createQueryTokenHook(opts)
  fastify.decorateRequest('principal', null)
  fastify.addHook('onRequest', async function authenticateRoute (request, reply) {
    const config = request.routeOptions.config
    // Front ends that authenticate themselves (the connector's login body) are covered too.
    if (config.authenticate !== true && config.frontEnd === undefined) return undefined
    // Awaiting a sent reply resolves to undefined (a reply is thenable): ask the reply instead.
    await refuseQueryToken(request, reply)
    if (reply.sent) return reply
    if (config.authenticate !== true) return undefined
    return authenticate(request, reply)
  })
  // Opt-in authentication must not fail open by omission: a front-end route has to say
  // whether Sluice checks its bearer token or the front end authenticates it itself.
  fastify.addHook('onRoute', function requireAuthDecision (route) {
    const config = route.config as { frontEnd?: string, authenticate?: boolean } | undefined
    if (config?.frontEnd !== undefined && config.authenticate === undefined) {
      throw new TypeError(`front-end route ${route.method} ${route.url} must set config.authenticate (true, or false when the front end authenticates itself)`)
    }
  })
}

export default fp(sluiceAuth, { name: 'sluice-auth', fastify: '5.x' })
