// Token → principal, protocol-free: the one place that turns a presented OIDC token into a
// principal or a refusal, so the HTTP bearer path and the PostgreSQL password path verify the
// same way and refuse with the same reasons.
import { AuthError, ERR_AUTH_INVALID, ERR_AUTH_MISSING, isSluiceError } from '../errors.js'
import type { Principal } from './principal.js'
import type { TokenVerifier } from './verifier.js'

/** A refused authentication as the recording layer and the front end see it. */
export type AuthFailure = AuthError & { code: string, statusCode: number }

export type Authentication =
  | { principal: Principal }
  /** `message` is the failure's text with the token scrubbed out: the one to show and log. */
  | { failure: AuthFailure, message: string }

export interface AuthenticateLog {
  error: (obj: object, msg: string) => void
}

/**
 * Verifies `token` (undefined: none was presented). A verifier that is null (no identity
 * configured) refuses every token; a verifier that fails unexpectedly refuses too (fail closed).
 */
export async function authenticateToken (verifier: TokenVerifier | null, token: string | undefined, log?: AuthenticateLog): Promise<Authentication> {
  let failure: AuthFailure
  if (verifier === null) {
    failure = new ERR_AUTH_INVALID('identity is not configured on this gateway, so no token can be accepted') as AuthFailure
  } else if (token === undefined) {
    failure = new ERR_AUTH_MISSING() as AuthFailure
  } else {
    try {
      return { principal: await verifier.verify(token) }
    } catch (err) {
      failure = asAuthFailure(err, log)
    }
  }
  return { failure, message: scrubToken(failure.message, token) }
}

function asAuthFailure (err: unknown, log: AuthenticateLog | undefined): AuthFailure {
  if (isSluiceError(err) && err instanceof AuthError && typeof err.statusCode === 'number') return err as AuthFailure
  // A verifier bug must still refuse (fail closed); log its name only, never what it held.
  log?.error({ verifierError: errorName(err) }, 'token verifier failed unexpectedly')
  return new ERR_AUTH_INVALID('token could not be verified') as AuthFailure
}

/** Never echo a token back, even when a message quotes it. */
export function scrubToken (text: string, token: string | undefined): string {
  return token !== undefined && token.length >= 8 ? text.split(token).join('[token]') : text
}

export function errorName (err: unknown): string {
  return err instanceof Error ? err.name : typeof err
}
