// `sluice audit verify` against an attacker who has the database but not the checkpoint key,
// through the CLI an operator runs, on both stores. Each test builds a real trail, tampers
// with it by SQL only — computing digests and links itself where it forges an event, as
// anyone can — and checks what verify reports and how it exits: errors fail, warnings
// (what no checkpoint vouches for) fail only with --strict, and the SIEM webhook's copies of
// the checkpoints (--checkpoints) reveal truncation and chains deleted whole.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main.js'
import { eventDigest, linkHash, loadCheckpointKey, signBody } from '../../src/recording/chain.js'
import { COLUMNS, EVENT_FIELDS, type StoredEvent } from '../../src/recording/event.js'
import { Recording } from '../../src/recording/recorder.js'
import type { VerifyReport } from '../../src/recording/verify.js'
import { migrate } from '../../src/store/migrate.js'
import { openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { createThrowawayDatabase } from '../support/stores.js'
import { alice, ed25519Pem, facts, recordingConfig } from './helpers.js'

const keys = ed25519Pem()
const WEBHOOK_SECRET = 'a-webhook-secret-for-tests'

async function run (args: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += chunk.toString(); return true })
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { err += chunk.toString(); return true })
  try {
    return { code: await main(args), out, err }
  } finally {
    stdout.mockRestore()
    stderr.mockRestore()
  }
}

/** The SIEM: keeps every webhook body it receives, one per line, as a receiver would append them. */
class Siem {
  readonly bodies: string[] = []
  #server: Server | undefined
  url = ''
  /** A slow receiver: a body counts as kept only once it is acknowledged, this much later. */
  ackDelayMs = 0

