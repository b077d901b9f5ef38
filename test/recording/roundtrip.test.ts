// Every field of an event, for allowed, denied and failed round trips through a pipeline-driven
// front-end route and through /v1/whoami, on both stores; and fail-closed admission: with the
// store down the client gets a retryable 503 and the upstream is never called; an admitted
// statement's admitted event is committed before the upstream runs, and a store failing after it
// ran withholds the result with a distinct, non-retryable error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatReport, verifyStore } from '../../src/recording/audit.js'
import type { StoredEvent } from '../../src/recording/event.js'
import { getEvent, searchEvents, type TimelineEvent } from '../../src/recording/search.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { storeEngines } from '../support/stores.js'
import { startHarness, switchableStore, type Harness } from './harness.js'
import { ed25519Pem } from './helpers.js'

const slow = { timeout: 120_000 }

describe.each(storeEngines())('round trips recorded on $name', slow, (engine) => {
  let idp: TestIdp
  let store: Store & { down: boolean }
  let h: Harness
  let token: string

  beforeAll(async () => {
    idp = await startTestIdp()
    const inner = await engine.open()
    await migrate(inner)
    store = switchableStore(inner)
    h = await startHarness({
      store,
      identity: idp.identityConfig(),
      recording: { checkpointKey: ed25519Pem().privatePem, redact: { params: ['*password*'], values: [] } },
      routes (app) {
        // A front end whose protocol reports errors inside a 200 body (as Snowflake's connector does).
        app.get('/test/protocol', {
          config: {
            frontEnd: 'test-protocol',
            authenticate: true,
            recordingFailure: (err) => ({ statusCode: 200, body: JSON.stringify({ success: false, code: '390900', message: err.message }) })
          }
        }, async () => ({ success: true }))
      }
    })
    token = await idp.userToken({ subject: 'alice', groups: ['analysts'], clientId: 'cursor', act: { sub: 'claude-code', client_id: 'claude-code' } })
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  async function send (sql: string, params?: unknown): Promise<{ status: number, body: Record<string, unknown>, requestId: string }> {
    const res = await h.app.inject({
      method: 'POST',
      url: '/test/sql',
      headers: { authorization: `Bearer ${token}`, 'user-agent': 'recording-test/1.0' },
      payload: { sql, params }
    })
    return { status: res.statusCode, body: res.json(), requestId: String(res.headers['x-request-id']) }
  }

  /** The event that answered the request (an admitted statement's completion). */
  async function eventOf (requestId: string): Promise<TimelineEvent> {
    const page = await searchEvents(store, { requestId })
    const answered = page.items.filter((e) => e.phase !== 'admitted')
    expect(answered).toHaveLength(1)
    return (await getEvent(store, answered[0]!.id))!
  }

  async function admittedOf (requestId: string): Promise<StoredEvent[]> {
    return (await searchEvents(store, { requestId })).items.filter((e) => e.phase === 'admitted')
  }

  const common = {
    principalSubject: 'alice',
    principalIssuer: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/),
    principalType: 'human',
    groups: ['analysts'],
    roles: ['agent'],
    clientId: 'cursor',
    delegation: [{ subject: 'claude-code', clientId: 'claude-code' }],
    connection: 'wh',
    frontEnd: 'test',
    route: '/test/sql',
    method: 'POST',
    sourceIp: '127.0.0.1',
    userAgent: 'recording-test/1.0',
    policyVersion: 'sha256:test-policies',
    chain: expect.any(String),
    seq: expect.any(Number),
    prevHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    eventDigest: expect.stringMatching(/^[0-9a-f]{64}$/),
    sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
    durationMs: expect.any(Number)
  }

  it('records an allowed round trip with every field, the masked result captured', async () => {
    const res = await send("SELECT id, email FROM orders WHERE id IN (1, 2, 3) AND note = 'x'", { db_password: 'hunter2', 2: 'keep' })
    expect(res.status).toBe(200)
    expect(res.body.rows).toEqual([[1, '***'], [2, '***'], [3, '***']])
    const e = await eventOf(res.requestId)
    expect(e).toMatchObject({
      ...common,
      requestId: res.requestId,
      statusCode: 200,
      outcome: 'ok',
      errorCode: null,
      sqlText: "SELECT id, email FROM orders WHERE id IN (1, 2, 3) AND note = 'x'",
      sqlFingerprint: 'select id, email from orders where id in (?) and note = ?',
      bindParams: { db_password: '[redacted]', 2: 'keep' },
      analysis: { dialect: 'snowflake', statements: [{ kind: 'select', tablesRead: ['analytics.public.orders'] }] },
      statementKinds: ['select'],
      tables: ['analytics.public.orders'],
      decision: 'allow',
      ruleId: 'allow-agents',
      reason: 'allowed by rule allow-agents: agents may read',
      approvalId: null,
      approver: null,
      masking: [{ column: 'EMAIL', rule: 'mask-email', values: 3 }],
      maskedColumns: ['EMAIL'],
      upstreamId: expect.stringMatching(/^q-\d+$/),
      rowsReturned: 3,
      bytesReturned: expect.any(Number),
      resultTruncated: false,
      hasResult: true,
      resultDigest: expect.stringMatching(/^[0-9a-f]{64}$/)
    })
    expect(e.bytesReturned).toBeGreaterThan(10)
    // Admitted before the upstream ran (an earlier event of the chain), completed by the answer.
    const [admitted] = await admittedOf(res.requestId)
    expect(admitted).toMatchObject({
      principalSubject: 'alice', clientId: 'cursor', outcome: 'admitted', phase: 'admitted', statementId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      sqlText: e.sqlText, decision: 'allow', ruleId: 'allow-agents', tables: ['analytics.public.orders'], rowsReturned: null, hasResult: false, statusCode: null
    })
    expect(e).toMatchObject({ phase: 'completed', statementId: admitted?.statementId })
    expect(Number(admitted?.id)).toBeLessThan(Number(e.id))
    // The capture is what the client saw: masked, never raw.
    expect(e.result).toEqual({ columns: [{ name: 'ID', type: 'NUMBER' }, { name: 'EMAIL', type: 'TEXT' }], rows: [[1, '***'], [2, '***'], [3, '***']], rowsReleased: 3, truncated: false })
    expect(JSON.stringify(e)).not.toContain('example.com')
    expect(JSON.stringify(e)).not.toContain('hunter2')
  })

  it('records a denied round trip without calling the upstream', async () => {
    const before = h.upstream.calls
    const res = await send('select * from secrets.keys')
    expect(res.status).toBe(403)
    expect(res.body).toMatchObject({ code: 'SLUICE_POLICY_DENIED', message: 'denied by rule no-secrets: agents may not read secrets' })
    expect(h.upstream.calls).toBe(before)
    expect(await eventOf(res.requestId)).toMatchObject({
      ...common, statusCode: 403, outcome: 'denied', errorCode: 'SLUICE_POLICY_DENIED', decision: 'deny', ruleId: 'no-secrets',
      reason: 'denied by rule no-secrets: agents may not read secrets', tables: ['analytics.secrets.keys'], upstreamId: null,
      rowsReturned: null, masking: null, hasResult: false
    })
  })

  it('records a failed round trip with its error code', async () => {
    const res = await send('select fail_upstream from orders')
    expect(res.status).toBe(502)
    expect(await eventOf(res.requestId)).toMatchObject({
      ...common, statusCode: 502, outcome: 'error', errorCode: 'SLUICE_UPSTREAM_FAILED', decision: 'allow', ruleId: 'allow-agents',
      sqlFingerprint: 'select fail_upstream from orders', rowsReturned: null
    })
  })

  it('records /v1/whoami and a forged token, chained like the rest', async () => {
    const ok = await h.app.inject({ url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } })
    const forged = await h.app.inject({ url: '/v1/whoami', headers: { authorization: 'Bearer not.a.token' } })
    expect(ok.statusCode).toBe(200)
    expect(forged.statusCode).toBe(401)
    expect(await eventOf(String(ok.headers['x-request-id']))).toMatchObject({ frontEnd: 'identity', outcome: 'ok', principalSubject: 'alice', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }], chain: expect.any(String) })
    expect(await eventOf(String(forged.headers['x-request-id']))).toMatchObject({ outcome: 'unauthenticated', statusCode: 401, errorCode: 'SLUICE_AUTH_INVALID', principalSubject: null, sessionId: null, chain: expect.any(String) })
    const report = await verifyStore(store, h.recording.key)
    expect(report.issues).toEqual([])
  })

  it('store down: retryable 503 before the upstream is called; recovers when the store is back', async () => {
    const before = h.upstream.calls
    store.down = true
    try {
      const res = await send('select id from orders')
      expect(res.status).toBe(503)
      expect(res.body).toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      expect(h.upstream.calls).toBe(before)
    } finally {
      store.down = false
    }
    const again = await send('select id from orders')
    expect(again.status).toBe(200)
    expect(h.upstream.calls).toBe(before + 1)
  })

  it('renders a recording failure in the front end\'s own protocol when the route says how', async () => {
    store.down = true
    try {
      const res = await h.app.inject({ url: '/test/protocol', headers: { authorization: `Bearer ${token}` } })
      expect(res.statusCode).toBe(200)
      expect(res.headers['retry-after']).toBe('5')
      expect(res.json()).toEqual({ success: false, code: '390900', message: expect.stringContaining('could not be recorded') })
    } finally {
      store.down = false
    }
  })

  it('store failing between execution and release: the result is withheld (ran, not retryable), the admitted event stands', async () => {
    const original = h.upstream.execute
    h.upstream.execute = async (s) => {
      const result = await original(s)
      store.down = true
      return result
    }
    let requestId = ''
    try {
      const res = await send('select id from orders where id = 42')
      requestId = res.requestId
      expect(res.status).toBe(500)
      expect(res.body).toMatchObject({ code: 'SLUICE_RESULT_UNRECORDED', message: expect.stringContaining('the statement ran, but its result is withheld') })
    } finally {
      h.upstream.execute = original
      store.down = false
    }
    const admitted = await admittedOf(requestId)
    expect(admitted).toHaveLength(1)
    expect((await searchEvents(store, { requestId })).items).toHaveLength(1)
    // The writer moved to a fresh chain after the failed batch; everything still verifies, and
    // the statement is listed as admitted without a completion (not as tampering).
    expect((await send('select id from orders')).status).toBe(200)
    const report = await verifyStore(store, h.recording.key)
    expect(report.issues).toEqual([])
    expect(report.incomplete?.statements.map((s) => s.statementId)).toContain(admitted[0]?.statementId)
    expect(formatReport(report)).toContain(`incomplete: statement ${admitted[0]?.statementId ?? ''}`)
    expect((await searchEvents(store, { incomplete: true })).items.map((e) => e.requestId)).toContain(requestId)
  })
})
