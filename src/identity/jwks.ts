// The issuer's signing keys, held locally. jose's remote JWKS would fetch on its own schedule;
// owning the fetch lets us count it, rate-limit unknown-`kid` refetches, share one in-flight
// request between concurrent callers, and tell "issuer unreachable" (503) apart from
// "token signed by a key we do not trust" (401).
import { createLocalJWKSet, errors as jose, type JSONWebKeySet, type JWK, type JWTHeaderParameters } from 'jose'
import { ERR_AUTH_INVALID, ERR_AUTH_ISSUER_UNAVAILABLE } from '../errors.js'

type LocalKeySet = ReturnType<typeof createLocalJWKSet>
type VerifyKey = Awaited<ReturnType<LocalKeySet>>

export interface KeySourceOptions {
  issuer: string
  discoveryUrl: string
  /** Least time between two fetches triggered by an unknown `kid`. */
  refetchIntervalMs: number
  fetch: typeof fetch
  now: () => number
  /** Keys older than this are refreshed in the background so a revoked key stops working. */
  maxAgeMs?: number
  timeoutMs?: number
}

export interface KeySource {
  /** jose key resolver; only `alg` and `kid` of the header are ever read. */
  getKey: (header: JWTHeaderParameters) => Promise<VerifyKey>
  /** How many discovery + JWKS loads were started; for health output and tests. */
  readonly loads: number
  /** Counts successful loads: what a key set verified is only trusted while it is current. */
  readonly generation: number
  /** When the keys held now are due for a refresh (ms since the epoch; 0 before the first load). */
  readonly freshUntil: number
}

const ASYMMETRIC_KTY = new Set(['RSA', 'EC', 'OKP', 'AKP'])

export function createKeySource (opts: KeySourceOptions): KeySource {
  const maxAgeMs = opts.maxAgeMs ?? 10 * 60_000
  const timeoutMs = opts.timeoutMs ?? 5_000
  let jwksUri: string | undefined
  let keySet: LocalKeySet | undefined
  let loadedAt = 0
  let attemptedAt = Number.NEGATIVE_INFINITY
  let inflight: Promise<LocalKeySet> | undefined
  let loads = 0
  let generation = 0

  function refresh (): Promise<LocalKeySet> {
    inflight ??= load().finally(() => { inflight = undefined })
    return inflight
  }

  async function load (): Promise<LocalKeySet> {
    loads++
    // Counted at the start, failed or not: an unreachable issuer must not be hammered by a
    // stream of unknown-kid tokens either.
    attemptedAt = opts.now()
    jwksUri ??= await discover()
    const body = await getJson(jwksUri, 'JWKS')
    try {
      keySet = createLocalJWKSet(publicSigningKeys(body))
    } catch (err) {
      if (err instanceof ERR_AUTH_ISSUER_UNAVAILABLE) throw err
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(`JWKS ${jwksUri}: ${describe(err)}`)
    }
    loadedAt = opts.now()
    generation++
    return keySet
  }

  async function discover (): Promise<string> {
    const doc = await getJson(opts.discoveryUrl, 'discovery document')
    if (doc.issuer !== opts.issuer) {
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(
        `discovery document names issuer ${String(doc.issuer)}, configured issuer is ${opts.issuer}`)
    }
    const uri = doc.jwks_uri
    if (typeof uri !== 'string' || !/^https?:\/\//.test(uri) || URL.parse(uri) === null) {
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(`discovery document at ${opts.discoveryUrl} has no usable jwks_uri`)
    }
    return uri
  }

  async function getJson (url: string, what: string): Promise<Record<string, unknown>> {
    let res: Response
    try {
      res = await opts.fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(`${what} ${url}: ${describe(err)}`)
    }
    if (!res.ok) throw new ERR_AUTH_ISSUER_UNAVAILABLE(`${what} ${url} answered HTTP ${res.status}`)
    let body: unknown
    try {
      body = await res.json()
    } catch {
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(`${what} ${url} is not JSON`)
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ERR_AUTH_ISSUER_UNAVAILABLE(`${what} ${url} is not a JSON object`)
    }
    return body as Record<string, unknown>
  }

  async function current (): Promise<LocalKeySet> {
    if (keySet === undefined) return refresh()
    if (opts.now() - loadedAt > maxAgeMs && inflight === undefined) {
      // Keep serving with the keys we have: an issuer blip must not lock every caller out.
      refresh().catch(() => {})
    }
    return keySet
  }

  async function getKey (header: JWTHeaderParameters): Promise<VerifyKey> {
    // Only alg and kid: `jku`, `x5u` and `jwk` name keys chosen by whoever wrote the token.
    const selector: JWTHeaderParameters = { alg: header.alg }
    if (header.kid !== undefined) selector.kid = header.kid
    const keys = await current()
    try {
      return await keys(selector)
    } catch (err) {
      if (!(err instanceof jose.JWKSNoMatchingKey)) throw err
    }
    // Unknown kid: maybe the issuer rotated. One refetch per interval, shared by everyone.
    let fresh: LocalKeySet | undefined
    if (inflight !== undefined) {
      fresh = await inflight.catch(() => undefined)
    } else if (opts.now() - attemptedAt >= opts.refetchIntervalMs) {
      fresh = await refresh()
    }
    if (fresh === undefined) throw new ERR_AUTH_INVALID('unknown signing key')
    try {
      return await fresh(selector)
    } catch (err) {
      if (err instanceof jose.JWKSNoMatchingKey) throw new ERR_AUTH_INVALID('unknown signing key')
      throw err
    }
  }

  return {
    getKey,
    get loads () { return loads },
    get generation () { return generation },
    get freshUntil () { return keySet === undefined ? 0 : loadedAt + maxAgeMs }
  }
}

/**
 * Drops what a verifier must never use even if an issuer publishes it: symmetric keys (an
 * `oct` key in a public document is a shared secret everyone knows), private key material,
 * and encryption keys.
 */
function publicSigningKeys (body: Record<string, unknown>): JSONWebKeySet {
  if (!Array.isArray(body.keys)) throw new ERR_AUTH_ISSUER_UNAVAILABLE('JWKS has no keys array')
  const keys: JWK[] = []
  for (const key of body.keys as unknown[]) {
    if (key === null || typeof key !== 'object') continue
    const jwk = key as JWK
    if (typeof jwk.kty !== 'string' || !ASYMMETRIC_KTY.has(jwk.kty)) continue
    if (jwk.d !== undefined || jwk.priv !== undefined) continue
    if (jwk.use !== undefined && jwk.use !== 'sig') continue
    keys.push(jwk)
  }
  return { keys }
}

function describe (err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message
  }
  return String(err)
}
