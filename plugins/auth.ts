// Bearer-token authentication for routes that opt in with `config: { authenticate: true }`.
// The check is a per-request look at the route's config rather than an onRoute rewrite so a
// route registered before this plugin is protected all the same.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AuthError, ERR_AUTH_INVALID, ERR_AUTH_MISSING, isSluiceError } from '../src/errors.js'
import type { Principal } from '../src/identity/principal.js'
import type { TokenVerifier } from '../src/identity/verifier.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by sluice-auth on routes with `config.authenticate`; null everywhere else. */
    principal: Principal | null
  }
  interface FastifyContextConfig {
    /** Require a valid bearer token on this route. */
    authenticate?: boolean
  }
}

/** A refused authentication as the recording layer and the reply see it. */
export type AuthFailure = AuthError & { code: string, statusCode: number }

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
    let failure: AuthFailure
    if (verifier === null) {
      failure = new ERR_AUTH_INVALID('identity is not configured on this gateway, so no token can be accepted') as AuthFailure
    } else if (token === undefined) {
      failure = new ERR_AUTH_MISSING() as AuthFailure
    } else {
      try {
        request.principal = await verifier.verify(token)
        return undefined
      } catch (err) {
        failure = asAuthFailure(err, request)
      }
    }
    return refuse(request, reply, failure, token, onFailure)
  }
}

async function refuse (
  request: FastifyRequest,
  reply: FastifyReply,
  failure: AuthFailure,
  token: string | undefined,
  onFailure: AuthFailureListener | undefined
): Promise<FastifyReply> {
  const message = scrub(failure.message, token)
  request.log.warn({ code: failure.code, reason: message }, 'authentication refused')
  if (onFailure !== undefined) {
    try {
      await onFailure(request, failure)
    } catch (err) {
      // The request is refused either way; a recorder that fails must not turn 401 into 500.
      request.log.error({ code: failure.code, listenerError: errorName(err) }, 'recording an authentication failure failed')
    }
  }
  if (failure.statusCode === 401) reply.header('www-authenticate', challenge(message, token !== undefined))
  return reply.code(failure.statusCode).send({ code: failure.code, message })
}

/** RFC 6750 §3: no error code when the request carried no token at all. */
function challenge (description: string, tokenSent: boolean): string {
  if (!tokenSent) return 'Bearer realm="sluice"'
  return `Bearer realm="sluice", error="invalid_token", error_description="${quotable(description)}"`
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

function asAuthFailure (err: unknown, request: FastifyRequest): AuthFailure {
  if (isSluiceError(err) && err instanceof AuthError && typeof err.statusCode === 'number') return err as AuthFailure
  // A verifier bug must still refuse (fail closed); log its name only, never what it held.
  request.log.error({ verifierError: errorName(err) }, 'token verifier failed unexpectedly')
  return new ERR_AUTH_INVALID('token could not be verified') as AuthFailure
}

function scrub (text: string, token: string | undefined): string {
  return token !== undefined && token.length >= 8 ? text.split(token).join('[token]') : text
}

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}

async function sluiceAuth (fastify: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const authenticate = createAuthHook(opts)
  fastify.decorateRequest('principal', null)
  fastify.addHook('onRequest', async function authenticateRoute (request, reply) {
    if (request.routeOptions.config.authenticate !== true) return undefined
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
