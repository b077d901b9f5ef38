// The BigQuery front end's view of job ownership (src/warehouses/bigquery/registry.ts) over the
// store port, as two replicas see it: two registries on one store. The owner is served on both,
// another principal on neither; the replica that did not admit resumes the admission from the
// stored record once per binding and keeps it, and a rebinding is resumed afresh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pipeline } from '../../src/pipeline.js'
import type { AdmittedRecord } from '../../src/pipeline/admitted.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { StoreBigQueryJobs } from '../../src/state/bigquery-jobs.js'
import { migrate } from '../../src/store/migrate.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import type { Store } from '../../src/store/store.js'
import { JobRegistry, ownerOf } from '../../src/warehouses/bigquery/registry.js'
import { alice, bob } from '../recording/helpers.js'

const statement: Statement = {
  requestId: 'r',
  frontEnd: 'bigquery',
  principal: alice,
  connection: { name: 'c', kind: 'bigquery', defaults: { database: 'p' } },
  sql: 'SELECT email FROM d.t',
  params: ['secret-bind'],
  client: {}
}
const admission = { analysis: { tag: 'admitted here' }, decision: { effect: 'allow', ruleId: 'r', reason: 'ok', limits: {} } } as unknown as Admission

function replica (store: Store): { registry: JobRegistry, resumed: AdmittedRecord[] } {
  const resumed: AdmittedRecord[] = []
  const pipeline = {
    async resume (record: AdmittedRecord): Promise<Admission> {
      resumed.push(record)
      return { analysis: { tag: 'resumed' }, decision: record.decision } as unknown as Admission
    }
  } as unknown as Pipeline
  return { registry: new JobRegistry(new StoreBigQueryJobs(store), pipeline, { ttlSeconds: 60 }), resumed }
}

describe('bigquery job ownership across replicas', { timeout: 60_000 }, () => {
  let store: Store
  const me = ownerOf(alice)
  const base = { owner: me, connection: 'c', projectId: 'p', kind: 'job' as const, statement, admission }

  beforeAll(async () => {
    store = await openPgliteStore({ dataDir: MEMORY })
    await migrate(store)
  })
  afterAll(async () => { await store.close() })

  it('digests the owner: issuer and subject, never the subject in clear', () => {
    expect(me).toMatch(/^[0-9a-f]{64}$/)
    expect(ownerOf({ ...alice, issuer: 'https://other.idp' })).not.toBe(me)
  })

  it('serves the owner on both replicas and another principal on neither', async () => {
    const a = replica(store)
    const b = replica(store)
    const bound = await a.registry.bind({ ...base, id: 'j1' })
    expect(bound?.admission).toBe(admission)
    expect(bound?.statement).not.toHaveProperty('params')
    expect(await a.registry.bind({ ...base, owner: ownerOf(bob), id: 'j1' })).toBeUndefined()
    expect(await b.registry.bind({ ...base, owner: ownerOf(bob), id: 'j1' })).toBeUndefined()
    expect(await b.registry.heldByAnother('c', 'job', 'j1', ownerOf(bob))).toBe(true)
    expect(await a.registry.find('c', 'job', 'j1', ownerOf(bob))).toBeUndefined()
    expect(await b.registry.find('c', 'job', 'j1', ownerOf(bob))).toBeUndefined()
    expect(b.resumed).toHaveLength(0)

    // The admitting replica keeps its own admission; the other resumes it once and keeps that.
    expect((await a.registry.find('c', 'job', 'j1', me))?.admission).toBe(admission)
    const onB = await b.registry.find('c', 'job', 'j1', me)
    expect(onB?.admission).toMatchObject({ analysis: { tag: 'resumed' }, decision: admission.decision })
    expect(onB?.statement.sql).toBe(statement.sql)
    await b.registry.find('c', 'job', 'j1', me)
    expect(b.resumed).toHaveLength(1)
    expect(a.resumed).toHaveLength(0)

    // Rebound by its owner (an upstream that reruns an id): the other replica resumes the new one.
    await a.registry.bind({ ...base, id: 'j1', statement: { ...statement, sql: 'SELECT 2' } })
    expect((await b.registry.find('c', 'job', 'j1', me))?.statement.sql).toBe('SELECT 2')
    expect(b.resumed).toHaveLength(2)
  })

  it('leads a result table to its owner\'s job on any replica, and reports it held to others', async () => {
    const a = replica(store)
    const b = replica(store)
    const table = { projectId: 'p', datasetId: '_anon', tableId: 'anon_j2' }
    const bound = await a.registry.bind({ ...base, id: 'j2' })
    await a.registry.setDestination(bound!, table)
    expect((await b.registry.tableOwner('c', table, me)).mine?.id).toBe('j2')
    expect(await b.registry.tableOwner('c', table, ownerOf(bob))).toEqual({ held: true })
    expect(await b.registry.tableOwner('c', { ...table, tableId: 'other' }, me)).toEqual({ held: false })
  })

  it('finds the caller\'s jobs among one page of ids', async () => {
    const a = replica(store)
    await a.registry.bind({ ...base, id: 'l1' })
    await a.registry.bind({ ...base, owner: ownerOf(bob), id: 'l2' })
    expect([...(await replica(store).registry.ownedAmong('c', me, ['l1', 'l2', 'l3'])).keys()]).toEqual(['l1'])
  })
})
