// Connector sessions shared by two gateways on one store with one secrets.key (two replicas in
// this process), against the loopback upstream stub, which says which upstream session ran each
// statement and counts logins, renewals and logouts. A session logged in on one replica is
// served by the other on the same upstream session; renewals, logouts and expiry on one are
// seen by the other at once; the stored row opens nothing upstream.
import { request } from 'undici'
import { ERR_STORE_UNAVAILABLE } from '../../src/errors.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const KEY = 'replicas-share-this-secrets-key-0123456789'
const ROWTYPE = [{ name: 'ONE', type: 'fixed', scale: 0, precision: 38, nullable: false }]

type Body = Record<string, unknown> & { success?: boolean, code?: string | null, data?: Record<string, unknown> | null }

interface Login { token: string, masterToken: string, sessionId: number, upstreamSession: number }

describe('connector sessions across two gateways on one store', () => {
  let stub: UpstreamStub
  let a: SnowflakeGateway
  let b: SnowflakeGateway

  const post = async (gw: SnowflakeGateway, path: string, body: unknown, auth?: string): Promise<Body> => {
    const res = await request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Snowflake Token="${auth}"` }) },
      body: JSON.stringify(body)
    })
    return await res.body.json() as Body
  }
  const query = async (gw: SnowflakeGateway, token: string, sqlText: string): Promise<Body> =>
    await post(gw, '/queries/v1/query-request', { sqlText }, token)
  const login = async (gw: SnowflakeGateway, subject = 'alice'): Promise<Login> => {
    const res = await post(gw, '/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await gw.token(subject) } })
    expect(res.success).toBe(true)
    const data = res.data as Record<string, unknown>
    // The stub numbers its sessions by login.
    return { token: String(data.token), masterToken: String(data.masterToken), sessionId: Number(data.sessionId), upstreamSession: stub.logins }
  }
  /** The upstream session the last statement with this text ran on. */
  const ranOn = (sqlText: string): number | undefined => stub.queryLog.filter((q) => q.sqlText === sqlText).at(-1)?.session

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT ONE', { rowtype: ROWTYPE, rowset: [['1']] })
    const connections = { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'upstream-secret' } }
    a = await startSnowflakeGateway({ connections, secretsKey: KEY })
    b = await startSnowflakeGateway({ connections, secretsKey: KEY, store: a.store, idp: a.idp })
  }, 120_000)

  afterAll(async () => {
    await b?.close().catch(() => undefined)
    await a?.close()
    await stub?.close()
  })

  it('serves a session logged in on A from B, on the same upstream session and for the same principal, without logging in upstream again', async () => {
    const s = await login(a)
    const logins = stub.logins
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const onA = stub.queryLog.at(-1)?.queryId
    const last = await query(b, s.token, 'SELECT LAST_QUERY_ID()')
    expect(last).toMatchObject({ success: true, data: { rowset: [[onA]] } })
    expect(ranOn('SELECT LAST_QUERY_ID()')).toBe(s.upstreamSession)
    expect(stub.logins).toBe(logins)
    const events = await b.app.recorder.listEvents({ limit: 1000 })
    const mine = events.filter((e) => e.sqlText === 'SELECT LAST_QUERY_ID()')
    expect(mine.length).toBeGreaterThan(0)
    expect([...new Set(mine.map((e) => e.principalSubject))]).toEqual(['alice'])
    // Heartbeats on either replica keep the same upstream session alive.
    expect(await post(b, '/session/heartbeat', {}, s.token)).toMatchObject({ success: true })
  })

  it('keeps the client\'s result format and the OIDC token\'s expiry: a Python connector login on A gets Arrow from B, no token outlives the OIDC one', async () => {
    const oidc = await a.idp.userToken({ subject: 'alice', groups: ['ai-agents'], expiresInSeconds: 120 })
    const res = await post(a, '/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: oidc, CLIENT_APP_ID: 'PythonConnector' } })
    const data = res.data as { token: string, masterToken: string, validityInSeconds: number, masterValidityInSeconds: number }
    expect(data.validityInSeconds).toBeLessThanOrEqual(120)
    expect(data.masterValidityInSeconds).toBeLessThanOrEqual(120)
    for (const gw of [b, a]) expect(await query(gw, data.token, 'SELECT ONE')).toMatchObject({ success: true, data: { queryResultFormat: 'arrow' } })
    const renewed = await post(b, '/session/token-request', { requestType: 'RENEW' }, data.masterToken)
    expect(renewed.data?.validityInSecondsST).toBeLessThanOrEqual(120)
  })

  it('keeps the upstream tokens sealed and Sluice\'s own tokens as digests: the row opens nothing', async () => {
    const s = await login(b)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const upstreamToken = stub.queryLog.at(-1)?.token ?? ''
    expect(upstreamToken).toMatch(/^st-\d+$/)
    const [row] = await a.store.query<{ t: string }>('select c::text as t from connector_sessions c where id = $1::bigint', [String(s.sessionId)])
    const text = row?.t ?? ''
    expect(text).toContain('"alice"')
    for (const secret of [`"${upstreamToken}"`, `"mt-${upstreamToken.slice(3)}"`, s.token, s.masterToken, 'upstream-secret']) expect(text).not.toContain(secret)
    // Nor does the sealed value decode to them in any plain encoding.
    const [raw] = await a.store.query<{ sealed: Uint8Array }>('select upstream_sealed as sealed from connector_sessions where id = $1::bigint', [String(s.sessionId)])
    expect(Buffer.from(raw!.sealed).toString('latin1')).not.toContain(upstreamToken)
  })

  it('renews on B with the master token; the new token works on A, the old one on neither', async () => {
    const s = await login(a)
    const renewed = await post(b, '/session/token-request', { requestType: 'RENEW', oldSessionToken: s.token }, s.masterToken)
    expect(renewed).toMatchObject({ success: true, data: { sessionId: s.sessionId } })
    const fresh = String(renewed.data?.sessionToken)
    expect(fresh).not.toBe(s.token)
    expect(await query(a, fresh, 'SELECT ONE')).toMatchObject({ success: true })
    expect(ranOn('SELECT ONE')).toBe(s.upstreamSession)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390104' })
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390104' })
  })

  it('answers 390112 on either replica once the session token ran out, and 390104 once the master did', async () => {
    const s = await login(a)
    await a.store.query("update connector_sessions set token_expires_at = now() - interval '1 second' where id = $1::bigint", [String(s.sessionId)])
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390112' })
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390112' })
    await a.store.query("update connector_sessions set expires_at = now() - interval '1 second' where id = $1::bigint", [String(s.sessionId)])
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390104' })
    expect(await post(a, '/session/token-request', { requestType: 'RENEW' }, s.masterToken)).toMatchObject({ success: false, code: '390114' })
    // The next login anywhere claims the expired session and closes its upstream session.
    await login(b)
    await a.app.snowflake.sessions.purging
    await b.app.snowflake.sessions.purging
    for (let i = 0; i < 50 && !stub.loggedOut.includes(s.upstreamSession); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(stub.loggedOut).toContain(s.upstreamSession)
    expect((await a.store.query('select 1 from connector_sessions where id = $1::bigint', [String(s.sessionId)])).length).toBe(0)
  })

  it('a live session\'s request purges expired ones too, without any login: their upstream sessions are closed', async () => {
    const live = await login(a)
    const stale = await login(a)
    await a.store.query("update connector_sessions set expires_at = now() - interval '1 second' where id = $1::bigint", [String(stale.sessionId)])
    // A replica that has not purged yet (the purge runs at most once a minute per process).
    const c = await startSnowflakeGateway({ connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'upstream-secret' } }, secretsKey: KEY, store: a.store, idp: a.idp })
    try {
      const logins = stub.logins
      expect(await query(c, live.token, 'SELECT ONE')).toMatchObject({ success: true })
      await c.app.snowflake.sessions.purging
      for (let i = 0; i < 50 && !stub.loggedOut.includes(stale.upstreamSession); i++) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(stub.loggedOut).toContain(stale.upstreamSession)
      expect(stub.logins).toBe(logins)
      expect((await a.store.query('select 1 from connector_sessions where id = $1::bigint', [String(stale.sessionId)])).length).toBe(0)
      expect(await query(c, live.token, 'SELECT ONE')).toMatchObject({ success: true })
    } finally {
      await c.close()
    }
  })

  it('renews the upstream session once when it expires: B renews and stores the tokens, A takes them without renewing', async () => {
    const s = await login(a)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const renewals = stub.renewals
    stub.expireSessionToken()
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(stub.renewals).toBe(renewals + 1)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(stub.renewals).toBe(renewals + 1)
    expect(ranOn('SELECT ONE')).toBe(s.upstreamSession)
  })

  it('renews once when both replicas see the upstream token expire at the same time', async () => {
    const s = await login(a)
    // Both replicas hold the session's upstream session before it expires.
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const renewals = stub.renewals
    stub.expireSessionToken()
    const answers = await Promise.all([a, b, a, b].map(async (gw) => await query(gw, s.token, 'SELECT ONE')))
    expect(answers.every((r) => r.success === true)).toBe(true)
    expect(stub.renewals).toBe(renewals + 1)
  })

  it('logs in again upstream once when the upstream session is gone; the other replica moves to the new one', async () => {
    const s = await login(b)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const logins = stub.logins
    stub.dropSessions()
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(stub.logins).toBe(logins + 1)
    const now = ranOn('SELECT ONE')
    expect(now).not.toBe(s.upstreamSession)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(ranOn('SELECT ONE')).toBe(now)
    expect(stub.logins).toBe(logins + 1)
  })

  it('logs in again upstream once when both replicas find the upstream session gone at the same time', async () => {
    const s = await login(a)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    const logins = stub.logins
    stub.dropSessions()
    const answers = await Promise.all([b, a, b, a].map(async (gw) => await query(gw, s.token, 'SELECT ONE')))
    expect(answers.every((r) => r.success === true)).toBe(true)
    expect(stub.logins).toBe(logins + 1)
    const ran = stub.queryLog.slice(-4).map((q) => q.session)
    expect(new Set(ran)).toEqual(new Set([stub.logins]))
  })

  it('logs out on A: B refuses the session at once, and the upstream session is closed', async () => {
    const s = await login(b)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(await post(a, '/session?delete=true', {}, s.token)).toMatchObject({ success: true })
    expect(stub.loggedOut).toContain(s.upstreamSession)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390104' })
    expect(await post(b, '/session/token-request', { requestType: 'RENEW' }, s.masterToken)).toMatchObject({ success: false, code: '390114' })
  })

  it('keeps principals apart: bob\'s session has its own upstream session, and his master token renews only his', async () => {
    const alice = await login(a, 'alice')
    const bob = await login(b, 'bob')
    expect(await query(a, alice.token, 'SELECT ONE')).toMatchObject({ success: true })
    const alicesQuery = stub.queryLog.at(-1)?.queryId
    const seen = await query(a, bob.token, 'SELECT LAST_QUERY_ID()')
    expect(JSON.stringify(seen)).not.toContain(String(alicesQuery))
    expect(ranOn('SELECT LAST_QUERY_ID()')).toBe(bob.upstreamSession)
    const renewed = await post(a, '/session/token-request', { requestType: 'RENEW', oldSessionToken: alice.token }, bob.masterToken)
    expect(renewed.data?.sessionId).toBe(bob.sessionId)
    // Alice's token is untouched by bob's renewal.
    expect(await query(b, alice.token, 'SELECT ONE')).toMatchObject({ success: true })
    const events = await a.app.recorder.listEvents({ limit: 1000 })
    expect(events.filter((e) => e.sqlText === 'SELECT LAST_QUERY_ID()').at(-1)?.principalSubject).toBe('bob')
  })

  it('refuses the sessions on a gateway with another secrets.key: it cannot open their upstream tokens', async () => {
    const s = await login(a)
    const stranger = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'upstream-secret' } },
      secretsKey: 'a-different-secrets-key-of-another-deployment',
      store: a.store,
      idp: a.idp
    })
    try {
      const logins = stub.logins
      expect(await query(stranger, s.token, 'SELECT ONE')).toMatchObject({ success: false, code: '390104' })
      expect(stub.logins).toBe(logins)
    } finally {
      await stranger.close()
    }
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
  })

  it('answers a retryable 503 in the connector\'s shape when the store cannot be read for the session, and runs nothing', async () => {
    const s = await login(a)
    const store = b.store as unknown as { query: (text: string, params?: unknown[]) => Promise<unknown[]> }
    const query_ = store.query
    store.query = async (text, params) => {
      if (text.includes('from connector_sessions')) throw new ERR_STORE_UNAVAILABLE('test: store is down')
      return await query_(text, params)
    }
    const ran = stub.queryLog.length
    try {
      const res = await request(`${b.url}/queries/v1/query-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${s.token}"` },
        body: JSON.stringify({ sqlText: 'SELECT ONE' })
      })
      expect(res.statusCode).toBe(503)
      expect(await res.body.json()).toMatchObject({ success: false, message: expect.stringContaining('nothing was executed') })
    } finally {
      store.query = query_
    }
    expect(stub.queryLog.length).toBe(ran)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
  })

  it('leaves connector sessions open upstream when a replica stops: the other keeps serving them', async () => {
    const s = await login(b)
    expect(await query(b, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    await b.close()
    expect(stub.loggedOut).not.toContain(s.upstreamSession)
    expect(await query(a, s.token, 'SELECT ONE')).toMatchObject({ success: true })
    expect(ranOn('SELECT ONE')).toBe(s.upstreamSession)
  })
})
