// Tamper evidence on both stores: a clean trail verifies; a row updated, deleted, inserted or
// reordered in the store is reported as such, and so is the same done to an export file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyStore } from '../../src/recording/audit.js'
import { exportLines, verifyExport } from '../../src/recording/export.js'
import { Recording } from '../../src/recording/recorder.js'
import type { VerifyReport } from '../../src/recording/verify.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'
import { alice, ed25519Pem, facts, recordingConfig } from './helpers.js'

const slow = { timeout: 120_000 }

function kinds (report: VerifyReport, chain: string): string[] {
  return report.issues.filter((i) => i.chain === chain).map((i) => i.kind)
}

describe.each(storeEngines())('hash chain on $name', slow, (engine) => {
  let store: Store
  const { privatePem } = ed25519Pem()
  const config = recordingConfig({ checkpointKey: privatePem, checkpointEveryEvents: 1000 })

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
  })
  afterAll(async () => { await engine.cleanup() })

  /** A fresh writer (its own chain) with `n` events, checkpointed at the end. */
  async function chainOf (n: number): Promise<{ recording: Recording, chain: string }> {
    const recording = new Recording(store, config)
    const chain = recording.writer.chainId
    await Promise.all(Array.from({ length: n }, async (_, i) => await recording.record(facts({
      trip: {
        sql: `select * from t where note = 'x${i}'`,
        params: [i, `v\u0000${i}`, 12345678901234567890n, { nested: { b: 2, a: [1.5, null, 'ü'] } }],
        decision: { effect: 'allow', ruleId: 'r', reason: 'ok', limits: {} },
        maskedColumns: [{ column: 'EMAIL', rule: 'mask-email', values: i }]
      }
    }), { sessionKey: `k-${chain}`, principal: alice, frontEnd: 'test' })))
    await recording.writer.checkpoint('periodic')
    return { recording, chain }
  }

  async function seqRow (chain: string, seq: number): Promise<string> {
    const [row] = await store.query<{ id: string }>('select id::text as id from session_events where chain = $1 and seq = $2', [chain, seq])
    return row!.id
  }

  it('verifies a clean trail of concurrent writes, values of every shape included', async () => {
    const { recording, chain } = await chainOf(25)
    const report = await verifyStore(store, recording.key)
    expect(report.issues).toEqual([])
    expect(report.ok).toBe(true)
    expect(report.events).toBeGreaterThanOrEqual(25)
    const [counts] = await store.query<{ n: number, cps: number }>(
      'select (select count(*)::int from session_events where chain = $1) as n, (select count(*)::int from checkpoints where chain = $1) as cps', [chain])
    expect(counts).toEqual({ n: 25, cps: 1 })
  })

  it('reports a modified event', async () => {
    const { recording, chain } = await chainOf(5)
    await store.query("update session_events set sql_text = 'select 1' where id = $1::bigint", [await seqRow(chain, 3)])
    const report = await verifyStore(store, recording.key)
    expect(kinds(report, chain)).toEqual(['modified'])
    expect(report.issues.find((i) => i.chain === chain)).toMatchObject({ seq: 3, detail: expect.stringContaining('digest') })
  })

  it('reports a modified captured result', async () => {
    const recording = new Recording(store, config)
    const chain = recording.writer.chainId
    const { CaptureCollector } = await import('../../src/recording/capture.js')
    const capture = new CaptureCollector([{ name: 'EMAIL', type: 'TEXT' }], 1 << 20)
    capture.add(Array.from({ length: 40 }, (_, i) => [`user${i}@***`]))
    await recording.record(facts({ trip: { sql: 'select email from t', capture } }))
    await store.query("update session_events set result_capture = decode('1f8b', 'hex') where chain = $1", [chain])
    const report = await verifyStore(store, recording.key)
    expect(report.issues.filter((i) => i.chain === chain).map((i) => i.detail)).toEqual(['captured result does not match its digest'])
  })

  it('reports a modified event whose digest and hash were recomputed (the next link breaks)', async () => {
    const { recording, chain } = await chainOf(5)
    await store.query("update session_events set hash = decode(repeat('ab', 32), 'hex') where chain = $1 and seq = 2", [chain])
    expect(kinds(await verifyStore(store, recording.key), chain)).toContain('modified')
  })

  it('reports a deleted event, and a deleted tail after a checkpoint', async () => {
    const { recording, chain } = await chainOf(6)
    await store.query('delete from session_events where chain = $1 and seq = 2', [chain])
    await store.query('delete from session_events where chain = $1 and seq = 6', [chain])
    const report = await verifyStore(store, recording.key)
    expect(kinds(report, chain).sort()).toEqual(['deleted', 'deleted'])
    expect(report.issues.filter((i) => i.chain === chain).map((i) => i.detail).join(' ')).toMatch(/tail was deleted/)
  })

  it('reports inserted events: unchained, and a forged copy with a duplicate seq', async () => {
    const { recording, chain } = await chainOf(4)
    await store.query(`insert into session_events (request_id, front_end, outcome, sql_text) values ('forged', 'test', 'ok', 'select 1')`)
    await store.query(`insert into session_events (chain, seq, request_id, front_end, outcome, prev_hash, event_digest, hash, occurred_at)
      select chain, seq, 'forged-2', front_end, outcome, prev_hash, event_digest, hash, occurred_at from session_events where chain = $1 and seq = 2`, [chain])
    const report = await verifyStore(store, recording.key)
    expect(report.issues.find((i) => i.requestId === 'forged')).toMatchObject({ kind: 'inserted' })
    expect(kinds(report, chain)).toContain('inserted')
  })

  it('reports reordered events', async () => {
    const { recording, chain } = await chainOf(5)
    await store.query('update session_events set seq = case seq when 2 then 3 else 2 end where chain = $1 and seq in (2, 3)', [chain])
    const found = kinds(await verifyStore(store, recording.key), chain)
    expect(found.length).toBeGreaterThan(0)
    expect(new Set(found)).toEqual(new Set(['reordered']))
  })

  it('reports a checkpoint whose signature does not hold', async () => {
    const { recording, chain } = await chainOf(3)
    await store.query("update checkpoints set seq = seq - 1 where chain = $1", [chain])
    expect(kinds(await verifyStore(store, recording.key), chain)).toContain('checkpoint')
  })

  it('verifies an export, and reports each kind of tampering done to the file', async () => {
    const { recording, chain } = await chainOf(6)
    const lines: string[] = []
    for await (const line of exportLines(store, { format: 'jsonl', key: recording.key, since: new Date(Date.now() - 60_000).toISOString() })) lines.push(line)
    const text = lines.join('\n')
    const clean = verifyExport(text, recording.key)
    // Earlier tests tampered with other chains in the same window; this chain and the seal hold.
    expect(clean.issues.filter((i) => i.chain === chain || (i.chain === null && i.requestId === null))).toEqual([])

    const eventLines = lines.map((l, i) => ({ l, i, e: JSON.parse(l) as Record<string, unknown> })).filter((x) => x.e.type === 'event' && x.e.chain === chain)
    const at = (seq: number): { l: string, i: number, e: Record<string, unknown> } => eventLines.find((x) => x.e.seq === seq)!
    const edit = (fn: (copy: string[]) => void): VerifyReport => {
      const copy = [...lines]
      fn(copy)
      return verifyExport(copy.join('\n'), recording.key)
    }

    const modified = edit((c) => { c[at(3).i] = JSON.stringify({ ...at(3).e, sqlText: 'select 1' }) })
    expect(kinds(modified, chain)).toEqual(['modified'])
    expect(modified.issues.some((i) => i.chain === null && /sealed/.test(i.detail))).toBe(true)

    const deleted = edit((c) => { c.splice(at(4).i, 1) })
    expect(kinds(deleted, chain)).toContain('deleted')

    const inserted = edit((c) => { c.splice(at(4).i, 0, JSON.stringify({ ...at(4).e, id: '999999999', requestId: 'forged' })) })
    expect(kinds(inserted, chain)).toContain('inserted')

    const reordered = edit((c) => {
      c[at(2).i] = JSON.stringify({ ...at(2).e, seq: 3 })
      c[at(3).i] = JSON.stringify({ ...at(3).e, seq: 2 })
    })
    expect(new Set(kinds(reordered, chain))).toEqual(new Set(['reordered']))

    const unsealed = edit((c) => { c.pop() })
    expect(unsealed.ok).toBe(false)
  })

  it('refuses an export verified against another key', async () => {
    const { chain } = await chainOf(2)
    const lines: string[] = []
    for await (const line of exportLines(store, { format: 'jsonl', key: new Recording(store, config).key })) lines.push(line)
    const other = new Recording(store, recordingConfig({ checkpointKey: ed25519Pem().privatePem }))
    const report = verifyExport(lines.join('\n'), other.key)
    expect(report.ok).toBe(false)
    expect(kinds(report, chain)).toContain('inserted')
  })
})