  async start (): Promise<void> {
    this.#server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => {
        setTimeout(() => { this.bodies.push(body); res.writeHead(204).end() }, this.ackDelayMs)
      })
    })
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#server?.address() as AddressInfo).port}/siem`
  }

  checkpoints (): Array<{ chain: string, seq: number, kind: string, signature: string | null }> {
    return this.bodies.flatMap((b) => (JSON.parse(b) as { items: Array<{ type: string }> }).items)
      .filter((i) => i.type === 'checkpoint') as never
  }

  /** Waits (generously) until the copies hold `n` checkpoints: delivery runs beside the writes. */
  async expectCheckpoints (n: number): Promise<void> {
    const deadline = Date.now() + 30_000
    while (this.checkpoints().length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(this.checkpoints()).toHaveLength(n)
  }

  async close (): Promise<void> {
    await new Promise((resolve) => this.#server?.close(resolve))
  }
}

interface Scene {
  store: Store
  config: string
  dir: string
  /** A gateway (one chain); `webhook` sends its events and checkpoints to the SIEM. */
  gateway: (options?: { webhook?: boolean }) => Recording
  /** Records `n` events one at a time (seq order is the order written). */
  record: (recording: Recording, n: number, at?: (i: number) => number) => Promise<void>
  /** Closes the test's store (PGlite's directory belongs to one open store) and runs `sluice audit …`. */
  audit: (...args: string[]) => Promise<{ code: number, out: string, err: string }>
  verify: (...args: string[]) => Promise<{ code: number, out: string, err: string, report: VerifyReport | undefined }>
  copies: () => Promise<string>
}

const ENGINES = ['pglite', 'postgres'] as const

describe.each(ENGINES)('sluice audit verify after tampering, on %s', { timeout: 180_000 }, (engine) => {
  const siem = new Siem()
  const cleanups: Array<() => Promise<void>> = []

  beforeAll(async () => { await siem.start() })
  afterAll(async () => { await siem.close() })
  afterEach(async () => {
    siem.bodies.length = 0
    siem.ackDelayMs = 0
    for (const fn of cleanups.splice(0).reverse()) await fn()
  })

  async function scene (): Promise<Scene> {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-tamper-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    let store: Store
    let storeYaml: string
    if (engine === 'pglite') {
      const dataDir = join(dir, 'data')
      store = await openPgliteStore({ dataDir })
      storeYaml = `store:\n  dataDir: ${dataDir}\n`
    } else {
      const db = await createThrowawayDatabase()
      cleanups.push(async () => { await db.drop() })
      store = openPostgresStore({ url: db.url, poolSize: 2 })
      storeYaml = `store:\n  url: ${db.url}\n`
    }
    let open = true
    cleanups.push(async () => { if (open) await store.close() })
    await migrate(store)
    await writeFile(join(dir, 'checkpoint.pem'), keys.privatePem)
    const config = join(dir, 'sluice.yaml')
    await writeFile(config, `${storeYaml}recording:\n  checkpointKey: \${file:checkpoint.pem}\n  retention: { intervalSeconds: 0, days: 30 }\n` +
      `  webhook: { url: '${siem.url}', secret: ${WEBHOOK_SECRET}, backoffMs: 20, maxBackoffMs: 200 }\n`)
    const audit = async (...args: string[]): Promise<{ code: number, out: string, err: string }> => {
      if (open) {
        await store.close()
        open = false
      }
      return await run(['audit', ...args, '--config', config])
    }
    return {
      store,
      config,
      dir,
      gateway: (options = {}) => new Recording(store, recordingConfig({
        checkpointKey: keys.privatePem,
        ...(options.webhook === true && { webhook: { url: siem.url, secret: WEBHOOK_SECRET, backoffMs: 20, maxBackoffMs: 200 } })
      })),
      async record (recording, n, at) {
        for (let i = 0; i < n; i++) {
          await recording.record(facts(at === undefined ? {} : { startedAtMicros: at(i) }), { sessionKey: 'tamper', principal: alice, frontEnd: 'test' })
        }
      },
      audit,
      async verify (...args) {
        const result = await audit('verify', ...args)
        return { ...result, report: args.includes('--json') ? JSON.parse(result.out) as VerifyReport : undefined }
      },
      async copies () {
        const file = join(dir, 'siem-checkpoints.jsonl')
        await writeFile(file, `${siem.bodies.join('\n')}\n`)
        return file
      }
    }
  }

  const head = async (store: Store, chain: string): Promise<StoredEvent> =>
    (await store.query<StoredEvent>(`select ${EVENT_FIELDS} from session_events e where e.chain = $1 order by e.seq desc limit 1`, [chain]))[0] as StoredEvent

  /**
   * Appends a copy of the chain's head as the next seq, with `set` applied to its columns,
   * then gives it a digest and link computed as the writer would: nothing but public arithmetic.
   */
  async function appendForged (store: Store, chain: string, set: Record<string, string>): Promise<StoredEvent> {
    const last = await head(store, chain)
    const columns = COLUMNS.map(([, column]) => column)
    const values = columns.map((c) => set[c] ?? (c === 'seq' ? 'seq + 1' : c))
    await store.query(`insert into session_events (${columns.join(', ')}) select ${values.join(', ')} from session_events where chain = $1 and seq = $2::bigint`,
      [chain, String(last.seq)])
    const forged = await head(store, chain)
    const digest = eventDigest(forged)
    const hash = linkHash(Buffer.from(last.hash as string, 'hex'), digest)
    await store.query("update session_events set prev_hash = decode($2, 'hex'), event_digest = decode($3, 'hex'), hash = decode($4, 'hex') where id = $1::bigint",
      [forged.id, last.hash, digest.toString('hex'), hash.toString('hex')])
    return { ...forged, prevHash: last.hash, eventDigest: digest.toString('hex'), hash: hash.toString('hex') }
  }

  it('a clean, closed trail verifies, strictly and against the webhook copies', async () => {
    const s = await scene()
    const gateway = s.gateway({ webhook: true })
    await s.record(gateway, 5)
    await gateway.close()
    await siem.expectCheckpoints(1)
    expect(siem.checkpoints()[0]).toMatchObject({ seq: 5, kind: 'close', signature: expect.stringMatching(/^[0-9a-f]+$/) })
    const copies = await s.copies()
    const result = await s.verify('--strict', '--checkpoints', copies, '--json')
    expect(result.report).toMatchObject({ ok: true, strict: true, events: 5, checkpoints: 1, outside: { checkpoints: 1, chains: 1 }, issues: [], warnings: [] })
    expect(result.code).toBe(0)
    const text = await s.verify('--strict', '--checkpoints', copies)
    expect(text.out).toMatch(/^OK: 5 events in 1 chains, 1 checkpoints, 1 outside checkpoint copies, 0 issues, 0 warnings$/m)
  })

  it('reports an event appended after the close checkpoint, though its digest and link are valid', async () => {
    const s = await scene()
    const gateway = s.gateway()
    await s.record(gateway, 5)
    await gateway.close()
    const forged = await appendForged(s.store, gateway.writer.chainId, {
      request_id: "'forged-after-close'",
      sql_text: "'select * from crm.customers'",
      occurred_at: "occurred_at + interval '1 second'"
    })
    expect(eventDigest(forged).toString('hex')).toBe(forged.eventDigest)
    const { code, report } = await s.verify('--json')
    // Nothing else is wrong with it: only the close checkpoint says it cannot be there.
    expect(report?.issues).toEqual([{
      kind: 'inserted',
      chain: gateway.writer.chainId,
      seq: 6,
      eventId: forged.id,
      requestId: 'forged-after-close',
      detail: "written after the chain's close checkpoint at seq 5: a closed chain takes no more events"
    }])
    expect(code).toBe(1)
    expect((await s.verify()).out).toMatch(/^INSERTED  chain \S+ seq 6 event \d+ request forged-after-close: written after the chain's close checkpoint at seq 5/m)
  })

  it('an appended event whose close checkpoint was deleted too: unanchored, failing --strict, and inserted by the webhook copy', async () => {
    const s = await scene()
    const gateway = s.gateway({ webhook: true })
    await s.record(gateway, 5)
    await gateway.close()
    await siem.expectCheckpoints(1)
    const chain = gateway.writer.chainId
    await appendForged(s.store, chain, { request_id: "'forged'", occurred_at: "occurred_at + interval '1 second'" })
    await s.store.query('delete from checkpoints where chain = $1', [chain])

    const alone = await s.verify('--json')
    expect(alone.report?.issues).toEqual([])
    expect(alone.report?.warnings.map((w) => w.kind).sort()).toEqual(['no-checkpoints', 'unanchored'])
    expect(alone.code).toBe(0)
    expect((await s.verify('--strict')).code).toBe(1)

    const outside = await s.verify('--checkpoints', await s.copies(), '--json')
    expect(outside.report?.issues.map((i) => [i.kind, i.seq, i.detail])).toEqual(expect.arrayContaining([
      ['checkpoint', null, 'the store has no close checkpoint at seq 5, the outside copy has one: it was deleted from the store'],
      ['inserted', 6, "written after the chain's close checkpoint at seq 5: a closed chain takes no more events"]
    ]))
    expect(outside.code).toBe(1)
  })

  it('reports a duplicated head event as a duplicate request id', async () => {
    const s = await scene()
    // A gateway still running: its last periodic checkpoint is at 5, no close yet.
    const gateway = s.gateway()
    await s.record(gateway, 5)
    await gateway.writer.checkpoint('periodic')
    const chain = gateway.writer.chainId
    const original = await head(s.store, chain)
    const copy = await appendForged(s.store, chain, {})
    expect(copy.eventDigest).toBe(original.eventDigest)

    const { code, report } = await s.verify('--json')
    expect(report?.issues).toEqual([{
      kind: 'duplicate',
      chain,
      seq: 6,
      eventId: copy.id,
      requestId: original.requestId,
      detail: `duplicate request id: repeats event ${original.id} (chain ${chain} seq 5) exactly`
    }])
    expect(report?.warnings).toEqual([{
      kind: 'unanchored', chain, seq: 5, count: 1, detail: 'unanchored: 1 event after checkpoint 5 (seq 6…6): no signed checkpoint covers them'
    }])
    expect(report?.ok).toBe(false)
    expect(code).toBe(1)
  })

  it('several events of one request are siblings, not duplicates, on one chain or two', async () => {
    const s = await scene()
    const first = s.gateway()
    const second = s.gateway()
    const session = { sessionKey: 'siblings', principal: alice, frontEnd: 'test' }
    // As an admitted and a completed event would be: one request id, different content.
    await first.record(facts({ requestId: 'one-request', outcome: 'held' }), session)
    await first.record(facts({ requestId: 'one-request', outcome: 'ok' }), session)
    await second.record(facts({ requestId: 'one-request', trip: { sql: 'select 2' } }), session)
    await first.close()
    await second.close()
    const { code, report } = await s.verify('--strict', '--json')
    expect(report).toMatchObject({ ok: true, issues: [], warnings: [] })
    expect(code).toBe(0)
  })

  it('warns when every checkpoint was deleted; --strict fails', async () => {
    const s = await scene()
    const gateway = s.gateway()
    await s.record(gateway, 5)
    await gateway.close()
    await s.store.query('delete from checkpoints')

    const { code, report } = await s.verify('--json')
    expect(report).toMatchObject({ ok: true, strict: false, issues: [] })
    expect(report?.warnings).toEqual([
      { kind: 'unanchored', chain: gateway.writer.chainId, seq: null, count: 5, detail: 'unanchored: 5 events and no signed checkpoint covers this chain (seq 1…5)' },
      expect.objectContaining({ kind: 'no-checkpoints', count: 5, detail: expect.stringMatching(/^the store holds 5 events and no checkpoint/) })
    ])
    expect(code).toBe(0)

    const strict = await s.verify('--strict')
    expect(strict.out).toMatch(/^warning: the store holds 5 events and no checkpoint/m)
    expect(strict.out).toMatch(/^FAILED \(--strict: warnings fail\): 5 events in 1 chains, 0 checkpoints, 0 issues, 2 warnings$/m)
    expect(strict.code).toBe(1)
  })

  it('warns when the last event was deleted with its checkpoints; the webhook copies show the tail deleted', async () => {
    const s = await scene()
    const gateway = s.gateway({ webhook: true })
    await s.record(gateway, 3)
    await gateway.writer.checkpoint('periodic')
    await s.record(gateway, 2)
    await gateway.close()
    await siem.expectCheckpoints(2)
    const chain = gateway.writer.chainId
    await s.store.query('delete from session_events where chain = $1 and seq = 5', [chain])
    await s.store.query('delete from checkpoints where chain = $1 and seq = 5', [chain])

    const alone = await s.verify('--json')
    expect(alone.report?.issues).toEqual([])
    expect(alone.report?.warnings).toEqual([{
      kind: 'unanchored', chain, seq: 3, count: 1, detail: 'unanchored: 1 event after checkpoint 3 (seq 4…4): no signed checkpoint covers them'
    }])
    expect(alone.code).toBe(0)
    expect((await s.verify('--strict')).code).toBe(1)

    const outside = await s.verify('--checkpoints', await s.copies(), '--json')
    expect(outside.report?.issues.map((i) => [i.kind, i.detail]).sort()).toEqual([
      ['checkpoint', 'the store has no close checkpoint at seq 5, the outside copy has one: it was deleted from the store'],
      ['deleted', 'the outside copy of a checkpoint names seq 5, the chain ends at 4: its tail was deleted']
    ])
    expect(outside.code).toBe(1)
  })

  it('a chain truncated back to an earlier checkpoint verifies alone, strictly; the webhook copies catch it', async () => {
    const s = await scene()
    const gateway = s.gateway({ webhook: true })
    await s.record(gateway, 3)
    await gateway.writer.checkpoint('periodic')
    await s.record(gateway, 3)
    await gateway.close()
    await siem.expectCheckpoints(2)
    const chain = gateway.writer.chainId
    await s.store.query('delete from session_events where chain = $1 and seq > 3', [chain])
    await s.store.query('delete from checkpoints where chain = $1 and seq > 3', [chain])

    // What the chain alone cannot prove: a clean cut at a checkpoint looks like a shorter trail.
    const alone = await s.verify('--strict', '--json')
    expect(alone.report).toMatchObject({ ok: true, events: 3, issues: [], warnings: [] })
    expect(alone.code).toBe(0)

    const outside = await s.verify('--strict', '--checkpoints', await s.copies(), '--json')
    expect(outside.report?.outside).toEqual({ checkpoints: 2, chains: 1 })
    expect(outside.report?.issues.map((i) => [i.kind, i.detail]).sort()).toEqual([
      ['checkpoint', 'the store has no close checkpoint at seq 6, the outside copy has one: it was deleted from the store'],
      ['deleted', 'the outside copy of a checkpoint names seq 6, the chain ends at 3: its tail was deleted']
    ])
    expect(outside.code).toBe(1)
    expect((await s.verify('--checkpoints', await s.copies())).out).toMatch(/^DELETED   chain \S+ seq - event -: the outside copy of a checkpoint names seq 6, the chain ends at 3: its tail was deleted$/m)
  })

  it('a whole chain deleted (events, checkpoints, registration) verifies alone; the webhook copies catch it', async () => {
    const s = await scene()
    const kept = s.gateway({ webhook: true })
    const gone = s.gateway({ webhook: true })
    await s.record(kept, 2)
    await s.record(gone, 3)
    await kept.close()
    await gone.close()
    await siem.expectCheckpoints(2)
    const chain = gone.writer.chainId
    await s.store.query('delete from session_events where chain = $1', [chain])
    await s.store.query('delete from checkpoints where chain = $1', [chain])
    await s.store.query('delete from recording_chains where id = $1', [chain])

    const alone = await s.verify('--strict', '--json')
    expect(alone.report).toMatchObject({ ok: true, events: 2, chains: 1, issues: [], warnings: [] })
    expect(alone.code).toBe(0)

    const outside = await s.verify('--checkpoints', await s.copies(), '--json')
    expect(outside.report?.issues).toEqual([{
      kind: 'deleted',
      chain,
      seq: null,
      eventId: null,
      requestId: null,
      detail: 'the chain is gone from the store (no registration, event or checkpoint is left); the outside copy holds its checkpoints up to seq 3'
    }])
    expect(outside.code).toBe(1)
  })

  it('retention (sluice audit retention) still verifies, strictly, against copies that include its checkpoint', async () => {
    const s = await scene()
    const now = Date.now() * 1000
    const day = 86_400_000_000
    const gateway = s.gateway({ webhook: true })
    await s.record(gateway, 6, (i) => (i < 4 ? now - 60 * day + i : now - day + i))
    await gateway.close()
    await siem.expectCheckpoints(1)
    // Slower than the command takes to close its store, well within the webhook's grace.
    siem.ackDelayMs = 800
    const retention = await s.audit('retention')
    expect(JSON.parse(retention.out)).toMatchObject({ eventsDeleted: 4, checkpoints: 1 })
    // The command ends only after the webhook has its copy of the retention checkpoint.
    expect(siem.checkpoints().map((c) => [c.kind, c.seq])).toEqual([['close', 6], ['retention', 4]])

    const { code, report } = await s.verify('--strict', '--checkpoints', await s.copies(), '--json')
    expect(report).toMatchObject({ ok: true, events: 2, issues: [], warnings: [] })
    expect(code).toBe(0)
  })

  it('a forged outside copy (unsigned, or signed by another key) is reported and accuses nothing', async () => {
    const s = await scene()
    const gateway = s.gateway()
    await s.record(gateway, 3)
    await gateway.close()
    const chain = gateway.writer.chainId
    const file = join(s.dir, 'forged.jsonl')
    const forged = { type: 'checkpoint', chain, seq: 9, hash: 'ab'.repeat(32), kind: 'close', createdAt: '2026-11-21T07:35:23.123456Z' }
    const otherKey = loadCheckpointKey(ed25519Pem().privatePem)
    const { type: _type, ...body } = forged
    const signed = { ...forged, seq: 8, keyId: otherKey?.id, signature: signBody(otherKey, { ...body, seq: 8 })?.toString('hex') }
    await writeFile(file, `${JSON.stringify(forged)}\n${JSON.stringify({ items: [signed] })}\n`)
    const { code, report } = await s.verify('--checkpoints', file, '--json')
    expect(report?.issues.map((i) => i.detail).sort()).toEqual([
      'the outside copy of the close checkpoint at seq 8 is signed by key ' + String(otherKey?.id) + `, not by the configured key ${String(gateway.key?.id)}; it was not used`,
      'the outside copy of the close checkpoint at seq 9 is not signed; it was not used'
    ])
    expect(code).toBe(1)
  })

  it('refuses a --checkpoints file that is not what the webhook sends, naming the line', async () => {
    const s = await scene()
    const file = join(s.dir, 'bad.jsonl')
    await writeFile(file, '{"items":[{"type":"event","seq":1}]}\n{"type":"checkpoint","chain":"c","seq":"one","hash":"00","kind":"close"}\n')
    const { code, err } = await s.verify('--checkpoints', file)
    expect(err).toMatch(/--checkpoints line 2: a checkpoint needs a positive integer seq/)
    expect(code).toBe(1)
    expect((await s.verify('--checkpoints', file, '--file', file)).err).toMatch(/verify an export with --file alone/)
  })
})
