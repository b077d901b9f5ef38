// Limits Sluice keeps itself, whatever the warehouse does: an unreachable upstream answered as
// retryable in each Snowflake protocol (nothing ran), the rule's statement timeout cancelling a
// statement that stalls, and maxRows truncating (announced, recorded) or refusing.
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import snowflake from 'snowflake-sdk'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectSdk, destroySdk, runSdk } from '../support/snowflake-node-client.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'N', type: 'fixed', scale: 0, precision: 38 }]

/** A loopback port nothing listens on: connecting to it is refused at once. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

describe('an unreachable Snowflake upstream is retryable and named', () => {
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  beforeAll(async () => {
    const port = await closedPort()
    gw = await startSnowflakeGateway({
      connections: { 'snowflake-down': { kind: 'snowflake', url: `http://127.0.0.1:${port}`, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => { await gw?.close() })

  it('SQL API: 503 with Retry-After, naming the connection, instead of 422 000603', async () => {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: 'SELECT 1' }) })
    const body = await res.body.json() as { code: string, message: string }
    expect(res.statusCode).toBe(503)
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    expect(body.message).toContain('snowflake-down')
    expect(body.message).toMatch(/unreachable, nothing was executed; retry later/)
  })

  it('connector login: HTTP 503 (which the drivers retry) with the connector body naming the connection', async () => {
    const res = await request(`${gw.url}/session/v1/login-request`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ data: { AUTHENTICATOR: 'OAUTH', TOKEN: headers.authorization?.slice(7), ACCOUNT_NAME: 'sluice', CLIENT_APP_ID: 'JavaScript' } })
    })
    const body = await res.body.json() as { success: boolean, message: string }
    expect(res.statusCode).toBe(503)
    expect(body.success).toBe(false)
    expect(body.message).toContain('snowflake-down')
  })

  it('snowflake-sdk: the login fails with the retryable 503 after its (few) retries', async () => {
    const connection = snowflake.createConnection({
      accessUrl: gw.url,
      account: 'sluice',
      authenticator: 'OAUTH',
      token: await gw.token('alice'),
      sfRetryMaxLoginRetries: 1
    } as Parameters<typeof snowflake.createConnection>[0])
    const err = await new Promise<unknown>((resolve) => { connection.connect((e) => { resolve(e) }) })
    // The driver's network-failure error after retrying (401002), not a statement error (000603).
    expect(err).toMatchObject({ name: 'RequestFailedError', code: 401002 })
  }, 60_000)
})

describe('the rule\'s statement timeout, enforced by Sluice against a stalled upstream', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  beforeAll(async () => {
    stub = await startUpstreamStub()
    // Stands in for a warehouse that neither finishes nor honours STATEMENT_TIMEOUT_IN_SECONDS.
    stub.statements.set('SELECT STALLED', { rowtype: ROWTYPE, rowset: [['0']], pollsBeforeResult: 1_000_000 })
    gw = await startSnowflakeGateway({
      connections: { stalled: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: {
        decide: {
          name: 'decide',
          enforcing: true,
          decide: () => ({ effect: 'allow', ruleId: 'agents-limited', reason: 'allowed', limits: { statementTimeoutSeconds: 1 } })
        }
      }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  it('SQL API: 422 QueryFailureStatus 000630 and the upstream statement aborted', async () => {
    const started = Date.now()
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: 'SELECT STALLED' }) })
    let status = res.statusCode
    let body = await res.body.json() as Record<string, unknown>
    while (status === 202 && Date.now() - started < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      const poll = await request(`${gw.url}${String(body.statementStatusUrl)}`, { headers })
      status = poll.statusCode
      body = await poll.body.json() as Record<string, unknown>
    }
    expect(status).toBe(422)
    expect(body).toMatchObject({ code: '000630', sqlState: '57014' })
    expect(String(body.message)).toContain('Statement reached its statement or warehouse timeout of 1 second(s) and was canceled.')
    expect(Date.now() - started).toBeLessThan(25_000)
    expect(stub.requests.some((r) => r.includes('abort-request'))).toBe(true)
  }, 40_000)

  it('snowflake-sdk: the statement fails with 000630 instead of polling for minutes', async () => {
    const conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice') })
    try {
      const err = await runSdk(conn, 'SELECT STALLED').then(() => undefined, (e: unknown) => e)
      expect(err).toMatchObject({ code: '000630' })
      expect(String((err as Error).message)).toContain('timeout of 1 second(s) and was canceled')
    } finally {
      await destroySdk(conn)
    }
  }, 40_000)
})

describe('maxRows truncates (announced, recorded) or refuses, per limits.maxRowsAction', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT MANY', { rowtype: ROWTYPE, rowset: [['1'], ['2'], ['3'], ['4']] })
    stub.statements.set('SELECT MANY /* REFUSE */', { rowtype: ROWTYPE, rowset: [['1'], ['2'], ['3'], ['4']] })
    stub.statements.set('SELECT FEW', { rowtype: ROWTYPE, rowset: [['1'], ['2']] })
    gw = await startSnowflakeGateway({
      connections: { capped: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: {
        decide: {
          name: 'decide',
          enforcing: true,
          decide: (statement) => statement.sql.includes('REFUSE')
            ? { effect: 'allow', ruleId: 'rows-refused', reason: 'allowed', limits: { maxRows: 2, maxRowsAction: 'refuse' } }
            : { effect: 'allow', ruleId: 'rows-capped', reason: 'allowed', limits: { maxRows: 2 } }
        }
      }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  async function submit (statement: string): Promise<{ status: number, body: Record<string, unknown>, requestId: string }> {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement }) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, requestId: String(res.headers['x-request-id'] ?? '') }
  }

  /** The reasons recorded for a statement (its completion is committed around the answer). */
  async function eventReasons (sql: string): Promise<string> {
    let reasons = ''
    for (let i = 0; i < 50 && !reasons.includes('limited'); i++) {
      const rows = await gw.store.query<{ reason: string | null }>('select reason from session_events where sql_text = $1', [sql])
      reasons = rows.map((r) => r.reason ?? '').join('\n')
      if (!reasons.includes('limited')) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return reasons
  }

  it('SQL API truncate: two rows, the message says the result was limited, the event records it', async () => {
    const res = await submit('SELECT MANY')
    expect(res.status).toBe(200)
    expect(res.body.data).toEqual([['1'], ['2']])
    expect(String(res.body.message)).toContain('limited to its first 2 rows by rule rows-capped (limits.maxRows)')
    expect(await eventReasons('SELECT MANY')).toContain('result limited to 2 rows by rule rows-capped (limits.maxRows)')
  })

  it('SQL API: a result within the limit is not announced as limited', async () => {
    const res = await submit('SELECT FEW')
    expect(res.status).toBe(200)
    expect(res.body.message).toBe('Statement executed successfully.')
  })

  it('SQL API refuse: 422 QueryFailureStatus and no rows', async () => {
    const res = await submit('SELECT MANY /* REFUSE */')
    expect(res.status).toBe(422)
    expect(res.body.data).toBeUndefined()
    expect(String(res.body.message)).toContain('more than 2 rows, the most rule rows-refused allows')
  })

  it('snowflake-sdk truncate and refuse', async () => {
    const conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice') })
    try {
      const cut = await runSdk(conn, 'SELECT MANY')
      expect(cut.rows).toEqual([{ N: 1 }, { N: 2 }])
      const err = await runSdk(conn, 'SELECT MANY /* REFUSE */').then(() => undefined, (e: unknown) => e)
      expect(String((err as Error).message)).toContain('more than 2 rows')
    } finally {
      await destroySdk(conn)
    }
  })
})

