// The BigQuery job bindings and page cursors (src/state/bigquery-jobs.ts) on both store
// engines: an id is bound once (atomically, under concurrent binds from two principals),
// result tables lead back to their job, expired rows count as absent without any purge, and
// the purge is a bounded delete through the expiry indexes.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admittedRecord } from '../../src/pipeline/admitted.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { PURGE_CURSORS, PURGE_JOBS, RESULT_TABLE, StoreBigQueryJobs, type NewJobBinding } from '../../src/state/bigquery-jobs.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { alice } from '../recording/helpers.js'
import { storeEngines } from '../support/stores.js'

const slow = { timeout: 120_000 }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const statement: Statement = {
  requestId: 'r1',
  frontEnd: 'bigquery',
  principal: alice,
  connection: { name: 'bq', kind: 'bigquery', defaults: { database: 'proj', schema: 'ds' } },
  sql: 'SELECT email FROM ds.customers WHERE id = @id',
  params: { id: '42' },
  client: { sourceIp: '127.0.0.1' }
}
const admission = {
  analysis: {},
  decision: { effect: 'allow', ruleId: 'capped', reason: 'allowed', limits: { maxRows: 10 } },
  statementId: randomUUID()
} as unknown as Admission

function job (over: Partial<NewJobBinding> = {}): NewJobBinding {
  return { connection: 'bq', kind: 'job', id: `j_${randomUUID()}`, owner: 'alice-digest', project: 'proj', location: 'US', admitted: admittedRecord(statement, admission), ...over }
}

async function plan (store: Store, sql: string, params: unknown[]): Promise<string> {
  const rows = await store.transaction(async (tx) => {
    // The planner may prefer a scan of a tiny table; forbidding scans shows the index serves.
    await tx.query('set local enable_seqscan = off')
    return await tx.query<Record<string, string>>(`explain ${sql}`, params)
  })
  return rows.map((r) => Object.values(r)[0]).join('\n')
}

