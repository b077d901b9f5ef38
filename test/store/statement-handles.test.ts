// The statement-handle records (src/state/statement-handles.ts) on both store engines: owner-
// bound lookups, expiry as part of every lookup, a finish that loses to a cancel, one heartbeat
// write for many rows, stale runners marked failed once, a bounded purge by the expiry index, and
// held statements (approval, sealed request) released once or ended unrun.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PURGE_HANDLES, StoreStatementHandles } from '../../src/state/statement-handles.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'

const slow = { timeout: 120_000 }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe.each(storeEngines())('statement handles on $name', slow, (engine) => {
  let store: Store
  let handles: StoreStatementHandles
  const fresh = (over: Record<string, unknown> = {}) => ({ id: randomUUID(), owner: 'alice-digest', connection: 'wh', sql: 'SELECT 1', replica: 'replica-a', ...over })

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    handles = new StoreStatementHandles(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('answers only its owner; a foreign id looks like an unknown one', async () => {
    const h = fresh({ clientRequestId: 'req-1', sessionKey: 'snowflake:7', admitted: { record: { decision: { ruleId: 'r' } } } })
    await handles.create(h, 60)
    const got = await handles.get(h.id, 'alice-digest')
    expect(got).toMatchObject({ id: h.id, state: 'running', replica: 'replica-a', clientRequestId: 'req-1', sessionKey: 'snowflake:7', admitted: { record: { decision: { ruleId: 'r' } } } })
    expect(got?.createdAt).toBeGreaterThan(Date.now() - 60_000)
    expect(got?.finishedAt).toBeUndefined()
    expect(await handles.get(h.id, 'bob-digest')).toBeUndefined()
    expect(await handles.get(randomUUID(), 'alice-digest')).toBeUndefined()
    expect((await handles.getAny(h.id))?.owner).toBe('alice-digest')
    expect((await handles.runningByRequest('alice-digest', 'req-1')).map((r) => r.id)).toEqual([h.id])
    expect(await handles.runningByRequest('bob-digest', 'req-1')).toEqual([])
    expect((await handles.runningInSession('alice-digest', 'snowflake:7')).map((r) => r.id)).toEqual([h.id])
  })

  it('keeps the manifest, the first page and the released error; never anything else of the result', async () => {
    const ok = fresh()
    await handles.create(ok, 60)
    const manifest = { total: 3, pages: [{ rows: 1, offset: 0, bytes: 10 }, { rows: 2, chunk: 0, bytes: 20 }], upstreamQueryId: 'q-1' }
    // The write answers with the row as stored, the same a later read finds.
    const finished = await handles.finish(ok.id, { state: 'succeeded', manifest, firstPage: [['1', '****']], trip: { statementId: 's' } }, 60)
    expect(finished).toMatchObject({ state: 'succeeded', manifest, firstPage: [['1', '****']], trip: { statementId: 's' } })
    expect(await handles.get(ok.id, 'alice-digest')).toEqual(finished)
    // Finished once: a second outcome (a late runner) changes nothing.
    expect(await handles.finish(ok.id, { state: 'failed', error: { code: 'X', message: 'late' } }, 60)).toBeUndefined()
    const bad = fresh()
    expect(await handles.create(bad, 60, { state: 'failed', error: { code: 'SLUICE_SNOWFLAKE_STATEMENT_FAILED', message: 'released text', snowflakeCode: '002003', sqlState: '42S02' } })).toEqual(await handles.get(bad.id, 'alice-digest'))
    expect(await handles.get(bad.id, 'alice-digest')).toMatchObject({ state: 'failed', error: { snowflakeCode: '002003', message: 'released text' } })
  })

  it('a held statement: its approval and sealed request kept, released once (held → running), its twin found', async () => {
    const approvalId = randomUUID()
    const sealed = new Uint8Array([1, 2, 3, 250])
    const h = fresh({ approvalId, heldRequest: sealed, clientRequestId: 'req-held' })
    await handles.create(h, 60)
    expect(await handles.get(h.id, 'alice-digest')).toMatchObject({ state: 'held', approvalId, heldRequest: sealed })
    // Nothing runs while held: no heartbeat keeps it, a finish does not apply, but abort-request by requestId finds it.
    expect(await handles.finish(h.id, { state: 'succeeded', manifest: {} }, 60)).toBeUndefined()
    expect((await handles.runningByRequest('alice-digest', 'req-held')).map((r) => r.id)).toEqual([h.id])
    expect(await handles.releasedFor(approvalId, 'alice-digest')).toBeUndefined()
    // Released once, on the replica that claimed the approval; the sealed request goes with it.
    expect(await handles.release(h.id, 'replica-b', 60, { record: { decision: { ruleId: 'r' } } })).toBe(true)
    expect(await handles.release(h.id, 'replica-c', 60)).toBe(false)
    const running = await handles.get(h.id, 'alice-digest')
    expect(running).toMatchObject({ state: 'running', replica: 'replica-b', approvalId, admitted: { record: { decision: { ruleId: 'r' } } } })
    expect(running?.heldRequest).toBeUndefined()
    expect(await handles.endHeld(h.id, { state: 'aborted', cancelReason: 'client' }, 60)).toBe(false)
    expect((await handles.releasedFor(approvalId, 'alice-digest'))?.id).toBe(h.id)
    expect(await handles.releasedFor(approvalId, 'bob-digest')).toBeUndefined()
  })

  it('a held statement ends unrun: failed with the error the client is told, or aborted by a cancel', async () => {
    const denied = fresh({ approvalId: randomUUID(), heldRequest: new Uint8Array([9]) })
    await handles.create(denied, 60)
    const error = { code: 'SLUICE_APPROVAL_DENIED', message: 'approval x denied by carol: no', statusCode: 403 }
    expect(await handles.endHeld(denied.id, { state: 'failed', error }, 60)).toBe(true)
    expect(await handles.endHeld(denied.id, { state: 'aborted', cancelReason: 'client' }, 60)).toBe(false)
    expect(await handles.release(denied.id, 'replica-b', 60)).toBe(false)
    const failed = await handles.get(denied.id, 'alice-digest')
    expect(failed).toMatchObject({ state: 'failed', error })
    expect(failed?.heldRequest).toBeUndefined()
    const cancelled = fresh({ approvalId: randomUUID(), heldRequest: new Uint8Array([9]) })
    await handles.create(cancelled, 60)
    expect(await handles.endHeld(cancelled.id, { state: 'aborted', cancelReason: 'client' }, 60)).toBe(true)
    expect(await handles.get(cancelled.id, 'alice-digest')).toMatchObject({ state: 'aborted', cancelReason: 'client' })
    expect(await handles.release(cancelled.id, 'replica-b', 60)).toBe(false)
  })

  it('a cancel wins over a later finish, and only the owner can cancel', async () => {
    const h = fresh()
    await handles.create(h, 60)
    expect(await handles.cancel(h.id, 'bob-digest', 'client')).toBe(false)
    expect(await handles.cancel(h.id, 'alice-digest', 'timeout')).toBe(true)
    expect(await handles.cancel(h.id, 'alice-digest', 'client')).toBe(false)
    expect(await handles.finish(h.id, { state: 'succeeded', manifest: {} }, 60)).toBeUndefined()
    expect(await handles.get(h.id, 'alice-digest')).toMatchObject({ state: 'aborted', cancelReason: 'timeout' })
  })

  it('heartbeats many running rows in one write and says which were cancelled', async () => {
    const rows = [fresh(), fresh(), fresh()]
    for (const r of rows) await handles.create(r, 60)
    await handles.cancel(rows[1]!.id, 'alice-digest', 'client')
    const before = (await handles.get(rows[0]!.id, 'alice-digest'))!.heartbeatAt
    await sleep(20)
    const answers = await handles.heartbeat(rows.map((r) => r.id), 60)
    expect(Object.fromEntries(answers.map((a) => [a.id, a.state]))).toEqual({ [rows[0]!.id]: 'running', [rows[1]!.id]: 'aborted', [rows[2]!.id]: 'running' })
    expect((await handles.get(rows[0]!.id, 'alice-digest'))!.heartbeatAt).toBeGreaterThan(before)
    expect(await handles.heartbeat([], 60)).toEqual([])
  })

  it('marks a running row failed when its heartbeat is stale, once', async () => {
    const h = fresh()
    await handles.create(h, 60)
    const error = { code: 'SLUICE_STATEMENT_RUNNER_LOST', message: 'stopped' }
    expect(await handles.failIfStale(h.id, 60, error, 60)).toBe(false)
    await store.query(`update statement_handles set heartbeat_at = now() - interval '2 minutes' where id = $1::uuid`, [h.id])
    expect(await handles.failIfStale(h.id, 60, error, 60)).toBe(true)
    expect(await handles.failIfStale(h.id, 60, error, 60)).toBe(false)
    expect(await handles.get(h.id, 'alice-digest')).toMatchObject({ state: 'failed', error })
  })

  it('ignores expired rows in every lookup and purges them in bounded batches', async () => {
    const live = fresh()
    await handles.create(live, 3600)
    const gone = [fresh(), fresh(), fresh(), fresh()]
    for (const g of gone) await handles.create(g, 0.01, { state: 'succeeded', manifest: {} })
    await sleep(100)
    expect(await handles.get(gone[0]!.id, 'alice-digest')).toBeUndefined()
    expect(await handles.getAny(gone[0]!.id)).toBeUndefined()
    expect(await handles.purgeExpired(3)).toBe(3)
    expect(await handles.purgeExpired(100)).toBeGreaterThanOrEqual(1)
    expect(await handles.purgeExpired(100)).toBe(0)
    expect(await handles.get(live.id, 'alice-digest')).toBeDefined()
  })

  it('finds expired handles through the expiry index, not a scan of the table', async () => {
    const plan = await store.transaction(async (tx) => {
      await tx.query('set local enable_seqscan = off')
      return await tx.query<Record<string, string>>(`explain ${PURGE_HANDLES}`, [500])
    })
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/statement_handles_expires_idx/)
  })
})
