// Regression (issue 10, item 6): a token in the URL query string (`?access_token=`, `?token=`,
// as Google clients allow) was written in clear to the info-level request log on every front
// end. Through one listening gateway with every front end and the production logger options:
// each front end refuses a query-string token with 401 (RFC 6750 invalid_request, the reason in
// the body, a recorded event), and no log line ever holds a token, refused or not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BQ_PROJECT, startInputGateway, type InputGateway } from '../support/input-gateway.js'

interface Res { status: number, headers: Headers, body: Record<string, unknown>, requestId: string }

describe('tokens in the URL query string', () => {
  let gw: InputGateway
  let token: string

  async function call (method: string, path: string, init: { headers?: Record<string, string>, body?: unknown } = {}): Promise<Res> {
    const res = await fetch(`${gw.url}${path}`, {
      method,
      headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body)
    })
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, requestId: String(res.headers.get('x-request-id')) }
  }

  /** Neither the whole token nor its payload or signature segment appears anywhere in `text`. */
  function expectNoToken (text: string, secret = token): void {
    expect(text).not.toContain(secret)
    for (const segment of secret.split('.').slice(1)) expect(text).not.toContain(segment)
  }

  async function eventOf (requestId: string): Promise<Record<string, unknown> | undefined> {
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    return events.find((e) => e.requestId === requestId) as Record<string, unknown> | undefined
  }

  beforeAll(async () => {
    gw = await startInputGateway()
    token = await gw.token('alice')
  })
  afterAll(async () => { await gw?.close() })

  // Each front end, each spelling a client might use, with and without a header token as well.
  const cases: Array<{ name: string, method: string, path: (t: string) => string, body?: unknown, bearer?: boolean, frontEnd: string }> = [
    { name: 'BigQuery jobs.query ?access_token= (what Google clients allow)', method: 'POST', path: (t) => `/bigquery/v2/projects/${BQ_PROJECT}/queries?access_token=${t}`, body: { query: 'SELECT 1' }, frontEnd: 'bigquery' },
    { name: 'BigQuery tabledata.list ?oauth_token= beside a valid header token', method: 'GET', path: (t) => `/bigquery/v2/projects/${BQ_PROJECT}/datasets/d/tables/t/data?pageToken=abc&oauth_token=${t}`, bearer: true, frontEnd: 'bigquery' },
    { name: 'SQL API ?token=', method: 'POST', path: (t) => `/api/v2/statements?async=true&token=${t}`, body: { statement: 'SELECT 1' }, frontEnd: 'snowflake-sqlapi' },
    { name: 'SQL API with a percent-encoded name (access%5Ftoken)', method: 'POST', path: (t) => `/api/v2/statements?access%5Ftoken=${t}`, body: { statement: 'SELECT 1' }, bearer: true, frontEnd: 'snowflake-sqlapi' },
    { name: 'connector login ?access_token= (the token belongs in the body)', method: 'POST', path: (t) => `/session/v1/login-request?databaseName=DB&access_token=${t}`, body: { data: { AUTHENTICATOR: 'OAUTH', TOKEN: 'x' } }, frontEnd: 'snowflake-connector' },
    { name: 'connector query-request ?id_token=', method: 'POST', path: (t) => `/queries/v1/query-request?requestId=7&id_token=${t}`, body: { sqlText: 'SELECT 1' }, frontEnd: 'snowflake-connector' },
    { name: 'connector chunk download, a JWT under any parameter name', method: 'GET', path: (t) => `/sluice/snowflake/chunks/00000000-0000-4000-8000-000000000000/0?x=${t}`, frontEnd: 'snowflake-connector' },
    { name: 'whoami ?Access_Token= (any letter case)', method: 'GET', path: (t) => `/v1/whoami?Access_Token=${t}`, bearer: true, frontEnd: 'identity' }
  ]

  for (const c of cases) {
    it(`refuses ${c.name}: 401, invalid_request, the reason, a recorded event`, async () => {
      const res = await call(c.method, c.path(token), { body: c.body, headers: c.bearer === true ? { authorization: `Bearer ${token}` } : {} })

      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="sluice", error="invalid_request", error_description="the token was rejected: a token in the URL query string \(/)
      const message = JSON.stringify(res.body)
      expect(message).toContain('a token in the URL query string')
      expect(message).toContain('send the token in the Authorization: Bearer header')
      expectNoToken(message)
      expectNoToken(res.headers.get('www-authenticate') ?? '')

      const event = await eventOf(res.requestId)
      expect(event).toMatchObject({ outcome: 'unauthenticated', statusCode: 401, errorCode: 'SLUICE_AUTH_INVALID', frontEnd: c.frontEnd, sessionId: null })
      expectNoToken(JSON.stringify(event))
    })
  }

  it('answers each front end in its own shape', async () => {
    const bq = await call('POST', `/bigquery/v2/projects/${BQ_PROJECT}/queries?access_token=${token}`, { body: { query: 'SELECT 1' } })
    expect(bq.body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED', errors: [{ reason: 'authError' }] } })
    const login = await call('POST', `/session/v1/login-request?token=${token}`, { body: { data: { AUTHENTICATOR: 'OAUTH', TOKEN: token } } })
    expect(login.body).toMatchObject({ success: false, code: '390303', data: { errorCode: '390303' } })
    const sqlApi = await call('POST', `/api/v2/statements?token=${token}`, { body: { statement: 'SELECT 1' } })
    expect(sqlApi.body).toEqual({ code: 'SLUICE_AUTH_INVALID', message: expect.stringContaining('URL query string (token)') })
  })

  it('nothing reached an upstream, and the refused token was not used to log in', async () => {
    expect(gw.bigquery.bodies).toEqual([])
    expect(gw.snowflake.logins).toBe(0)
  })

  it('lets ordinary query parameters through: BigQuery pageToken is a cursor, not a credential', async () => {
    const res = await call('GET', `/bigquery/v2/projects/${BQ_PROJECT}/jobs?pageToken=abc&maxResults=1`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).not.toBe(401)
  })

  it('writes no token to any log line, and the request line shows the URL redacted', async () => {
    // A public route and an unknown one are not refused, but their URLs are logged too.
    expect((await call('GET', `/.well-known/x?access_token=${token}`)).status).toBe(404)
    expect((await call('GET', `/nope?token=${token}&sig=s3cr3tsig&api_key=k3y&password=hunter2`)).status).toBe(404)

    const captured = gw.logs.join('\n')
    expect(captured.length).toBeGreaterThan(0)
    expectNoToken(captured)
    for (const secret of ['s3cr3tsig', 'k3y', 'hunter2']) expect(captured).not.toContain(secret)

    const lines = gw.logs.map((l) => JSON.parse(l) as { msg?: string, req?: { url?: string } })
    // One line per round trip at info, carrying the (redacted) URL.
    const urls = lines.filter((l) => l.msg === 'request completed').map((l) => l.req?.url ?? '')
    expect(urls).toContain('/.well-known/x?access_token=[redacted]')
    expect(urls).toContain('/nope?token=[redacted]&sig=[redacted]&api_key=[redacted]&password=[redacted]')
    expect(urls).toContain(`/bigquery/v2/projects/${BQ_PROJECT}/datasets/d/tables/t/data?pageToken=[redacted]&oauth_token=[redacted]`)
    expect(urls).toContain('/session/v1/login-request?databaseName=DB&access_token=[redacted]')
    // The refusals themselves were logged, by reason.
    expect(captured).toContain('a token in the URL query string')
  })

  it('logs one info line per round trip; the incoming-request line is debug only', () => {
    const lines = gw.logs.map((l) => JSON.parse(l) as { msg?: string, level: number, reqId?: string })
    const completed = lines.filter((l) => l.msg === 'request completed')
    expect(completed.length).toBeGreaterThan(3)
    expect(completed.every((l) => l.level === 30)).toBe(true)
    expect(new Set(completed.map((l) => l.reqId)).size).toBe(completed.length)
    expect(lines.filter((l) => l.msg === 'incoming request')).toEqual([])
  })
})