describe.each(storeEngines())('bigquery job bindings on $name', slow, (engine) => {
  let store: Store
  let jobs: StoreBigQueryJobs

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    jobs = new StoreBigQueryJobs(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('keeps a held job\'s approval and configuration (its binds) until the id is bound again without them', async () => {
    const configuration = { query: { query: statement.sql, queryParameters: [{ name: 'id', parameterType: { type: 'INT64' }, parameterValue: { value: '42' } }] } }
    const held = { approvalId: randomUUID(), configuration }
    const { binding } = await jobs.bind(job({ held }), 60)
    expect((await jobs.find(binding))?.held).toEqual(held)
    // Released: bound again for the upstream job, the binds leave the store.
    const { bound } = await jobs.bind({ ...job({ id: binding.id }) }, 60)
    expect(bound).toBe(true)
    expect((await jobs.find(binding))?.held).toBeUndefined()
    const [row] = await store.query<{ held: unknown }>('select held from bigquery_jobs where id = $1', [binding.id])
    expect(row?.held).toBeNull()
  })

  it('keeps the admitted statement without its bind values, and the decision as made', async () => {
    const { bound, binding } = await jobs.bind(job({ destination: { projectId: 'proj', datasetId: '_anon', tableId: 'anon1' } }), 60)
    expect(bound).toBe(true)
    const found = await jobs.find(binding)
    expect(found).toEqual(binding)
    expect(found?.admitted.statement).not.toHaveProperty('params')
    expect(found?.admitted.statement.sql).toBe(statement.sql)
    expect(found?.admitted.statement.principal.expiresAt).toEqual(alice.expiresAt)
    expect(found?.admitted.decision).toEqual(admission.decision)
    expect(found?.admitted.statementId).toBe(admission.statementId)
    expect(found).toMatchObject({ location: 'US', destination: { projectId: 'proj', datasetId: '_anon', tableId: 'anon1' } })
    expect(found!.expiresAt - found!.createdAt).toBeCloseTo(60_000, -2)
  })

  it('binds an id once: another principal never takes it over, even when both bind at the same time', async () => {
    for (let round = 0; round < 5; round++) {
      const id = `race_${randomUUID()}`
      const [a, b] = await Promise.all([jobs.bind(job({ id, owner: 'alice-digest' }), 60), jobs.bind(job({ id, owner: 'bob-digest' }), 60)])
      expect([a.bound, b.bound].filter(Boolean)).toHaveLength(1)
      const winner = a.bound ? 'alice-digest' : 'bob-digest'
      expect(a.binding.owner).toBe(winner)
      expect(b.binding.owner).toBe(winner)
      expect((await jobs.find({ connection: 'bq', kind: 'job', id }))?.owner).toBe(winner)
    }
  })

  it('lets the owner bind its own id again, as a new binding', async () => {
    const first = await jobs.bind(job({ id: 'rerun' }), 60)
    const again = await jobs.bind(job({ id: 'rerun', location: 'EU' }), 60)
    expect(again.bound).toBe(true)
    expect(again.binding.bindingId).not.toBe(first.binding.bindingId)
    expect((await jobs.find(again.binding))?.location).toBe('EU')
  })

  it('keeps ids of other connections and kinds apart', async () => {
    const id = randomUUID()
    await jobs.bind(job({ id }), 60)
    expect((await jobs.bind(job({ id, owner: 'bob-digest', connection: 'other' }), 60)).bound).toBe(true)
    expect((await jobs.bind(job({ id, owner: 'bob-digest', kind: 'query' }), 60)).bound).toBe(true)
    expect((await jobs.find({ connection: 'bq', kind: 'job', id }))?.owner).toBe('alice-digest')
  })

  it('treats an expired binding as absent, with or without a purge, and lets another principal take the id', async () => {
    const { binding } = await jobs.bind(job({ id: 'short', destination: { projectId: 'proj', datasetId: '_anon', tableId: 'short' } }), 0.05)
    await sleep(200)
    expect(await jobs.find(binding)).toBeUndefined()
    expect(await jobs.resultTable('bq', { projectId: 'proj', datasetId: '_anon', tableId: 'short' }, 'alice-digest')).toBeUndefined()
    expect(await jobs.findMany('bq', 'job', ['short'])).toEqual([])
    expect((await jobs.bind(job({ id: 'short', owner: 'bob-digest' }), 60)).bound).toBe(true)
  })

  it('leads a result table back to the caller\'s own job first, else to the newest other holder', async () => {
    const table = { projectId: 'proj', datasetId: '_anon', tableId: `t_${randomUUID()}` }
    expect(await jobs.resultTable('bq', table, 'alice-digest')).toBeUndefined()
    const mine = (await jobs.bind(job(), 60)).binding
    await jobs.setDestination(mine, mine.bindingId, table)
    const theirs = (await jobs.bind(job({ owner: 'bob-digest' }), 60)).binding
    await jobs.setDestination(theirs, theirs.bindingId, table)
    expect((await jobs.resultTable('bq', table, 'alice-digest'))?.id).toBe(mine.id)
    expect((await jobs.resultTable('bq', table, 'bob-digest'))?.id).toBe(theirs.id)
    expect((await jobs.resultTable('bq', table, 'carol-digest'))?.owner).toBe('bob-digest')
    expect(await jobs.resultTable('other', table, 'alice-digest')).toBeUndefined()
    // A destination learned for a binding that has since been replaced is not recorded.
    const stale = (await jobs.bind(job(), 60)).binding
    await jobs.bind(job({ id: stale.id }), 60)
    await jobs.setDestination(stale, stale.bindingId, { ...table, tableId: 'stale' })
    expect(await jobs.resultTable('bq', { ...table, tableId: 'stale' }, 'alice-digest')).toBeUndefined()
  })

  it('finds the live bindings among one page of ids', async () => {
    const a = (await jobs.bind(job(), 60)).binding
    const b = (await jobs.bind(job({ owner: 'bob-digest' }), 60)).binding
    const found = await jobs.findMany('bq', 'job', [a.id, b.id, 'unknown', 'with \'quote" and ,comma'])
    expect(found.map((j) => j.id).sort()).toEqual([a.id, b.id].sort())
    expect(await jobs.findMany('bq', 'job', [])).toEqual([])
  })

  it('remembers where a page starts, per caller and result, until it expires', async () => {
    const cursor = { owner: 'alice-digest', connection: 'bq', resultId: 'j1', pageToken: 'BQ/page/2' }
    expect(await jobs.pageStart(cursor)).toBeUndefined()
    await jobs.rememberPageStart(cursor, 2_000_000_000_000, 60)
    expect(await jobs.pageStart(cursor)).toBe(2_000_000_000_000)
    await jobs.rememberPageStart(cursor, 5, 60)
    expect(await jobs.pageStart(cursor)).toBe(5)
    expect(await jobs.pageStart({ ...cursor, owner: 'bob-digest' })).toBeUndefined()
    expect(await jobs.pageStart({ ...cursor, resultId: 'j2' })).toBeUndefined()
    await jobs.rememberPageStart({ ...cursor, pageToken: 'soon' }, 1, 0.05)
    await sleep(200)
    expect(await jobs.pageStart({ ...cursor, pageToken: 'soon' })).toBeUndefined()
  })

  it('purges expired bindings and cursors in bounded batches and leaves live ones', async () => {
    await jobs.purgeExpired(1000)
    const live = (await jobs.bind(job(), 3600)).binding
    for (let i = 0; i < 5; i++) await jobs.bind(job(), 0.01)
    for (let i = 0; i < 4; i++) await jobs.rememberPageStart({ owner: 'o', connection: 'bq', resultId: 'r', pageToken: `t${i}` }, i, 0.01)
    await sleep(100)
    expect(await jobs.purgeExpired(3)).toBe(6)
    expect(await jobs.purgeExpired(100)).toBe(3)
    expect(await jobs.purgeExpired(100)).toBe(0)
    expect(await jobs.find(live)).toBeDefined()
  })

  it('serves the purges and the result-table lookup from their indexes, not a scan of the table', async () => {
    expect(await plan(store, PURGE_JOBS, [500])).toMatch(/bigquery_jobs_expires_idx/)
    expect(await plan(store, PURGE_CURSORS, [500])).toMatch(/bigquery_page_cursors_expires_idx/)
    expect(await plan(store, RESULT_TABLE, ['bq', 'proj', '_anon', 't', 'alice-digest'])).toMatch(/bigquery_jobs_destination_idx/)
  })
})
