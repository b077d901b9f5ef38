// The idempotency-key records (src/state/idempotency.ts) on both store engines: first claim
// wins, expired keys count as absent without any purge, and the purge is a bounded delete of
// expired keys through their index.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PURGE, StoreIdempotencyKeys, type IdempotencyKey } from '../../src/state/idempotency.js'
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

  it('finds expired keys through the expiry index, not a scan of the table', async () => {
    const plan = await store.transaction(async (tx) => {
      // The planner may prefer a scan of a tiny table; forbidding scans shows the index serves.
      await tx.query('set local enable_seqscan = off')
      return await tx.query<Record<string, string>>(`explain ${PURGE}`, [500])
    })
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/idempotency_keys_expires_idx/)
  })
})
