// Regressions (issue 10, items 7 and 9) through a listening gateway with every front end:
// - a groups claim that is neither a string nor an array of strings used to be read as "no
//   groups", and a connector login succeeded; now every front end refuses the token (401 or
//   the connector's own refusal) with the reason, records the attempt, and never logs in upstream;
// - identity.clientRoles used to go to any token whose azp matched, human tokens included;
// - identity.requireAccessTokenType refuses ID tokens (JOSE typ other than at+jwt).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectSdk, destroySdk } from '../support/snowflake-node-client.js'
import { BQ_PROJECT, startInputGateway, type InputGateway } from '../support/input-gateway.js'
import { validClaims } from './forge.js'

describe('claims through the HTTP front ends', () => {
  let gw: InputGateway

  beforeAll(async () => {
    gw = await startInputGateway({
      identity: { clientRoles: { cursor: ['admin'], 'ci-bot': ['ci'] }, requireAccessTokenType: true }
    })
  })
  afterAll(async () => { await gw?.close() })

  async function eventOf (requestId: string | null): Promise<Record<string, unknown> | undefined> {
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    return events.find((e) => e.requestId === requestId) as Record<string, unknown> | undefined
  }

  const badGroups = async (groups: unknown): Promise<string> => await gw.idp.userToken({ subject: 'mallory', claims: { groups } })

  describe('a malformed groups claim', () => {
    it('whoami and BigQuery: 401 with the reason in WWW-Authenticate and the body, recorded', async () => {
      const token = await badGroups({ admins: true })
      const whoami = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
      expect(whoami.status).toBe(401)
      expect(whoami.headers.get('www-authenticate')).toContain('error="invalid_token", error_description="the token was rejected: the groups claim groups must be a string or an array of strings, not an object"')
      expect(await eventOf(whoami.headers.get('x-request-id'))).toMatchObject({ outcome: 'unauthenticated', errorCode: 'SLUICE_AUTH_INVALID', reason: expect.stringContaining('groups claim') })

      const bq = await fetch(`${gw.url}/bigquery/v2/projects/${BQ_PROJECT}/queries`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await badGroups([1, 2])}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'SELECT 1' })
      })
      expect(bq.status).toBe(401)
      expect(await bq.json()).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED', message: expect.stringContaining('it holds a number') } })
      expect(gw.bigquery.bodies).toEqual([])
    })

    it('connector login over the wire: refused in the connector shape, recorded, no upstream login', async () => {
      const res = await fetch(`${gw.url}/session/v1/login-request?databaseName=DB`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: { AUTHENTICATOR: 'OAUTH', TOKEN: await badGroups(['dba', 7]), ACCOUNT_NAME: 'acme' } })
      })
      const body = await res.json() as Record<string, unknown>
      expect(body).toMatchObject({ success: false, code: '390303', message: expect.stringContaining('the groups claim groups must be a string or an array of strings; it holds a number') })
      expect(await eventOf(res.headers.get('x-request-id'))).toMatchObject({ outcome: 'unauthenticated', errorCode: 'SLUICE_AUTH_INVALID', frontEnd: 'snowflake-connector' })
      expect(gw.snowflake.logins).toBe(0)
    })

    it('snowflake-sdk cannot connect and is told why', async () => {
      const attempt = connectSdk({ accessUrl: gw.url, account: 'acme', token: await badGroups(null) })
      await expect(attempt).rejects.toThrow(/the groups claim groups must be a string or an array of strings, not null/)
      expect(gw.snowflake.logins).toBe(0)
    })

    it('an absent groups claim is still "no groups": the same client logs in', async () => {
      const token = await gw.idp.userToken({ subject: 'nora' })
      const whoami = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
      expect(whoami.status).toBe(200)
      expect(await whoami.json()).toMatchObject({ subject: 'nora', groups: [] })
      const conn = await connectSdk({ accessUrl: gw.url, account: 'acme', token })
      await destroySdk(conn)
    })
  })

  describe('clientRoles go to machine principals only', () => {
    it('a human token obtained through client cursor does not get cursor\'s client roles', async () => {
      const token = await gw.idp.userToken({ subject: 'alice', groups: ['ai-agents'], clientId: 'cursor' })
      const res = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
      expect(res.status).toBe(200)
      const body = await res.json() as Record<string, unknown>
      expect(body).toMatchObject({ type: 'human', clientId: 'cursor', roles: ['agent'] })
      expect(body.roles).not.toContain('admin')
    })

    it('a client-credentials token of ci-bot does get ci-bot\'s client roles', async () => {
      const res = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${await gw.idp.machineToken({ clientId: 'ci-bot' })}` } })
      expect(await res.json()).toMatchObject({ type: 'machine', clientId: 'ci-bot', roles: ['ci'] })
    })
  })

  describe('requireAccessTokenType', () => {
    it('refuses an ID-token-shaped JWT signed by the trusted issuer key, on every front end', async () => {
      const idToken = await gw.idp.sign(validClaims(gw.idp.issuer, { sub: 'alice', groups: ['ai-agents'] }), { typ: 'JWT' })
      const reason = 'not an access token: its JOSE header typ must be at+jwt'

      const whoami = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${idToken}` } })
      expect(whoami.status).toBe(401)
      expect(whoami.headers.get('www-authenticate')).toContain(reason)

      const sqlApi = await fetch(`${gw.url}/api/v2/statements`, {
        method: 'POST',
        headers: { authorization: `Bearer ${idToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ statement: 'SELECT 1' })
      })
      expect(sqlApi.status).toBe(401)
      expect(await eventOf(sqlApi.headers.get('x-request-id'))).toMatchObject({ outcome: 'unauthenticated', reason: expect.stringContaining(reason) })

      await expect(connectSdk({ accessUrl: gw.url, account: 'acme', token: idToken })).rejects.toThrow(reason)
    })

    it('accepts the provider\'s real access tokens (typ at+jwt)', async () => {
      const res = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${await gw.token('alice')}` } })
      expect(res.status).toBe(200)
    })
  })
})
