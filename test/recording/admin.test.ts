// The admin API on both stores: the auditor role and OIDC, filters, full-text search, keyset
// pagination, a session's timeline with its captured results, exports, the OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyExport } from '../../src/recording/export.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { storeEngines } from '../support/stores.js'
import { startHarness, type Harness } from './harness.js'
import { bob, ed25519Pem, facts } from './helpers.js'

const slow = { timeout: 120_000 }
const OLD = Date.parse('2026-01-15T10:00:00Z') * 1000

/** The events that answered a request: an admitted statement's admitted event left out. */
function answered<T> (items: T[]): T[] {
  return items.filter((e) => (e as { phase?: string | null }).phase !== 'admitted')
}

describe.each(storeEngines())('admin API on $name', slow, (engine) => {
  let idp: TestIdp
  let store: Store
  let h: Harness
  let auditor: string
  let agent: string
  let robot: string

  const get = async (url: string, token = auditor): Promise<{ status: number, body: any, text: string, headers: Record<string, unknown> }> => {
    const res = await h.app.inject({ url, headers: { authorization: `Bearer ${token}` } })
    let body: unknown
    try { body = res.json() } catch { body = undefined }
    return { status: res.statusCode, body, text: res.body, headers: res.headers }
  }
  const sql = async (token: string, text: string): Promise<number> =>
    (await h.app.inject({ method: 'POST', url: '/test/sql', headers: { authorization: `Bearer ${token}` }, payload: { sql: text } })).statusCode

  beforeAll(async () => {
    idp = await startTestIdp()
    store = await engine.open()
    await migrate(store)
    h = await startHarness({ store, identity: idp.identityConfig(), recording: { checkpointKey: ed25519Pem().privatePem } })
    auditor = await idp.userToken({ subject: 'carol', groups: ['security'] })
    agent = await idp.userToken({ subject: 'alice', groups: ['analysts'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    robot = await idp.machineToken({ clientId: 'ci-bot' })
    expect(await sql(agent, 'select c.id, c.email from crm.customers c join analytics.public.orders o on o.customer_id = c.id')).toBe(200)
    expect(await sql(agent, 'select * from secrets.api_keys')).toBe(403)
    expect(await sql(robot, 'select count(*) from analytics.public.orders')).toBe(200)
    for (let i = 0; i < 5; i++) expect(await sql(agent, `select id from analytics.public.invoices where n = ${i}`)).toBe(200)
    // Older events on another connection, written straight through the recorder.
    for (let i = 0; i < 3; i++) {
      await h.recording.record(facts({ principal: bob, connection: 'lake', startedAtMicros: OLD + i * 1_000_000 }),
        { sessionKey: 'old-session', principal: bob, frontEnd: 'test', connection: 'lake' })
    }
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  it('needs a token and the auditor role; serves its OpenAPI description', async () => {
    expect((await h.app.inject({ url: '/admin/v1/events' })).statusCode).toBe(401)
    expect((await get('/admin/v1/events', agent)).status).toBe(403)
    expect((await get('/admin/v1/events')).status).toBe(200)
    const doc = await h.app.inject({ url: '/admin/v1/openapi.json' })
    expect(doc.statusCode).toBe(200)
    expect(doc.json()).toMatchObject({ openapi: '3.1.0', paths: { '/events': { get: { operationId: 'listEvents' } }, '/export': expect.any(Object) } })
    // Reading the trail is itself recorded, refusals included.
    const reads = await get('/admin/v1/events?frontEnd=admin&limit=500')
    expect(reads.body.items.map((e: { principalSubject: string, statusCode: number }) => `${e.principalSubject}:${e.statusCode}`)).toEqual(expect.arrayContaining(['alice:403', 'carol:200']))
  })

  it('filters events by principal, agent, connection, time, decision, rule, table and masked column', async () => {
    // Round trips: an admitted statement's admitted event is counted by its completion.
    const ids = async (query: string): Promise<string[]> => answered<{ sqlText: string | null, requestId: string }>((await get(`/admin/v1/events?frontEnd=test&limit=500&${query}`)).body.items).map((e: { sqlText: string | null, requestId: string }) => e.sqlText ?? e.requestId)
    expect(await ids('principal=ci-bot')).toEqual(['select count(*) from analytics.public.orders'])
    expect((await ids('agent=claude-code')).length).toBe(7)
    // ci-bot: the machine client, and bob's client (helpers.ts) for the older events.
    expect((await ids('agent=ci-bot')).length).toBe(4)
    expect((await ids('connection=lake')).length).toBe(3)
    expect((await ids('since=2026-01-15T10:00:01Z&until=2026-01-15T10:00:03Z')).length).toBe(2)
    expect(await ids('decision=deny')).toEqual(['select * from secrets.api_keys'])
    expect(await ids('rule=no-secrets')).toEqual(['select * from secrets.api_keys'])
    expect(await ids('table=crm.customers')).toHaveLength(1)
    expect((await ids('table=orders')).length).toBe(2)
    // Every released result of the test upstream has its EMAIL column masked.
    expect(await ids('maskedColumn=EMAIL')).toHaveLength(7)
    expect(await ids('maskedColumn=PHONE')).toHaveLength(0)
    expect((await get('/admin/v1/events?since=yesterday')).status).toBe(400)
  })

  it('searches the SQL full text', async () => {
    const q = async (text: string): Promise<number> => answered<unknown>((await get(`/admin/v1/events?frontEnd=test&limit=500&q=${encodeURIComponent(text)}`)).body.items).length
    expect(await q('customers')).toBe(1)
    expect(await q('invoices')).toBe(5)
    // The robot's count(*) and the three older events; the join with customers is excluded.
    expect(await q('orders -customers')).toBe(4)
    expect(await q('"public.invoices"')).toBe(5)
    expect(await q('nothing_like_this')).toBe(0)
  })

  it('pages with keyset cursors, newest first, without repeats', async () => {
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await get(`/admin/v1/events?frontEnd=test&limit=3${cursor === null ? '' : `&cursor=${cursor}`}`)
      expect(page.status).toBe(200)
      expect(page.body).not.toHaveProperty('total')
      seen.push(...answered<{ id: string }>(page.body.items).map((e) => e.id))
      cursor = page.body.nextCursor
      pages++
    } while (cursor !== null && pages < 20)
    expect(seen).toHaveLength(11)
    expect(new Set(seen).size).toBe(11)
    expect(seen.map(Number)).toEqual([...seen.map(Number)].sort((a, b) => b - a))
    expect((await get('/admin/v1/events?cursor=garbage!')).status).toBe(400)
  })

  it('lists sessions by principal and agent, and replays a timeline with its captured results', async () => {
    const sessions = await get('/admin/v1/sessions?principal=alice&limit=1')
    expect(sessions.status).toBe(200)
    expect(sessions.body.items).toHaveLength(1)
    const session = sessions.body.items[0]
    expect(session).toMatchObject({ principalSubject: 'alice', delegation: [{ subject: 'claude-code' }] })
    expect((await get('/admin/v1/sessions?agent=ci-bot')).body.items.map((s: { principalSubject: string }) => s.principalSubject)).toEqual(['bob', 'ci-bot'])
    const older = await get('/admin/v1/sessions?connection=lake')
    expect(older.body.items).toHaveLength(1)

    const agentSession = (await get('/admin/v1/sessions?principal=alice&frontEnd=test')).body.items[0]
    const timeline = await get(`/admin/v1/sessions/${agentSession.id as string}/timeline?limit=3`)
    expect(timeline.status).toBe(200)
    expect(timeline.body.session).toMatchObject({ principalSubject: 'alice' })
    // Admitted first (before the upstream ran), then the completion with the released result.
    expect(timeline.body.items[0]).toMatchObject({ phase: 'admitted', outcome: 'admitted', result: null })
    const first = timeline.body.items[1]
    expect(first).toMatchObject({ phase: 'completed', statementId: timeline.body.items[0].statementId })
    expect(first.sqlText).toContain('crm.customers')
    expect(first.result).toEqual({ columns: [{ name: 'ID', type: 'NUMBER' }, { name: 'EMAIL', type: 'TEXT' }], rows: [[1, '***'], [2, '***'], [3, '***']], rowsReleased: 3, truncated: false })
    expect(timeline.body.nextCursor).toEqual(expect.any(String))
    const next = await get(`/admin/v1/sessions/${agentSession.id as string}/timeline?limit=100&cursor=${timeline.body.nextCursor as string}`)
    expect(answered(next.body.items).length).toBe(5)
    expect((await get(`/admin/v1/events/${first.id as string}`)).body.result.rows).toHaveLength(3)
    expect((await get('/admin/v1/sessions/00000000-0000-0000-0000-000000000000/timeline')).status).toBe(404)
  })

  it('exports JSON Lines that verify, and CSV', async () => {
    const jsonl = await get('/admin/v1/export?format=jsonl')
    expect(jsonl.status).toBe(200)
    expect(String(jsonl.headers['content-type'])).toContain('application/x-ndjson')
    const report = verifyExport(jsonl.text, h.recording.key)
    expect(report.issues).toEqual([])
    expect(report.events).toBeGreaterThanOrEqual(11)

    const csv = await get('/admin/v1/export?format=csv&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z')
    expect(csv.status).toBe(200)
    expect(String(csv.headers['content-type'])).toContain('text/csv')
    const lines = csv.text.trim().split('\n')
    expect(lines[0]).toMatch(/^id,occurredAt,chain,seq,/)
    expect(lines, csv.text).toHaveLength(4)
    expect(lines[1]).toContain(',lake,')
  })

  it('verifies the store through the API: what no checkpoint covers yet is a warning, a failure when strict', async () => {
    const res = await get('/admin/v1/verify')
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ ok: true, strict: false, issues: [] })
    // A running gateway that has not checkpointed yet: nothing is wrong, nothing is anchored.
    expect(res.body.warnings.map((w: { kind: string }) => w.kind)).toEqual(expect.arrayContaining(['unanchored', 'no-checkpoints']))
    const strict = await get('/admin/v1/verify?strict=true')
    expect(strict.body).toMatchObject({ ok: false, strict: true, issues: [] })
    await h.recording.writer.checkpoint('periodic')
    const anchored = await get('/admin/v1/verify?strict=true')
    expect(anchored.body).toMatchObject({ ok: true, strict: true, issues: [], warnings: [] })
  })

  it('reports a duplicated event through the API', async () => {
    const [row] = await store.query<{ id: string, chain: string, seq: number }>(
      "select id::text as id, chain, seq::float8 as seq from session_events where front_end = 'test' and chain is not null order by id limit 1")
    const columns = (await store.query<{ column_name: string }>(
      "select column_name from information_schema.columns where table_name = 'session_events' and column_name <> 'id'")).map((c) => c.column_name)
    // An exact copy of a row, the kind of duplicate the chain's links alone cannot tell apart.
    await store.query(`insert into session_events (${columns.join(', ')}) select ${columns.join(', ')} from session_events where id = $1::bigint`, [row!.id])
    const res = await get('/admin/v1/verify')
    expect(res.body.ok).toBe(false)
    expect(res.body.issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ kind: 'duplicate', chain: row!.chain, seq: row!.seq, detail: expect.stringContaining(`repeats event ${row!.id}`) })
    ]))
  })
})
