import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeJwt, exportSPKI, importJWK } from 'jose'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { attackerKey, b64url, countingFetch, expectRefused, signWith, tamper, validClaims } from './forge.js'

describe('token verifier refuses', () => {
  let idp: TestIdp
  beforeAll(async () => { idp = await startTestIdp() })
  afterAll(async () => { await idp?.close() })

  const verifier = () => createTokenVerifier(idp.identityConfig({ groupRoles: { dba: ['admin'] } }))

  test('an expired token', async () => {
    const token = await idp.machineToken()
    const exp = decodeJwt(token).exp as number
    const late = createTokenVerifier(idp.identityConfig({ clockSkewSeconds: 30 }), { now: () => (exp + 31) * 1000 })

    await expectRefused(late.verify(token), 'expired', token)
  })

  test('a token that is not yet valid (nbf beyond the clock skew)', async () => {
    const nbf = Math.floor(Date.now() / 1000) + 3600
    const token = await idp.userToken({ subject: 'alice', claims: { nbf } })

    await expectRefused(verifier().verify(token), 'not yet valid', token)
  })

  test('a token from the wrong issuer, even signed with the trusted key', async () => {
    const token = await idp.sign(validClaims('https://evil.example'))

    await expectRefused(verifier().verify(token), 'issuer mismatch', token)
  })

  test('a token for another audience', async () => {
    const token = await idp.machineToken({ audience: 'some-other-api' })

    await expectRefused(verifier().verify(token), 'audience mismatch', token)
  })

  test('alg: none', async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT', kid: idp.kid })}.${b64url(validClaims(idp.issuer))}.`

    await expectRefused(verifier().verify(token), 'algorithm not allowed', token)
  })

  test('HS256 signed with the issuer public key, even when HS256 is configured', async () => {
    const publicKey = await importJWK(idp.signingKey().publicJwk, 'RS256')
    const pem = await exportSPKI(publicKey as CryptoKey)
    const claims = validClaims(idp.issuer, { groups: ['dba'] })
    const header = { alg: 'HS256', kid: idp.kid }
    const confused = createTokenVerifier(idp.identityConfig({ algorithms: ['RS256', 'HS256'] }))

    for (const secret of [new TextEncoder().encode(pem), Buffer.from(idp.signingKey().publicJwk.n as string, 'base64url')]) {
      const token = await signWith(secret, claims, header)
      await expectRefused(verifier().verify(token), 'algorithm not allowed', token)
      await expectRefused(confused.verify(token), 'algorithm not allowed', token)
    }
  })

  test('a payload changed after signing', async () => {
    const original = await idp.userToken({ subject: 'alice', groups: ['interns'] })
    const token = tamper(original, claims => ({ ...claims, sub: 'root', groups: ['dba'] }))

    await expectRefused(verifier().verify(token), 'signature invalid', token)
  })

  test('a token signed with an unknown kid', async () => {
    const { privateKey } = await attackerKey()
    const token = await signWith(privateKey, validClaims(idp.issuer), { alg: 'RS256', kid: 'not-published' })

    await expectRefused(verifier().verify(token), 'unknown signing key', token)
  })

  test('a second, untrusted key that reuses the issuer kid', async () => {
    const { privateKey } = await attackerKey()
    const token = await signWith(privateKey, validClaims(idp.issuer), { alg: 'RS256', kid: idp.kid })

    await expectRefused(verifier().verify(token), 'signature invalid', token)
  })

  test('a 1 MB token, before any parsing or key fetching', async () => {
    const counted = countingFetch()
    const big = createTokenVerifier(idp.identityConfig({ maxTokenBytes: 16 * 1024 }), { fetch: counted.fetch })
    const token = `${b64url({ alg: 'RS256', kid: idp.kid })}.${'A'.repeat(1024 * 1024)}.sig`

    await expectRefused(big.verify(token), 'token larger than 16384 bytes', token)
    expect(counted.urls).toEqual([])
  })

  test('a token whose multibyte characters push it over the byte limit', async () => {
    const big = createTokenVerifier(idp.identityConfig({ maxTokenBytes: 100 }))
    await expectRefused(big.verify('é'.repeat(60)), 'token larger than 100 bytes')
  })

  test('something that is not a compact JWS', async () => {
    await expectRefused(verifier().verify('not-a-jwt'), 'malformed token')
    await expectRefused(verifier().verify('a.b.c.d.e'), 'malformed token')
  })

  describe('keys named by the token header', () => {
    let keyServer: Server
    let hits = 0
    let keyUrl = ''
    beforeAll(async () => {
      keyServer = createServer((_req, res) => { hits++; res.end('{"keys":[]}') })
      await new Promise<void>(resolve => keyServer.listen(0, '127.0.0.1', resolve))
      keyUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/attacker-jwks`
    })
    afterAll(async () => { await new Promise(resolve => keyServer.close(resolve)) })

    test('jku, x5u and an embedded jwk are never fetched nor trusted', async () => {
      const { privateKey, publicJwk } = await attackerKey()
      const header = { alg: 'RS256', kid: 'attacker', jku: keyUrl, x5u: keyUrl, jwk: publicJwk }
      const token = await signWith(privateKey, validClaims(idp.issuer), header)

      await expectRefused(verifier().verify(token), 'unknown signing key', token)
      const sameKid = await signWith(privateKey, validClaims(idp.issuer), { ...header, kid: idp.kid })
      await expectRefused(verifier().verify(sameKid), 'signature invalid', sameKid)
      expect(hits).toBe(0)
    })
  })

  test('no subject at all', async () => {
    const { sub: _sub, client_id: _client, ...claims } = validClaims(idp.issuer)
    const token = await idp.sign(claims)

    await expectRefused(verifier().verify(token), 'no subject', token)
  })

  test('a malformed act claim', async () => {
    const token = await idp.sign(validClaims(idp.issuer, { act: 'claude-code' }))

    await expectRefused(verifier().verify(token), 'malformed act claim', token)
  })

  describe('a groups claim that is neither a string nor an array of strings', () => {
    // Real tokens from the provider: the claim rides through its extraTokenClaims untouched.
    test.each([
      ['an object', { admins: true }],
      ['an array of numbers', [1, 2]],
      ['a mixed array', ['dba', 7]],
      ['null', null]
    ])('%s', async (_what, groups) => {
      const token = await idp.userToken({ subject: 'alice', claims: { groups } })
      expect(decodeJwt(token).groups).toEqual(groups)

      await expectRefused(verifier().verify(token), 'the groups claim groups must be a string or an array of strings', token)
    })

    test('a nested groups path that runs into a string', async () => {
      const token = await idp.userToken({ subject: 'alice', claims: { realm_access: 'dba' } })
      const nested = createTokenVerifier(idp.identityConfig({ groupsClaim: 'realm_access.roles' }))

      await expectRefused(nested.verify(token), 'the groups claim realm_access.roles cannot be read', token)
    })
  })

  describe('requireAccessTokenType', () => {
    const strict = () => createTokenVerifier(idp.identityConfig({ requireAccessTokenType: true }))

    test.each([
      ['an ID token (typ JWT)', { typ: 'JWT' }],
      ['a JWT without typ', { typ: undefined }],
      ['another JWT type', { typ: 'secevent+jwt' }]
    ])('refuses %s signed by the trusted key', async (_what, header) => {
      const token = await idp.sign(validClaims(idp.issuer), header)

      await expectRefused(strict().verify(token), 'not an access token: its JOSE header typ must be at+jwt', token)
    })
  })

  test('a configuration that allows only none/HS* algorithms is rejected at start', () => {
    expect(() => createTokenVerifier(idp.identityConfig({ algorithms: ['none', 'HS256'] })))
      .toThrow(expect.objectContaining({ code: 'SLUICE_CONFIG_INVALID' }))
  })
})
