// OIDC access-token verification: size gate, JWS signature against the issuer's published
// keys, issuer/audience/time checks, then claims → Principal. Every refusal is an
// ERR_AUTH_INVALID with a short reason an operator can act on; the token itself never appears
// in a message because messages end up in logs and WWW-Authenticate headers.
import { errors as jose, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose'
import type { IdentityConfig } from '../config/types.js'
import { ERR_AUTH_INVALID, ERR_CONFIG_INVALID, isSluiceError } from '../errors.js'
import { principalFrom } from './claims.js'
import { createKeySource, type KeySource } from './jwks.js'
import type { Principal } from './principal.js'
import { DEFAULT_TOKEN_CACHE_SIZE, TokenCache } from './token-cache.js'

export interface TokenVerifier {
  verify (token: string): Promise<Principal>
}

export interface TokenVerifierOptions {
  fetch?: typeof fetch
  /** Milliseconds since the epoch; drives token time checks and the refetch rate limit. */
  now?: () => number
  /** Verified tokens remembered (bounded LRU, by hash, see token-cache.ts); 0 turns it off. */
  cacheSize?: number
}

/**
 * RFC 9068 §2.1: JWT access tokens say so in their JOSE header. An ID token (`typ: JWT` or
 * none) carries the same issuer, signature and often the same audience, so only this header
 * tells the two apart; `identity.requireAccessTokenType` turns the check on for IdPs that set it.
 */
const ACCESS_TOKEN_TYP = 'at+jwt'

/** Three base64url segments; an empty signature is let through so `alg: none` gets its own reason. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export interface CachingTokenVerifier extends TokenVerifier {
  readonly keys: KeySource
  /** Full signature checks done (cache misses that reached jose); for tests and the bench. */
  readonly verifications: number
}

export function createTokenVerifier (config: IdentityConfig, opts: TokenVerifierOptions = {}): CachingTokenVerifier {
  const now = opts.now ?? Date.now
  const algorithms = asymmetricAlgorithms(config.algorithms)
  const keys = createKeySource({
    issuer: config.issuer,
    discoveryUrl: config.discoveryUrl ?? `${config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    refetchIntervalMs: config.jwksRefetchIntervalSeconds * 1000,
    fetch: opts.fetch ?? globalThis.fetch,
    now
  })
  const cache = new TokenCache(opts.cacheSize ?? DEFAULT_TOKEN_CACHE_SIZE)
  let verifications = 0

  async function verify (token: string): Promise<Principal> {
    // Before any decoding: a huge token must cost nothing but a length check.
    if (typeof token !== 'string' || token.length === 0) throw new ERR_AUTH_INVALID('empty token')
    if (token.length > config.maxTokenBytes || Buffer.byteLength(token, 'utf8') > config.maxTokenBytes) {
      throw new ERR_AUTH_INVALID(`token larger than ${config.maxTokenBytes} bytes`)
    }
    if (!COMPACT_JWS.test(token)) throw new ERR_AUTH_INVALID('malformed token (expected a signed JWT)')
    const key = TokenCache.keyOf(token)
    const cached = cache.get(key, now(), keys.generation)
    if (cached !== undefined) return cached
    // Read before verifying: keys refreshed meanwhile leave this entry stale (re-verified), never the reverse.
    const generation = keys.generation

    const options: JWTVerifyOptions = {
      issuer: config.issuer,
      audience: config.audience,
      algorithms,
      clockTolerance: config.clockSkewSeconds,
      currentDate: new Date(now()),
      requiredClaims: ['exp']
    }
    // jose compares case-insensitively and treats `at+jwt` and `application/at+jwt` alike.
    if (config.requireAccessTokenType === true) options.typ = ACCESS_TOKEN_TYP
    let payload: JWTPayload
    verifications++
    try {
      payload = await verifyWithKeys(token, keys, options)
    } catch (err) {
      throw refusal(err)
    }
    const principal = principalFrom(payload, config)
    // Until the token's own exp (no clock tolerance) and no longer than the keys stay fresh.
    // Keys loaded during this verification (the first one) make the entry stale at once: a
    // later generation can never be vouched for by a check that began before it.
    cache.set(key, { principal, until: Math.min(principal.expiresAt.getTime(), keys.freshUntil), generation }, now())
    return principal
  }

  return { verify, keys, get verifications () { return verifications } }
}

async function verifyWithKeys (token: string, keys: KeySource, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, keys.getKey, options)).payload
  } catch (err) {
    // A token without `kid` and an issuer with several keys for its alg: try each in turn.
    if (!(err instanceof jose.JWKSMultipleMatchingKeys)) throw err
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload
      } catch (inner) {
        if (!(inner instanceof jose.JWSSignatureVerificationFailed)) throw inner
      }
    }
    throw new jose.JWSSignatureVerificationFailed()
  }
}

/** `none` and HS* can never verify a token from a public-key issuer; refuse to even try. */
function asymmetricAlgorithms (configured: readonly string[]): string[] {
  const allowed = configured.filter(alg => alg !== 'none' && !/^HS/i.test(alg))
  if (allowed.length === 0) {
    throw new ERR_CONFIG_INVALID('identity.algorithms must name at least one asymmetric algorithm (RS256, ES256, EdDSA, ...)')
  }
  return allowed
}

function refusal (err: unknown): Error {
  if (isSluiceError(err)) return err
  return new ERR_AUTH_INVALID(reasonFor(err))
}

function reasonFor (err: unknown): string {
  if (err instanceof jose.JWTExpired) return 'expired'
  if (err instanceof jose.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `missing ${err.claim} claim`
    switch (err.claim) {
      case 'nbf': return 'not yet valid'
      case 'iss': return 'issuer mismatch'
      case 'aud': return 'audience mismatch'
      case 'typ': return 'not an access token: its JOSE header typ must be at+jwt (RFC 9068); ID tokens and other JWTs are refused here'
      default: return `${err.claim} claim invalid`
    }
  }
  if (err instanceof jose.JOSEAlgNotAllowed) return 'algorithm not allowed'
  if (err instanceof jose.JWSSignatureVerificationFailed) return 'signature invalid'
  if (err instanceof jose.JWKSNoMatchingKey) return 'unknown signing key'
  if (err instanceof jose.JOSENotSupported) return 'unsupported algorithm or key'
  if (err instanceof jose.JWSInvalid || err instanceof jose.JWTInvalid) return 'malformed token'
  return 'token could not be verified'
}
