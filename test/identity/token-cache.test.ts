// The verified-token cache: a hit skips the signature check, but never outlives the token, never
// remembers a refusal, and never vouches for a token after the issuer's keys changed.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { attackerKey, countingFetch, expectRefused, signWith, tamper, validClaims } from './forge.js'

function manualClock (): { now: () => number, advance: (seconds: number) => void } {
  let t = Date.now()
  return { now: () => t, advance: (seconds) => { t += seconds * 1000 } }
}

describe('verified-token cache', () => {
  let idp: TestIdp
  beforeAll(async () => { idp = await startTestIdp() })
  afterAll(async () => { await idp?.close() })

  test('a verified token is served from the cache, and refused once it has expired', async () => {
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig({ clockSkewSeconds: 0 }), { now: clock.now })
    const now = Math.floor(clock.now() / 1000)
    const token = await idp.sign({ ...validClaims(idp.issuer, { sub: 'alice' }), iat: now, exp: now + 120 })

    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'alice' })
    // The first check ran while the keys loaded; the second fills the cache, the third hits it.
    await verifier.verify(token)
    const checks = verifier.verifications
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'alice' })
    expect(verifier.verifications).toBe(checks)

    clock.advance(121)
    await expectRefused(verifier.verify(token), 'expired')
    expect(verifier.verifications).toBe(checks + 1)
  })

  test('a cached principal cannot be altered by a caller', async () => {
    const verifier = createTokenVerifier(idp.identityConfig())
    const token = await idp.userToken({ subject: 'carol' })
    await verifier.verify(token)
    const first = await verifier.verify(token)
    first.roles.push('admin')
    const again = await verifier.verify(token)
    expect(again.roles).not.toContain('admin')
  })

  test('a refused token is not cached: each attempt is checked again', async () => {
    const verifier = createTokenVerifier(idp.identityConfig())
    await verifier.verify(await idp.machineToken()) // keys loaded
    const forged = tamper(await idp.userToken({ subject: 'dave' }), (p) => ({ ...p, sub: 'root' }))
    const before = verifier.verifications
    await expectRefused(verifier.verify(forged), 'signature invalid', forged)
    await expectRefused(verifier.verify(forged), 'signature invalid', forged)
    expect(verifier.verifications).toBe(before + 2)

    const stranger = await attackerKey()
    const untrusted = await signWith(stranger.privateKey, validClaims(idp.issuer), { alg: 'RS256', kid: 'elsewhere' })
    await expectRefused(verifier.verify(untrusted), 'unknown signing key')
    await expectRefused(verifier.verify(untrusted), 'unknown signing key')
    expect(verifier.verifications).toBe(before + 4)
  })

  test('a cached token of a key the issuer removed is refused once the keys are refetched', async () => {
    const counted = countingFetch()
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig({ jwksRefetchIntervalSeconds: 30 }), { fetch: counted.fetch, now: clock.now })
    const old = await idp.userToken({ subject: 'erin' })
    await verifier.verify(old)
    await verifier.verify(old)
    const checks = verifier.verifications
    await verifier.verify(old)
    expect(verifier.verifications).toBe(checks) // a cache hit

    await idp.rotateKey() // the old key is no longer published
    clock.advance(31)
    // A token of the new key makes the verifier refetch the JWKS …
    await expect(verifier.verify(await idp.userToken({ subject: 'erin' }))).resolves.toMatchObject({ subject: 'erin' })
    expect(counted.count('/jwks')).toBe(2)
    // … after which the cached entry no longer vouches for the old token.
    await expectRefused(verifier.verify(old), 'unknown signing key')
  })

  test('the cache is bounded: the least recently used token is verified again', async () => {
    const verifier = createTokenVerifier(idp.identityConfig(), { cacheSize: 2 })
    const [a, b, c] = await Promise.all(['ann', 'ben', 'cat'].map(async (subject) => await idp.userToken({ subject })))
    for (const t of [a, a, b, c]) await verifier.verify(t as string)
    const checks = verifier.verifications
    await verifier.verify(c as string)
    await verifier.verify(b as string)
    expect(verifier.verifications).toBe(checks)
    await verifier.verify(a as string)
    expect(verifier.verifications).toBe(checks + 1)
  })
})