describe('an upstream that holds its first answer, or drops the connection after the request', () => {
  let server: Server
  let gw: SnowflakeGateway
  let headers: Record<string, string>
  const aborts: Array<Record<string, unknown>> = []
  const held: ServerResponse[] = []

  beforeAll(async () => {
    // Only what these two cases need of the connector protocol: a login, then a query-request
    // that is never answered (HOLD) or whose socket is destroyed once it arrived (DROP).
    server = createHttpServer((req, res) => {
      let raw = ''
      req.on('data', (c: Buffer) => { raw += c.toString() })
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://upstream')
        const body = raw === '' ? {} : JSON.parse(raw) as Record<string, unknown>
        const json = (value: unknown): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value)) }
        if (url.pathname === '/session/v1/login-request') return json({ success: true, data: { token: 't1', masterToken: 'm1', sessionId: 1, parameters: [] } })
        if (url.pathname === '/queries/v1/abort-request') {
          aborts.push(body)
          return json({ success: true, data: null })
        }
        if (url.pathname === '/queries/v1/query-request' && body.sqlText === 'SELECT HOLD') {
          held.push(res)
          return
        }
        if (url.pathname === '/queries/v1/query-request' && body.sqlText === 'SELECT DROP') {
          req.socket.destroy()
          return
        }
        json({ success: true, data: null })
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    gw = await startSnowflakeGateway({
      connections: { holding: { kind: 'snowflake', url: `http://127.0.0.1:${port}`, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: { decide: { name: 'decide', enforcing: true, decide: () => ({ effect: 'allow', ruleId: 'agents-limited', reason: 'allowed', limits: { statementTimeoutSeconds: 1 } }) } }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => {
    for (const res of held) res.destroy()
    await gw?.close()
    server?.closeAllConnections()
    await new Promise<void>((resolve) => server?.close(() => { resolve() }))
  })

  async function submitAndWait (statement: string): Promise<{ status: number, body: Record<string, unknown> }> {
    const started = Date.now()
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement }) })
    let status = res.statusCode
    let body = await res.body.json() as Record<string, unknown>
    while (status === 202 && Date.now() - started < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      const poll = await request(`${gw.url}${String(body.statementStatusUrl)}`, { headers })
      status = poll.statusCode
      body = await poll.body.json() as Record<string, unknown>
    }
    return { status, body }
  }

  it('times out a statement whose first answer never comes, aborting it upstream by request id', async () => {
    const res = await submitAndWait('SELECT HOLD')
    expect(res.status).toBe(422)
    expect(res.body).toMatchObject({ code: '000630', sqlState: '57014' })
    expect(aborts.some((a) => typeof a.requestId === 'string' && a.requestId !== '')).toBe(true)
  }, 40_000)

  it('a connection dropped after the request was sent is not answered as retryable (it may have run)', async () => {
    const res = await submitAndWait('SELECT DROP')
    expect(res.status).toBe(422)
    expect(res.body.code).toBe('000603')
    expect(String(res.body.message)).toContain('may have run')
  }, 40_000)
})
