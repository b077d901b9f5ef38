import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Principal } from '../../src/identity/principal.js'
import { SessionRecorder, type SessionEventInput } from '../../src/recording/sessions.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'

const alice: Principal = {
  subject: 'alice',
  issuer: 'https://idp.test',
  type: 'human',
  groups: ['analysts', "o'brien; drop table sessions --"],
  roles: ['reader'],
  clientId: 'cursor',
  delegation: [{ subject: 'agent-7', clientId: 'claude-code' }],
  expiresAt: new Date('2030-01-01T00:00:00Z')
}
const mallory: Principal = { ...alice, subject: 'mallory', delegation: [] }

describe.each(storeEngines())('SessionRecorder on $name', (engine) => {
  let store: Store
  let recorder: SessionRecorder
  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    recorder = new SessionRecorder(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('opens a session once and continues it after', async () => {
    const first = await recorder.openOrContinue({
      sessionKey: 'k-open', principal: alice, connection: 'snowflake-prod', frontEnd: 'snowflake-sqlapi',
      sourceIp: '10.0.0.1', userAgent: 'snowflake-sdk/2'
    })
    expect(first.isNew).toBe(true)
    expect(first.id).toMatch(/^[0-9a-f-]{36}$/)
    const again = await recorder.openOrContinue({ sessionKey: 'k-open', principal: alice, frontEnd: 'snowflake-sqlapi' })
    expect(again).toEqual({ id: first.id, isNew: false })

    const session = await recorder.getSession(first.id)
    expect(session).toMatchObject({
      id: first.id, sessionKey: 'k-open', principalSubject: 'alice', principalIssuer: 'https://idp.test',
      principalType: 'human', groups: alice.groups, roles: ['reader'], clientId: 'cursor',
      delegation: [{ subject: 'agent-7', clientId: 'claude-code' }], connection: 'snowflake-prod',
      frontEnd: 'snowflake-sqlapi', sourceIp: '10.0.0.1', userAgent: 'snowflake-sdk/2', eventCount: 2
    })
    expect(session!.lastSeenAt.getTime()).toBeGreaterThanOrEqual(session!.startedAt.getTime())
  })

  it('agrees on one session when the first requests race', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, async () =>
      await recorder.openOrContinue({ sessionKey: 'k-race', principal: alice, frontEnd: 'bigquery' })))
    expect(new Set(results.map((r) => r.id)).size).toBe(1)
    expect(results.filter((r) => r.isNew)).toHaveLength(1)
    expect((await recorder.getSession(results[0]!.id))?.eventCount).toBe(8)
  })

  it('refuses a session key held by another principal', async () => {
    await recorder.openOrContinue({ sessionKey: 'k-owned', principal: alice, frontEnd: 'mcp' })
    await expect(recorder.openOrContinue({ sessionKey: 'k-owned', principal: mallory, frontEnd: 'mcp' }))
      .rejects.toMatchObject({ code: 'SLUICE_FORBIDDEN', statusCode: 403 })
  })

  it('writes an event without a session (failed authentication)', async () => {
    const { id } = await recorder.writeEvent({
      requestId: 'req-anon', frontEnd: 'snowflake-sqlapi', route: '/api/v2/statements', method: 'POST',
      statusCode: 401, outcome: 'unauthenticated', errorCode: 'SLUICE_AUTH_MISSING', durationMs: 0.125
    })
    expect(id).toMatch(/^\d+$/)
    const [event] = (await recorder.listEvents({ limit: 1000 })).filter((e) => e.id === id)
    expect(event).toMatchObject({
      sessionId: null, principalSubject: null, outcome: 'unauthenticated', statusCode: 401,
      durationMs: 0.125, sqlText: null, bindParams: null, resultTruncated: false, hash: null
    })
    expect(event!.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
  })

  it('round-trips every column of a recorded statement', async () => {
    const session = await recorder.openOrContinue({ sessionKey: 'k-full', principal: alice, frontEnd: 'postgres-wire' })
    const full: SessionEventInput = {
      sessionId: session.id,
      occurredAt: '2025-03-04T05:06:07.123456Z',
      requestId: 'req-1',
      principalSubject: 'alice',
      connection: 'pg-main',
      frontEnd: 'postgres-wire',
      route: null,
      method: null,
      statusCode: null,
      outcome: 'ok',
      errorCode: null,
      durationMs: 12.345678,
      sourceIp: '::1',
      userAgent: 'psql',
      sqlText: "select * from t where name = 'x'; -- $1",
      sqlFingerprint: 'fp-1',
      bindParams: [1, 'two', null, { deep: [true] }],
      analysis: { kinds: ['select'], tables: ['public.t'] },
      decision: 'allow',
      ruleId: 'allow-readers',
      reason: 'readers may select',
      policyVersion: 'sha256:abc',
      approvalId: 'appr-1',
      approver: 'bob',
      masking: { columns: { email: 'hash' } },
      upstreamId: 'q-123',
      rowsReturned: 3,
      bytesReturned: 4096,
      resultCapture: new Uint8Array([0, 1, 254, 255]),
      resultTruncated: true,
      chain: 'writer-1',
      prevHash: new Uint8Array(32),
      hash: new Uint8Array(32).fill(7)
    }
    const { id } = await recorder.writeEvent(full)
    const [event] = await recorder.listEvents({ sessionId: session.id })
    const { resultCapture, prevHash, hash, occurredAt, ...rest } = event!
    const { resultCapture: c, prevHash: p, hash: h, occurredAt: o, ...expected } = full
    expect(rest).toEqual({ ...expected, id })
    expect(occurredAt).toBe('2025-03-04T05:06:07.123456Z')
    expect([...resultCapture!]).toEqual([...c!])
    expect([...prevHash!]).toEqual([...p!])
    expect([...hash!]).toEqual([...h!])
    void o
  })

  it('keeps bigint bind parameters exact as strings', async () => {
    const { id } = await recorder.writeEvent({
      requestId: 'req-big', frontEnd: 'mcp', outcome: 'error', bindParams: [12345678901234567890n]
    })
    const [event] = (await recorder.listEvents({ limit: 1000 })).filter((e) => e.id === id)
    expect(event?.bindParams).toEqual(['12345678901234567890'])
  })

  it('lists a session in write order and honours the limit', async () => {
    const session = await recorder.openOrContinue({ sessionKey: 'k-list', principal: alice, frontEnd: 'mcp' })
    for (const n of [1, 2, 3]) {
      await recorder.writeEvent({ sessionId: session.id, requestId: `r${n}`, frontEnd: 'mcp', outcome: 'ok' })
    }
    expect((await recorder.listEvents({ sessionId: session.id })).map((e) => e.requestId)).toEqual(['r1', 'r2', 'r3'])
    expect(await recorder.listEvents({ sessionId: session.id, limit: 2 })).toHaveLength(2)
    expect(await recorder.listEvents({ sessionId: 'not-a-uuid' })).toEqual([])
  })
})
