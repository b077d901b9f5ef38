// A statement its client waits for (StartOptions.deferRow) is written to the store only when
// something outside its own request could need it: it ran past the window, it was cancelled, or
// it is answered as still running. One that ends sooner is stored once, finished: with its round
// trip's completed event when it has one, else by a write of its own. Whatever the
// timing, the store ends up saying exactly what happened, and another replica reading the same
// store sees every statement it could have been told about.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Pipeline, type RoundTrip } from '../../src/pipeline.js'
import { passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import { Recording } from '../../src/recording/recorder.js'
import { recordCompleted } from '../../src/recording/round-trips.js'
import { StoreStatementHandles, type StatementHandleStore } from '../../src/state/statement-handles.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { ownerDigest } from '../../src/warehouses/snowflake/handles.js'
import { syntheticResult } from '../../src/warehouses/snowflake/manifest.js'
import { SnowflakeStatements, type StatementsOptions, type Work } from '../../src/warehouses/snowflake/statements.js'
import { alice, recordingConfig } from '../recording/helpers.js'
import { storeEngines } from '../support/stores.js'

const RESULT = syntheticResult([], { columns: [] }, [])

/** The handle store with each write counted, and a create that can be told to fail once. */
function counted (inner: StatementHandleStore): StatementHandleStore & { writes: string[], failNextCreate: boolean } {
  const writes: string[] = []
  // Every method delegates to the real store (its private fields stay with it).
  const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(inner)).filter((m) => m !== 'constructor')
  const spy = Object.fromEntries(methods.map((m) => [m, (inner as any)[m].bind(inner)])) as StatementHandleStore & { writes: string[], failNextCreate: boolean }
  spy.writes = writes
  spy.failNextCreate = false
  spy.create = async (handle, ttl, finished) => {
    writes.push(finished === undefined ? 'create running' : `create ${finished.state}`)
    if (spy.failNextCreate) {
      spy.failNextCreate = false
      throw new Error('store blip')
    }
    return await inner.create(handle, ttl, finished)
  }
  spy.finish = async (id, outcome, ttl) => {
    writes.push(`finish ${outcome.state}`)
    return await inner.finish(id, outcome, ttl)
  }
  return spy
}

/** Work that ends when `release` is called (or its signal aborts, as an upstream cancel would). */
function gated (): { work: Work, release: () => void, started: Promise<void> } {
  let release!: () => void
  let began!: () => void
  const started = new Promise<void>((resolve) => { began = resolve })
  const gate = new Promise<void>((resolve) => { release = resolve })
  const work: Work = async (signal) => {
    began()
    await Promise.race([gate, new Promise((resolve, reject) => signal.addEventListener('abort', () => { reject(new Error('aborted')) }))])
    return RESULT
  }
  return { work, release, started }
}

