// Token forgery kit for the refusal tests: everything here produces tokens the issuer did not
// issue, or mangles ones it did.
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import { expect } from 'vitest'

export const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A key pair nobody trusts. */
export async function attackerKey (alg = 'RS256'): Promise<{ privateKey: CryptoKey, publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { privateKey, publicJwk: await exportJWK(publicKey) }
}

export async function signWith (
  privateKey: CryptoKey | Uint8Array,
  payload: JWTPayload,
  header: Record<string, unknown> & { alg: string }
): Promise<string> {
  return await new SignJWT(payload).setProtectedHeader(header).sign(privateKey)
}

/** Claims the test issuer would accept, minus the signature. */
export function validClaims (issuer: string, extra: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000)
  return { iss: issuer, aud: 'sluice', sub: 'mallory', client_id: 'cursor', iat: now, exp: now + 600, ...extra }
}

/** Re-encodes the payload of a signed token while keeping its original signature. */
export function tamper (token: string, change: (payload: JWTPayload) => JWTPayload): string {
  const [header, , signature] = token.split('.')
  return `${header}.${b64url(change(decodeJwt(token)))}.${signature}`
}

/** Awaits a refusal and checks it is a 401 with `reason` that does not echo the token. */
export async function expectRefused (attempt: Promise<unknown>, reason: string, token?: string): Promise<Error & { code: string, statusCode: number }> {
  const err = await attempt.then(
    (value) => { throw new Error(`expected a refusal (${reason}), got ${JSON.stringify(value)}`) },
    (e: unknown) => e as Error & { code: string, statusCode: number })
  expect(err.message).toContain(reason)
  expect(err.code).toBe('SLUICE_AUTH_INVALID')
  expect(err.statusCode).toBe(401)
  if (token !== undefined) expect(err.message).not.toContain(token)
  return err
}

/** A fetch that counts what it was asked for and can be told to fail. */
export function countingFetch (): { fetch: typeof fetch, urls: string[], count: (suffix: string) => number, failNext: (n?: number) => void } {
  const urls: string[] = []
  let failures = 0
  const wrapped = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const url = input instanceof Request ? input.url : String(input)
    urls.push(url)
    if (failures > 0) {
      failures--
      throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })
    }
    return await fetch(input, init)
  }) as typeof fetch
  return {
    fetch: wrapped,
    urls,
    count: (suffix) => urls.filter(u => u.endsWith(suffix)).length,
    failNext: (n = 1) => { failures += n }
  }
}
