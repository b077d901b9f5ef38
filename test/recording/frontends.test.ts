// Recording through a real front end — Snowflake SQL API v2 against the loopback upstream
// stub — for allowed, denied and failed statements (every field, the masked capture, the
// chain), and a store outage: the client gets a retryable 503 and the upstream is not called.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERR_STORE_UNAVAILABLE } from '../../src/errors.js'
import { recordStage } from '../../src/pipeline/compose.js'
import { verifyStore } from '../../src/recording/audit.js'
import { getEvent, searchEvents, type TimelineEvent } from '../../src/recording/search.js'
import { denyKeyword, maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38 }, { name: 'EMAIL', type: 'text' }]

describe('recording through the Snowflake SQL API v2 front end', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  async function post (statement: string): Promise<{ status: number, body: Record<string, unknown>, requestId: string }> {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement }) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, requestId: String(res.headers['x-request-id']) }
  }

  /** The event that answered the request (an admitted statement's completion). */
  async function eventOf (requestId: string): Promise<TimelineEvent> {
    const page = await searchEvents(gw.store, { requestId })
    const answered = page.items.filter((e) => e.phase !== 'admitted')
    expect(answered).toHaveLength(1)
    return (await getEvent(gw.store, answered[0]!.id))!
  }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT ID, EMAIL FROM CUSTOMERS', { rowtype: ROWTYPE, rowset: [['1', 'a@example.com'], ['2', 'b@example.com']] })
    // The gateway's recorder exists only once the server is built: the stage asks it lazily.
    const recorder = { ensureWritable: async () => { await gw.app.recording.ensureWritable() } }
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } },
      stages: { decide: denyKeyword('DELETE'), mask: maskColumns(['EMAIL']), record: recordStage(recorder) }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json', 'user-agent': 'recording-frontend-test/1.0' }
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  const common = {
    principalSubject: 'alice',
    groups: ['ai-agents'],
    roles: ['agent'],
    connection: 'stubbed',
    frontEnd: expect.stringContaining('snowflake'),
    method: 'POST',
    sourceIp: '127.0.0.1',
    userAgent: 'recording-frontend-test/1.0',
    sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    chain: expect.any(String),
    hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    occurredAt: expect.stringMatching(/\.\d{6}Z$/),
    durationMs: expect.any(Number)
  }

  it('records an allowed statement with its masked result', async () => {
    const res = await post('SELECT ID, EMAIL FROM CUSTOMERS')
    expect(res.status).toBe(200)
    const e = await eventOf(res.requestId)
    expect(e).toMatchObject({
      ...common, statusCode: 200, outcome: 'ok', sqlText: 'SELECT ID, EMAIL FROM CUSTOMERS',
      sqlFingerprint: 'select id, email from customers', decision: 'allow', ruleId: 'allow-rest',
      maskedColumns: ['EMAIL'], rowsReturned: 2, upstreamId: expect.any(String), hasResult: true, bytesReturned: expect.any(Number)
    })
    expect(e.result?.rows).toEqual([['1', '****'], ['2', '****']])
    expect(JSON.stringify(e)).not.toContain('example.com')
  })

  it('records a denied statement, which never reaches the upstream', async () => {
    const before = stub.queryRequests.length
    const res = await post('DELETE FROM CUSTOMERS')
    expect(res.status).toBeGreaterThanOrEqual(400)
    expect(stub.queryRequests.length).toBe(before)
    expect(await eventOf(res.requestId)).toMatchObject({
      ...common, outcome: 'denied', decision: 'deny', ruleId: 'agents-read-only', errorCode: 'SLUICE_POLICY_DENIED',
      reason: expect.stringContaining('DELETE is not allowed'), rowsReturned: null, hasResult: false
    })
  })

  it('records a statement the warehouse failed, with its error code', async () => {
    const res = await post('SELECT * FROM NOWHERE')
    expect(res.status).toBeGreaterThanOrEqual(400)
    expect(await eventOf(res.requestId)).toMatchObject({ ...common, outcome: 'error', decision: 'allow', errorCode: expect.stringMatching(/^SLUICE_/) })
    expect((await verifyStore(gw.store, gw.app.recording.key)).issues).toEqual([])
  })

  it('store down: a retryable 503, and the upstream is never called', async () => {
    const before = stub.queryRequests.length
    const store = gw.store as unknown as Record<'ping' | 'query', (...args: unknown[]) => Promise<unknown>>
    const { ping, query } = store
    const down = async (): Promise<never> => { throw new ERR_STORE_UNAVAILABLE('test: store is down') }
    store.ping = down
    store.query = down
    try {
      const res = await post('SELECT ID, EMAIL FROM CUSTOMERS')
      expect(res.status).toBe(503)
      expect(JSON.stringify(res.body)).toContain('the audit store is unavailable, nothing was executed; retry later')
      expect(stub.queryRequests.length).toBe(before)
    } finally {
      store.ping = ping
      store.query = query
    }
    expect((await post('SELECT ID, EMAIL FROM CUSTOMERS')).status).toBe(200)
  })
})