const waitFor = async (check: () => Promise<boolean>, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms
  while (!await check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe.each(storeEngines())('deferred statement rows on $name', { timeout: 120_000 }, (engine) => {
  let store: Store
  const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
  const replicas: SnowflakeStatements[] = []
  const replica = (handles: StatementHandleStore, over: Partial<StatementsOptions> = {}): SnowflakeStatements => {
    const r = new SnowflakeStatements({ store: handles, pipeline, upstreamOf: () => undefined, replica: `replica-${replicas.length}`, ttlSeconds: 60, chunkKey: Buffer.alloc(32), ...over })
    replicas.push(r)
    return r
  }

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
  })
  afterAll(async () => {
    for (const r of replicas) await r.close()
    await engine.cleanup()
  })

  it('stores a statement that ends inside the window once, finished, and the other replica reads it', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 5_000 })
    const there = replica(new StoreStatementHandles(store))
    const started = await here.start(alice, 'wh', 'SELECT 1', async () => RESULT, { deferRow: true })
    const done = await here.wait(started, 10)
    expect(done.state).toBe('succeeded')
    expect(handles.writes).toEqual(['create succeeded'])
    expect((await there.get(started.id, alice))?.state).toBe('succeeded')
  })

  it('hands a statement that ends inside the window to its round trip: stored with the completed event, not before', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 5_000 })
    const there = replica(new StoreStatementHandles(store))
    const trip: RoundTrip = {}
    const started = await here.start(alice, 'wh', 'SELECT 11', async () => RESULT, { deferRow: true, trip })
    const done = await here.wait(started, 10)
    expect(done.state).toBe('succeeded')
    expect(handles.writes).toEqual([])
    expect(await there.get(started.id, alice)).toBeUndefined()
    const recording = new Recording(store, recordingConfig())
    await recordCompleted(recording, { requestId: 'req-11', frontEnd: 'test', principal: alice, sessionKey: 'test:s11' }, trip, { durationMs: 1 })
    expect((await there.get(started.id, alice))?.state).toBe('succeeded')
    await recording.close()
  })

  it('writes its own row for a round trip whose completed event is already on its way', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 5_000 })
    const there = replica(new StoreStatementHandles(store))
    const trip: RoundTrip = { completing: true }
    const started = await here.start(alice, 'wh', 'SELECT 12', async () => RESULT, { deferRow: true, trip })
    expect((await here.wait(started, 10)).state).toBe('succeeded')
    expect(handles.writes).toEqual(['create succeeded'])
    expect(trip.companions).toBeUndefined()
    expect((await there.get(started.id, alice))?.state).toBe('succeeded')
  })

  it('writes the running row once the window passes, then finishes it with an update', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 50 })
    const there = replica(new StoreStatementHandles(store))
    const { work, release } = gated()
    const started = await here.start(alice, 'wh', 'SELECT 2', work, { deferRow: true })
    await waitFor(async () => (await there.get(started.id, alice))?.state === 'running')
    release()
    expect((await here.wait(started, 10)).state).toBe('succeeded')
    expect(handles.writes).toEqual(['create running', 'finish succeeded'])
    expect((await there.get(started.id, alice))?.state).toBe('succeeded')
  })

  // A zero wait is the connection's syncWaitSeconds: 0, answered "still running" at once.
  it.each([0.05, 0])('writes the row before a wait of %s s answers "still running", so the next poll can land on another replica', async (seconds) => {
    const here = replica(new StoreStatementHandles(store), { deferRowMs: 60_000 })
    const there = replica(new StoreStatementHandles(store))
    const { work, release } = gated()
    const started = await here.start(alice, 'wh', `SELECT 3 -- waits ${seconds}`, work, { deferRow: true })
    expect(await there.get(started.id, alice)).toBeUndefined()
    expect((await here.wait(started, seconds)).state).toBe('running')
    expect((await there.get(started.id, alice))?.state).toBe('running')
    release()
    await waitFor(async () => (await there.get(started.id, alice))?.state === 'succeeded')
  })

  it('stores a cancel inside the window with its reason, and stops the run', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 60_000 })
    const there = replica(new StoreStatementHandles(store))
    const { work, started: running } = gated()
    const started = await here.start(alice, 'wh', 'SELECT 4', work, { deferRow: true })
    await running
    expect(await here.cancel(started, 'timeout')).toBe(true)
    const seen = await there.get(started.id, alice)
    expect(seen?.state).toBe('aborted')
    expect(seen?.cancelReason).toBe('timeout')
    expect((await here.wait(started, 10)).state).toBe('aborted')
    expect(handles.writes).toEqual(['create running'])
  })

  it('finds an unwritten statement by its client requestId and by its session, on the replica that runs it', async () => {
    const here = replica(new StoreStatementHandles(store), { deferRowMs: 60_000 })
    const { work, release } = gated()
    const started = await here.start(alice, 'wh', 'SELECT 5', work, { deferRow: true, clientRequestId: 'req-5', sessionKey: 'snowflake:s5' })
    expect((await here.byClientRequest(alice, 'req-5'))?.id).toBe(started.id)
    expect((await here.runningIn(alice, 'snowflake:s5')).map((h) => h.id)).toEqual([started.id])
    release()
    await here.wait(started, 10)
    expect(await here.byClientRequest(alice, 'req-5')).toBeUndefined()
  })

  it('keeps an unwritten statement running across heartbeats (the store has no row to say it was cancelled)', async () => {
    const here = replica(new StoreStatementHandles(store), { deferRowMs: 60_000, heartbeatMs: 20 })
    const { work, release } = gated()
    const started = await here.start(alice, 'wh', 'SELECT 6', work, { deferRow: true })
    await new Promise((resolve) => setTimeout(resolve, 200))
    release()
    expect((await here.wait(started, 10)).state).toBe('succeeded')
  })

  it('stores the finished row when the running row could not be written', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 20 })
    const there = replica(new StoreStatementHandles(store))
    const { work, release } = gated()
    handles.failNextCreate = true
    const started = await here.start(alice, 'wh', 'SELECT 7', work, { deferRow: true })
    await waitFor(async () => handles.writes.length > 0)
    release()
    expect((await here.wait(started, 10)).state).toBe('succeeded')
    expect(handles.writes).toEqual(['create running', 'create succeeded'])
    expect((await there.get(started.id, alice))?.owner).toBe(ownerDigest(alice))
  })

  it('writes the row of a long text at once even with deferRow (its single final write would block longer)', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 60_000 })
    const there = replica(new StoreStatementHandles(store))
    const { work, release } = gated()
    const long = `SELECT 1 AS x /* ${'y'.repeat(64 * 1024)} */`
    const started = await here.start(alice, 'wh', long, work, { deferRow: true })
    expect((await there.get(started.id, alice))?.state).toBe('running')
    release()
    await here.wait(started, 10)
    expect(handles.writes).toEqual(['create running', 'finish succeeded'])
    // Just under the length, the same statement is deferred.
    const short = await replica(new StoreStatementHandles(store), { deferRowMs: 60_000 }).start(alice, 'wh', long.slice(0, 64 * 1024 - 1), gated().work, { deferRow: true })
    expect(await there.get(short.id, alice)).toBeUndefined()
  })

  it('writes the row at once without deferRow (async submissions answer with the handle)', async () => {
    const handles = counted(new StoreStatementHandles(store))
    const here = replica(handles, { deferRowMs: 60_000 })
    const there = replica(new StoreStatementHandles(store))
    const { work, release } = gated()
    const started = await here.start(alice, 'wh', 'SELECT 8', work)
    expect((await there.get(started.id, alice))?.state).toBe('running')
    release()
    await here.wait(started, 10)
    expect(handles.writes).toEqual(['create running', 'finish succeeded'])
  })
})
