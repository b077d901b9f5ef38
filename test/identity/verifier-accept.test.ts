import { decodeJwt } from 'jose'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'

const groupRoles = { 'data-eng': ['analyst'], dba: ['admin', 'analyst'] }
const clientRoles = { 'ci-bot': ['ci'] }

describe('token verifier accepts real tokens from oidc-provider', () => {
  let idp: TestIdp
  beforeAll(async () => { idp = await startTestIdp() })
  afterAll(async () => { await idp?.close() })

  test('human with groups gets the roles of its groups', async () => {
    const token = await idp.userToken({ subject: 'alice', groups: ['data-eng', 'dba', 'interns'] })
    const verifier = createTokenVerifier(idp.identityConfig({ groupRoles, clientRoles }))
    const principal = await verifier.verify(token)
    const claims = decodeJwt(token)

    expect(principal).toEqual({
      subject: 'alice',
      issuer: idp.issuer,
      type: 'human',
      groups: ['data-eng', 'dba', 'interns'],
      roles: ['analyst', 'admin'],
      clientId: 'cursor',
      delegation: [],
      tokenId: claims.jti,
      expiresAt: new Date((claims.exp as number) * 1000)
    })
  })

  test('client-credentials token is a machine principal with its client roles', async () => {
    const token = await idp.machineToken()
    const principal = await createTokenVerifier(idp.identityConfig({ groupRoles, clientRoles })).verify(token)

    expect(principal).toMatchObject({ subject: 'ci-bot', clientId: 'ci-bot', type: 'machine', groups: [], roles: ['ci'], delegation: [] })
  })

  // Regression: clientRoles used to go to any token whose azp matched, human tokens included.
  test('a human token obtained through a client listed in clientRoles gets only its group roles', async () => {
    const token = await idp.userToken({ subject: 'alice', groups: ['data-eng'], clientId: 'cursor' })
    const principal = await createTokenVerifier(idp.identityConfig({ groupRoles, clientRoles: { cursor: ['admin'] } })).verify(token)

    expect(principal).toMatchObject({ type: 'human', clientId: 'cursor', roles: ['analyst'] })
  })

  test('the same client id on a client-credentials token does grant the client roles', async () => {
    const token = await idp.machineToken({ clientId: 'ci-bot' })
    const principal = await createTokenVerifier(idp.identityConfig({ clientRoles: { 'ci-bot': ['admin'] } })).verify(token)

    expect(principal).toMatchObject({ type: 'machine', clientId: 'ci-bot', roles: ['admin'] })
  })

  test('requireAccessTokenType: real at+jwt access tokens pass, in any spelling of the type', async () => {
    const strict = createTokenVerifier(idp.identityConfig({ requireAccessTokenType: true }))
    // oidc-provider marks its JWT access tokens typ: at+jwt (RFC 9068).
    await expect(strict.verify(await idp.machineToken())).resolves.toMatchObject({ type: 'machine' })
    await expect(strict.verify(await idp.userToken({ subject: 'alice' }))).resolves.toMatchObject({ type: 'human' })
    const now = Math.floor(Date.now() / 1000)
    const claims = { iss: idp.issuer, aud: 'sluice', sub: 'erin', client_id: 'cursor', iat: now, exp: now + 60 }
    for (const typ of ['AT+JWT', 'application/at+jwt', 'Application/AT+JWT']) {
      await expect(strict.verify(await idp.sign(claims, { typ }))).resolves.toMatchObject({ subject: 'erin' })
    }
  })

  test('without requireAccessTokenType an ID-token-shaped JWT (typ JWT) is still accepted', async () => {
    const now = Math.floor(Date.now() / 1000)
    const token = await idp.sign({ iss: idp.issuer, aud: 'sluice', sub: 'erin', client_id: 'cursor', iat: now, exp: now + 60 }, { typ: 'JWT' })
    await expect(createTokenVerifier(idp.identityConfig()).verify(token)).resolves.toMatchObject({ subject: 'erin' })
  })

  test('RFC 8693 act claim becomes the delegation chain, current actor first', async () => {
    const token = await idp.userToken({
      subject: 'alice',
      groups: ['data-eng'],
      act: { sub: 'claude-code', client_id: 'cursor', act: { sub: 'orchestrator' } }
    })
    const principal = await createTokenVerifier(idp.identityConfig({ groupRoles })).verify(token)

    expect(principal.type).toBe('human')
    expect(principal.subject).toBe('alice')
    expect(principal.delegation).toEqual([{ subject: 'claude-code', clientId: 'cursor' }, { subject: 'orchestrator' }])
  })

  test('groups read from a nested claim path (realm_access.roles)', async () => {
    const token = await idp.userToken({ subject: 'bob', claims: { realm_access: { roles: ['dba'] } } })
    const principal = await createTokenVerifier(idp.identityConfig({ groupRoles, groupsClaim: 'realm_access.roles' })).verify(token)

    expect(principal.groups).toEqual(['dba'])
    expect(principal.roles).toEqual(['admin', 'analyst'])
  })

  test('a single-string groups claim is one group, not split on spaces', async () => {
    const token = await idp.userToken({ subject: 'carol', groups: 'data eng' })
    const principal = await createTokenVerifier(idp.identityConfig({ groupRoles: { 'data eng': ['analyst'] } })).verify(token)

    expect(principal.groups).toEqual(['data eng'])
    expect(principal.roles).toEqual(['analyst'])
  })

  test('any of several configured audiences is enough', async () => {
    const token = await idp.machineToken({ audience: 'warehouse-gateway' })
    const principal = await createTokenVerifier(idp.identityConfig({ audience: ['sluice', 'warehouse-gateway'] })).verify(token)

    expect(principal.subject).toBe('ci-bot')
  })

  test('a token just past exp is still accepted inside the clock skew', async () => {
    const token = await idp.machineToken()
    const exp = decodeJwt(token).exp as number
    const verifier = createTokenVerifier(idp.identityConfig({ clockSkewSeconds: 30 }), { now: () => (exp + 20) * 1000 })

    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'ci-bot' })
  })

  test('a token without kid is verified against the matching published key', async () => {
    const now = Math.floor(Date.now() / 1000)
    // JSON drops the undefined kid, so the header carries none.
    const token = await idp.sign({ iss: idp.issuer, aud: 'sluice', sub: 'dave', client_id: 'cursor', iat: now, exp: now + 60 }, { kid: undefined })

    await expect(createTokenVerifier(idp.identityConfig()).verify(token)).resolves.toMatchObject({ subject: 'dave', type: 'human' })
  })
})
