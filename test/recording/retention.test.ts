// Retention per connection on both stores: expired captures dropped, an expired chain prefix
// deleted behind a signed retention checkpoint, expired events behind a younger one purged in
// place — and the chain verifies afterwards; a deletion that retention did not make still shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CaptureCollector } from '../../src/recording/capture.js'
import { verifyStore } from '../../src/recording/audit.js'
import { Recording } from '../../src/recording/recorder.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'
import { alice, ed25519Pem, facts, recordingConfig } from './helpers.js'

const NOW = new Date('2026-11-21T08:00:00Z')
const DAY = 86_400_000_000

function daysAgo (days: number): number {
  return NOW.getTime() * 1000 - days * DAY
}

function withCapture (): CaptureCollector {
  const c = new CaptureCollector([{ name: 'ID', type: 'NUMBER' }], 1024)
  c.add([[1], [2]])
  return c
}

describe.each(storeEngines())('retention on $name', { timeout: 120_000 }, (engine) => {
  let store: Store
  let recording: Recording
  let chain: string
  const rows = async (): Promise<Array<{ seq: number, connection: string, purged: boolean, sql: string | null, capture: boolean }>> =>
    await store.query(`select seq::float8 as seq, connection, purged_at is not null as purged, sql_text as sql, result_capture is not null as capture
      from session_events where chain = $1 order by seq`, [chain])

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    recording = new Recording(store, recordingConfig({
      checkpointKey: ed25519Pem().privatePem,
      retention: { days: 30, resultDays: 7, intervalSeconds: 0, connections: { short: { days: 1, resultDays: 0 }, long: { days: 3650 } } }
    }))
    chain = recording.writer.chainId
    const plan: Array<[string, number, boolean]> = [
      ['wh', 60, false], ['wh', 40, false], ['long', 50, false], ['wh', 45, false], ['short', 2, true], ['wh', 10, true], ['wh', 0, true]
    ]
    // One at a time: seq order is the order written.
    for (const [connection, age, capture] of plan) {
      const f = facts({ connection, startedAtMicros: daysAgo(age) })
      if (capture) f.trip = { ...f.trip, capture: withCapture() }
      await recording.record(f, { sessionKey: 'retention', principal: alice, frontEnd: 'test', connection })
    }
    await recording.writer.checkpoint('periodic')
  })
  afterAll(async () => { await engine.cleanup() })

  it('deletes the expired prefix, purges what sits behind a younger event, drops old captures — and still verifies', async () => {
    const report = await recording.retention(NOW)
    expect(report).toMatchObject({ eventsDeleted: 2, eventsPurged: 2, checkpoints: 1 })
    expect(report.capturesDropped).toBe(2)
    expect(await rows()).toEqual([
      { seq: 3, connection: 'long', purged: false, sql: expect.any(String), capture: false },
      { seq: 4, connection: 'wh', purged: true, sql: null, capture: false },
      { seq: 5, connection: 'short', purged: true, sql: null, capture: false },
      { seq: 6, connection: 'wh', purged: false, sql: expect.any(String), capture: false },
      { seq: 7, connection: 'wh', purged: false, sql: expect.any(String), capture: true }
    ])
    const [cp] = await store.query<{ seq: number, signed: boolean }>(
      "select seq::float8 as seq, signature is not null as signed from checkpoints where chain = $1 and kind = 'retention'", [chain])
    expect(cp).toEqual({ seq: 2, signed: true })
    const verified = await verifyStore(store, recording.key)
    expect(verified.issues).toEqual([])
  })

  it('is idempotent, and a deletion retention did not make is still reported', async () => {
    const again = await recording.retention(NOW)
    expect(again).toMatchObject({ eventsDeleted: 0, eventsPurged: 0, checkpoints: 0 })
    expect((await verifyStore(store, recording.key)).issues).toEqual([])
    await store.query('delete from session_events where chain = $1 and seq = 3', [chain])
    const report = await verifyStore(store, recording.key)
    expect(report.issues.map((i) => i.kind)).toEqual(['deleted'])
  })

  it('runs on its interval timer and stops on close', async () => {
    const timed = new Recording(store, recordingConfig({ retention: { days: 30, resultDays: 7, intervalSeconds: 1, connections: {} } }))
    let runs = 0
    const original = timed.retention.bind(timed)
    timed.retention = async (now?: Date) => { runs++; return await original(now) }
    timed.start()
    await new Promise((resolve) => setTimeout(resolve, 1300))
    await timed.close()
    const seen = runs
    expect(seen).toBeGreaterThanOrEqual(1)
    await new Promise((resolve) => setTimeout(resolve, 1200))
    expect(runs).toBe(seen)
  })
})
