import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { attackerKey, countingFetch, expectRefused, signWith, validClaims } from './forge.js'

const DISCOVERY = '/.well-known/openid-configuration'

/** A clock the test moves by hand; starts at the real time so real tokens are valid. */
function manualClock (): { now: () => number, advance: (seconds: number) => void } {
  let t = Date.now()
  return { now: () => t, advance: (seconds) => { t += seconds * 1000 } }
}

async function unusedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

describe('issuer keys', () => {
  let idp: TestIdp
  beforeAll(async () => { idp = await startTestIdp() })
  afterAll(async () => { await idp?.close() })

  test('discovery and JWKS are fetched lazily, once, shared by concurrent first requests', async () => {
    const counted = countingFetch()
    const verifier = createTokenVerifier(idp.identityConfig(), { fetch: counted.fetch })
    expect(counted.urls).toEqual([])

    const token = await idp.machineToken()
    const principals = await Promise.all(Array.from({ length: 10 }, async () => await verifier.verify(token)))

    expect(principals.every(p => p.subject === 'ci-bot')).toBe(true)
    expect(counted.urls).toEqual([`${idp.issuer}${DISCOVERY}`, `${idp.issuer}/jwks`])
  })

  test('an unreachable issuer is a 503, and the next request tries again', async () => {
    const counted = countingFetch()
    const verifier = createTokenVerifier(idp.identityConfig(), { fetch: counted.fetch })
    const token = await idp.machineToken()

    counted.failNext()
    const err = await verifier.verify(token).then(
      () => { throw new Error('expected the verifier to refuse') },
      (e: unknown) => e as { code: string, statusCode: number, message: string })
    expect(err).toMatchObject({ code: 'SLUICE_AUTH_ISSUER_UNAVAILABLE', statusCode: 503 })
    expect(err.message).toContain('ECONNREFUSED')

    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'ci-bot' })
  })

  test('an issuer nobody listens on is a 503 naming the discovery URL', async () => {
    const issuer = `http://127.0.0.1:${await unusedPort()}`
    const verifier = createTokenVerifier(idp.identityConfig({ issuer }))

    await expect(verifier.verify(await idp.machineToken()))
      .rejects.toMatchObject({ code: 'SLUICE_AUTH_ISSUER_UNAVAILABLE', message: expect.stringContaining(`${issuer}${DISCOVERY}`) })
  })

  test('a discovery document naming another issuer is not trusted', async () => {
    const verifier = createTokenVerifier(idp.identityConfig({
      issuer: 'https://login.example.com',
      discoveryUrl: `${idp.issuer}${DISCOVERY}`
    }))

    await expect(verifier.verify(await idp.machineToken()))
      .rejects.toMatchObject({ code: 'SLUICE_AUTH_ISSUER_UNAVAILABLE', message: expect.stringContaining('names issuer') })
  })

  test('JWKS refetch for unknown kids is rate limited to one per interval, shared by concurrent requests', async () => {
    const counted = countingFetch()
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig({ jwksRefetchIntervalSeconds: 60 }), { fetch: counted.fetch, now: clock.now })
    await verifier.verify(await idp.machineToken())
    expect(counted.count('/jwks')).toBe(1)

    const { privateKey } = await attackerKey()
    const forge = async (i: number): Promise<string> =>
      await signWith(privateKey, validClaims(idp.issuer), { alg: 'RS256', kid: `random-${i}` })
    const tokens = await Promise.all(Array.from({ length: 50 }, async (_, i) => await forge(i)))

    // Inside the interval of the initial load: no refetch at all.
    await Promise.all(tokens.slice(0, 10).map(async t => await expectRefused(verifier.verify(t), 'unknown signing key')))
    expect(counted.count('/jwks')).toBe(1)

    clock.advance(61)
    await Promise.all(tokens.slice(10, 30).map(async t => await expectRefused(verifier.verify(t), 'unknown signing key')))
    for (const t of tokens.slice(30, 40)) await expectRefused(verifier.verify(t), 'unknown signing key')
    expect(counted.count('/jwks')).toBe(2)

    clock.advance(61)
    for (const t of tokens.slice(40)) await expectRefused(verifier.verify(t), 'unknown signing key')
    expect(counted.count('/jwks')).toBe(3)
    expect(counted.count(DISCOVERY)).toBe(1)
  })
})

describe('issuer key rotation', () => {
  let idp: TestIdp
  beforeAll(async () => { idp = await startTestIdp() })
  afterAll(async () => { await idp?.close() })

  test('a valid token signed with the new key is accepted after the issuer rotates', async () => {
    const counted = countingFetch()
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig({ jwksRefetchIntervalSeconds: 30 }), { fetch: counted.fetch, now: clock.now })
    const before = await idp.userToken({ subject: 'alice' })
    await expect(verifier.verify(before)).resolves.toMatchObject({ subject: 'alice' })
    const oldKid = idp.kid

    const newKid = await idp.rotateKey()
    expect(newKid).not.toBe(oldKid)
    const after = await idp.userToken({ subject: 'alice' })

    clock.advance(31)
    await expect(verifier.verify(after)).resolves.toMatchObject({ subject: 'alice' })
    expect(counted.count('/jwks')).toBe(2)
    // The old key is gone from the published set, so tokens it signed are no longer trusted.
    await expectRefused(verifier.verify(before), 'unknown signing key')
  })

  test('a rotation that keeps the previous key published accepts both generations', async () => {
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig({ jwksRefetchIntervalSeconds: 30 }), { now: clock.now })
    const older = await idp.userToken({ subject: 'bob' })
    await verifier.verify(older)

    await idp.rotateKey({ keepPrevious: true })
    const newer = await idp.userToken({ subject: 'bob' })
    clock.advance(31)

    await expect(verifier.verify(newer)).resolves.toMatchObject({ subject: 'bob' })
    await expect(verifier.verify(older)).resolves.toMatchObject({ subject: 'bob' })
  })

  test('keys older than ten minutes are refreshed in the background, so a withdrawn key stops working', async () => {
    const counted = countingFetch()
    const clock = manualClock()
    const verifier = createTokenVerifier(idp.identityConfig(), { fetch: counted.fetch, now: clock.now })
    const token = await idp.userToken({ subject: 'erin' })
    await verifier.verify(token)

    await idp.rotateKey()
    clock.advance(11 * 60)
    // Served from the cached keys while the refresh runs: an issuer blip locks nobody out.
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'erin' })
    const outcome = async (): Promise<string> => await verifier.verify(token).then(() => 'accepted', (e: Error) => e.message)
    await expect.poll(outcome).toContain('unknown signing key')
    expect(counted.count('/jwks')).toBe(2)
  })

  test('the provider keeps its issuer and port across rotations', async () => {
    const { issuer, port } = idp
    await idp.rotateKey()
    const res = await fetch(`${issuer}${DISCOVERY}`)
    const doc = await res.json() as { issuer: string }
    expect(doc.issuer).toBe(issuer)
    expect(idp.port).toBe(port)
  })
})
