// The idempotency-key records (src/state/idempotency.ts) on both store engines: first claim
// wins, expired keys count as absent without any purge, and the purge is a bounded delete of
// expired keys through their index.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERR_UPSTREAM_FAILED, ERR_UPSTREAM_UNAVAILABLE } from '../../src/errors.js'
import { PURGE, StoreIdempotencyKeys, type IdempotencyKey } from '../../src/state/idempotency.js'
import { Pipeline } from '../../src/pipeline.js'
import { passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import { StoreStatementHandles } from '../../src/state/statement-handles.js'
import { syntheticResult } from '../../src/warehouses/snowflake/manifest.js'
import { SnowflakeStatements } from '../../src/warehouses/snowflake/statements.js'
import { fingerprint, Idempotency } from '../../src/warehouses/snowflake/idempotency.js'
import { alice } from '../recording/helpers.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'

const slow = { timeout: 120_000 }

const binding = (over: Partial<{ handleId: string, statementHash: string }> = {}) => ({
  handleId: randomUUID(), frontEnd: 'snowflake-sqlapi', statementHash: 's1', requestHash: 'r1', replica: 'replica-a', ...over
})

describe.each(storeEngines())('idempotency keys on $name', slow, (engine) => {
  let store: Store
  let keys: StoreIdempotencyKeys
  const key = (requestId = randomUUID(), owner = 'alice', connection = 'wh'): IdempotencyKey => ({ owner, connection, requestId })

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    keys = new StoreIdempotencyKeys(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('binds a key once: a second claim gets the first binding', async () => {
    const k = key()
    const first = binding()
    const won = await keys.claim(k, first, 60)
    expect(won).toMatchObject({ claimed: true, binding: { handleId: first.handleId, statementHash: 's1', replica: 'replica-a' } })
    expect(won.binding.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    const lost = await keys.claim(k, binding({ statementHash: 's2' }), 60)
    expect(lost).toMatchObject({ claimed: false, binding: { handleId: first.handleId, statementHash: 's1' } })
    expect(await keys.lookup(k)).toMatchObject({ handleId: first.handleId })
  })

  it('keeps keys of other principals and connections apart', async () => {
    const requestId = randomUUID()
    const a = binding()
    await keys.claim(key(requestId, 'alice'), a, 60)
    expect((await keys.claim(key(requestId, 'bob'), binding(), 60)).claimed).toBe(true)
    expect((await keys.claim(key(requestId, 'alice', 'other'), binding(), 60)).claimed).toBe(true)
    expect(await keys.lookup(key(requestId, 'carol'))).toBeUndefined()
  })

  it('treats an expired key as absent, with or without a purge, and lets a new request take it', async () => {
    const k = key()
    await keys.claim(k, binding(), 0.05)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await keys.lookup(k)).toBeUndefined()
    const again = binding({ statementHash: 'other' })
    expect(await keys.claim(k, again, 60)).toMatchObject({ claimed: true, binding: { handleId: again.handleId, statementHash: 'other' } })
  })

  it('purges expired keys in bounded batches and leaves live ones', async () => {
    const live = key()
    await keys.claim(live, binding(), 3600)
    for (let i = 0; i < 5; i++) await keys.claim(key(), binding(), 0.01)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await keys.purgeExpired(3)).toBe(3)
    expect(await keys.purgeExpired(100)).toBeGreaterThanOrEqual(2)
    expect(await keys.purgeExpired(100)).toBe(0)
    expect(await keys.lookup(live)).toBeDefined()
  })

  it('gives the key of a statement that never left for the warehouse to its retry, and only that one', async () => {
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
    const handles = new SnowflakeStatements({ store: new StoreStatementHandles(store), pipeline, upstreamOf: () => undefined, replica: 'replica-a', ttlSeconds: 60, chunkKey: Buffer.alloc(32) })
    const idempotency = new Idempotency(keys, handles, { ttlSeconds: 60 })
    const fp = fingerprint({ frontEnd: 'snowflake-sqlapi', sql: 'SELECT 1', rest: {} })
    const result = syntheticResult([], { columns: [] }, [])
    const fail = (err: Error) => async (id: string) => await handles.start(alice, 'wh', 'SELECT 1', async () => { throw err }, { id })
    const succeed = async (id: string) => await handles.start(alice, 'wh', 'SELECT 1', async () => result, { id })
    const done = async (h: { id: string }) => { await handles.wait((await handles.get(h.id, alice))!, 10) }

    // Refused before it was sent (connection refused): answered as retryable, so the retry runs.
    const unsent = randomUUID()
    const first = await idempotency.bind(alice, 'wh', unsent, fp, fail(new ERR_UPSTREAM_UNAVAILABLE('wh', 'connection refused')))
    await done(first)
    expect(await idempotency.earlier(alice, 'wh', unsent, fp)).toBeUndefined()
    const retry = await idempotency.bind(alice, 'wh', unsent, fp, succeed)
    expect(retry.id).not.toBe(first.id)
    await done(retry)
    expect((await idempotency.earlier(alice, 'wh', unsent, fp))?.id).toBe(retry.id)

    // Failed after it was sent: it may have run, so the key stays with it.
    const sent = randomUUID()
    const ran = await idempotency.bind(alice, 'wh', sent, fp, fail(new ERR_UPSTREAM_FAILED('wh', 'the warehouse said no')))
    await done(ran)
    expect((await idempotency.earlier(alice, 'wh', sent, fp))?.id).toBe(ran.id)
    expect((await idempotency.bind(alice, 'wh', sent, fp, succeed)).id).toBe(ran.id)
  })

  it('finds expired keys through the expiry index, not a scan of the table', async () => {
    const plan = await store.transaction(async (tx) => {
      // The planner may prefer a scan of a tiny table; forbidding scans shows the index serves.
      await tx.query('set local enable_seqscan = off')
      return await tx.query<Record<string, string>>(`explain ${PURGE}`, [500])
    })
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/idempotency_keys_expires_idx/)
  })
})
