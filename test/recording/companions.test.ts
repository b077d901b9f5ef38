// Companion rows (src/store/companions.ts): a Snowflake statement's finished handle rides in the
// statement that commits its round trip's completed event. Both rows commit together or not at
// all, in one statement whatever the batch, and a companion the store refuses fails only the
// round trip it belongs to.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyStore } from '../../src/recording/audit.js'
import { Recording } from '../../src/recording/recorder.js'
import { withCompanions, type Companion, type CompanionKind } from '../../src/store/companions.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { StoreStatementHandles, type HandleOutcome, type NewStatementHandle } from '../../src/state/statement-handles.js'
import { storeEngines } from '../support/stores.js'
import { facts, recordingConfig } from './helpers.js'

const kind = (name: string): CompanionKind => ({ name, insert: (param) => `insert into ${name} select * from json_populate_recordset(null::${name}, ${param}::text::json)` })

describe('withCompanions', () => {
  it('leaves a statement without companions as it is', () => {
    expect(withCompanions('insert into t select 1', 1, [])).toEqual({ sql: 'insert into t select 1', params: [] })
  })

  it('puts one CTE per kind in front, its rows numbered after the statement\'s own parameters', () => {
    const a = kind('a')
    const b = kind('b')
    const companions: Companion[] = [{ kind: a, row: { x: 1 } }, { kind: b, row: { y: 2 } }, { kind: a, row: { x: 3 } }]
    const { sql, params } = withCompanions('insert into t select $1, $2', 2, companions)
    expect(sql).toBe('with companion_0 as (insert into a select * from json_populate_recordset(null::a, $3::text::json)), ' +
      'companion_1 as (insert into b select * from json_populate_recordset(null::b, $4::text::json))\ninsert into t select $1, $2')
    expect(params.map((p) => JSON.parse(p))).toEqual([[{ x: 1 }, { x: 3 }], [{ y: 2 }]])
  })
})

describe.each(storeEngines())('finished handles committed with their events on $name', { timeout: 120_000 }, (engine) => {
  let store: Store
  let handles: StoreStatementHandles
  const statements: string[] = []

  beforeAll(async () => {
    const opened = await engine.open()
    await migrate(opened)
    const query = opened.query.bind(opened)
    opened.query = async <T>(sql: string, params?: unknown[]): Promise<T[]> => {
      statements.push(sql)
      return await query<T>(sql, params)
    }
    store = opened
    handles = new StoreStatementHandles(store)
  })
  afterAll(async () => { await engine.cleanup() })

  const handle = (over: Partial<NewStatementHandle> = {}): NewStatementHandle => ({
    id: randomUUID(), owner: 'owner-digest', connection: 'wh', sql: 'SELECT 1', replica: 'replica-a',
    clientRequestId: `client-${randomUUID()}`, sessionKey: 'snowflake:s1', admitted: { record: { decision: { effect: 'allow' } } }, ...over
  })
  const outcome: HandleOutcome = {
    state: 'succeeded', manifest: { queryId: 'q-1', pages: [] }, firstPage: [['1', 'a@example.com'], ['2', null]], trip: { maskedColumns: [{ column: 'EMAIL', rule: 'pii', values: 1 }] }
  }
  const eventsOf = async (requestId: string): Promise<number> =>
    (await store.query<{ n: number }>('select count(*)::int as n from session_events where request_id = $1', [requestId]))[0]!.n

  it('stores the handle in the event\'s own statement, as a read gives it back', async () => {
    const recording = new Recording(store, recordingConfig())
    const h = handle()
    const { row, companion } = handles.finishedCompanion(h, 60, outcome)
    const f = facts({ companions: [companion] })
    expect(await handles.get(h.id, h.owner)).toBeUndefined()
    statements.length = 0
    await recording.record(f)
    const writes = statements.filter((s) => s.includes('insert into statement_handles') || s.includes('insert into session_events'))
    expect(writes).toHaveLength(1)
    expect(writes[0]).toContain('insert into statement_handles')
    expect(writes[0]).toContain('insert into session_events')
    const stored = await handles.get(h.id, h.owner)
    expect(stored).toMatchObject({ state: 'succeeded', connection: 'wh', sql: 'SELECT 1', replica: 'replica-a', clientRequestId: h.clientRequestId, sessionKey: 'snowflake:s1' })
    for (const key of ['admitted', 'manifest', 'firstPage', 'trip'] as const) expect(stored?.[key]).toEqual(row[key])
    expect(stored?.expiresAt).toBeGreaterThan(Date.now() + 50_000)
    expect(await eventsOf(f.requestId)).toBe(1)
    await recording.close()
  })

  it('fails only the round trip whose companion the store refuses: neither of its rows is stored', async () => {
    const recording = new Recording(store, recordingConfig({ batch: { maxDelayMs: 20 } }))
    const taken = handle()
    await handles.create(taken, 60)
    const rows = [handle(), taken, handle()].map((h) => handles.finishedCompanion(h, 60, outcome))
    const all = rows.map(({ companion }) => facts({ companions: [companion] }))
    const results = await Promise.allSettled(all.map(async (f) => await recording.record(f)))
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(await Promise.all(all.map(async (f) => await eventsOf(f.requestId)))).toEqual([1, 0, 1])
    expect((await handles.get(rows[0]!.row.id, 'owner-digest'))?.state).toBe('succeeded')
    expect((await handles.get(taken.id, 'owner-digest'))?.state).toBe('running')
    expect((await handles.get(rows[2]!.row.id, 'owner-digest'))?.state).toBe('succeeded')
    expect((await verifyStore(store)).issues).toEqual([])
    await recording.close()
  })
})
