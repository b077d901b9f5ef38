// Group commit: concurrent events share INSERTs, each caller's promise settles only after the
// statement holding its event returned, a failed batch fails exactly its callers (retryable)
// and the writer continues on a fresh chain; the SIEM webhook signs, retries with backoff and
// never holds up a write.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyStore } from '../../src/recording/audit.js'
import { Recording } from '../../src/recording/recorder.js'
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookSignature } from '../../src/recording/webhook.js'
import { migrate } from '../../src/store/migrate.js'
import { openPgliteStore } from '../../src/store/pglite.js'
import type { Store } from '../../src/store/store.js'
import { switchableStore } from './harness.js'
import { facts, recordingConfig } from './helpers.js'

describe('batched writer', { timeout: 120_000 }, () => {
  let inner: Store
  let store: Store & { down: boolean }
  const inserts: number[] = []
  let hold: Promise<void> | null = null

  beforeAll(async () => {
    inner = await openPgliteStore({ dataDir: 'memory://' })
    await migrate(inner)
    const switchable = switchableStore(inner)
    const query = switchable.query.bind(switchable)
    // Counts batch INSERTs (their size) and can hold one open to watch who resolves when.
    switchable.query = async <T>(sql: string, params?: unknown[]): Promise<T[]> => {
      if (sql.startsWith('insert into session_events')) {
        inserts.push((JSON.parse(params?.[0] as string) as unknown[]).length)
        if (hold !== null) await hold
      }
      return await query<T>(sql, params)
    }
    store = switchable
  })
  afterAll(async () => { await inner.close() })

  it('writes 500 concurrent events in a handful of statements, none acknowledged before its commit', async () => {
    const recording = new Recording(store, recordingConfig({ batch: { maxEvents: 200, maxDelayMs: 0, maxQueue: 10_000 } }))
    inserts.length = 0
    let release!: () => void
    hold = new Promise<void>((resolve) => { release = resolve })
    let settled = 0
    const writes = Array.from({ length: 500 }, async () => {
      await recording.record(facts())
      settled++
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    // The first batch's INSERT is held open: nobody may have been told "committed".
    expect(inserts.length).toBe(1)
    expect(settled).toBe(0)
    hold = null
    release()
    await Promise.all(writes)
    expect(settled).toBe(500)
    expect(inserts.reduce((a, b) => a + b, 0)).toBe(500)
    expect(inserts.length).toBeLessThanOrEqual(5)
    expect((await verifyStore(store)).issues).toEqual([])
  })

  it('fails the callers of a failed batch with a retryable error, then continues on a new chain', async () => {
    const recording = new Recording(store, recordingConfig())
    await recording.record(facts())
    const first = recording.writer.chainId
    store.down = true
    const failed = await Promise.allSettled(Array.from({ length: 10 }, async () => await recording.record(facts())))
    store.down = false
    expect(failed.every((r) => r.status === 'rejected' && (r.reason as { code: string, statusCode: number }).code === 'SLUICE_STORE_UNAVAILABLE')).toBe(true)
    expect(recording.writer.failing).toBe(true)
    await recording.record(facts())
    expect(recording.writer.failing).toBe(false)
    expect(recording.writer.chainId).not.toBe(first)
    await expect(recording.ensureWritable()).resolves.toBeUndefined()
    store.down = true
    await expect(recording.ensureWritable()).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE', statusCode: 503 })
    store.down = false
    expect((await verifyStore(store)).issues).toEqual([])
  })

  it('refuses new events beyond the queue bound instead of growing without limit', async () => {
    const recording = new Recording(store, recordingConfig({ batch: { maxEvents: 10, maxDelayMs: 50, maxQueue: 20 } }))
    const results = await Promise.allSettled(Array.from({ length: 30 }, async () => await recording.record(facts())))
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10)
  })
})

describe('checkpoints', { timeout: 60_000 }, () => {
  it('are written every N events and after the interval, signed, and once more on close', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    await migrate(store)
    const { ed25519Pem } = await import('./helpers.js')
    const recording = new Recording(store, recordingConfig({ checkpointKey: ed25519Pem().privatePem, checkpointEveryEvents: 5, checkpointIntervalSeconds: 1 }))
    recording.start()
    const count = async (): Promise<Array<{ seq: number, kind: string, signed: boolean }>> => await store.query(
      "select seq::float8 as seq, kind, signature is not null as signed from checkpoints order by id")
    for (let i = 0; i < 5; i++) await recording.record(facts())
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await count()).toEqual([{ seq: 5, kind: 'periodic', signed: true }])
    await recording.record(facts())
    await new Promise((resolve) => setTimeout(resolve, 1600))
    expect((await count()).map((c) => c.seq)).toEqual([5, 6])
    await recording.record(facts())
    await recording.close()
    expect((await count()).at(-1)).toEqual({ seq: 7, kind: 'close', signed: true })
    expect((await verifyStore(store, recording.key)).issues).toEqual([])
    await store.close()
  })

  it('writes the close checkpoint even where a periodic one already names the head', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    await migrate(store)
    const recording = new Recording(store, recordingConfig())
    for (let i = 0; i < 3; i++) await recording.record(facts())
    await recording.writer.checkpoint('periodic')
    await recording.close()
    await recording.close()
    // Only the close says nothing may follow; without it an appended event would look legitimate.
    expect(await store.query("select seq::float8 as seq, kind from checkpoints order by id")).toEqual([{ seq: 3, kind: 'periodic' }, { seq: 3, kind: 'close' }])
    await store.close()
  })
})

describe('SIEM webhook', { timeout: 60_000 }, () => {
  let server: Server
  let url: string
  const received: Array<{ body: string, signature: string, timestamp: string }> = []
  let failuresLeft = 2
  let stall: Promise<void> | null = null

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => {
        void (async () => {
          if (stall !== null) await stall
          if (failuresLeft > 0) {
            failuresLeft--
            res.writeHead(503).end()
            return
          }
          received.push({ body, signature: String(req.headers[SIGNATURE_HEADER]), timestamp: String(req.headers[TIMESTAMP_HEADER]) })
          res.writeHead(204).end()
        })()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/siem`
  })
  afterAll(async () => { await new Promise((resolve) => server.close(resolve)) })

  it('delivers signed batches, retrying with backoff, without blocking the request path', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    await migrate(store)
    const secret = 'a-webhook-secret-for-tests'
    const recording = new Recording(store, recordingConfig({ webhook: { url, secret, backoffMs: 20, maxBackoffMs: 100, maxAttempts: 5, timeoutMs: 2000 } }))
    let unstall!: () => void
    stall = new Promise<void>((resolve) => { unstall = resolve })
    // The receiver hangs: recording must not wait for it.
    const started = Date.now()
    for (let i = 0; i < 3; i++) await recording.record(facts())
    expect(Date.now() - started).toBeLessThan(1000)
    stall = null
    unstall()
    await recording.writer.checkpoint('periodic')
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && received.flatMap((r) => (JSON.parse(r.body) as { items: unknown[] }).items).length < 4) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const items = received.flatMap((r) => (JSON.parse(r.body) as { items: Array<{ type: string, hash?: string, sqlText?: string }> }).items)
    expect(items.filter((i) => i.type === 'event')).toHaveLength(3)
    // The checkpoint copy carries what verifying it needs: `sluice audit verify --checkpoints` reads it back.
    expect(items.filter((i) => i.type === 'checkpoint')).toEqual([{
      type: 'checkpoint', chain: recording.writer.chainId, seq: 3, hash: expect.stringMatching(/^[0-9a-f]{64}$/), kind: 'periodic',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/), keyId: null, signature: null
    }])
    expect(items[0]).toMatchObject({ type: 'event', hash: expect.stringMatching(/^[0-9a-f]{64}$/), sqlText: expect.any(String) })
    expect(JSON.stringify(items)).not.toContain('resultCapture')
    for (const r of received) expect(r.signature).toBe(webhookSignature(secret, r.timestamp, r.body))
    expect(recording.webhook?.stats.failedAttempts).toBe(2)
    expect(recording.webhook?.stats.dropped).toBe(0)
    await recording.close()
    await store.close()
  })
})

describe('SIEM webhook shutdown', { timeout: 30_000 }, () => {
  it('never holds up close: a receiver that hangs is abandoned after the grace period', async () => {
    const hanging = createServer(() => { /* never answers */ })
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const { WebhookSink } = await import('../../src/recording/webhook.js')
    const sink = new WebhookSink({ url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`, secret: 'x'.repeat(16), timeoutMs: 20_000, maxAttempts: 5, backoffMs: 10, maxBackoffMs: 10, maxQueue: 10, batchSize: 1 })
    sink.push([{ type: 'event', n: 1 }, { type: 'event', n: 2 }, { type: 'event', n: 3 }])
    const started = Date.now()
    await sink.close(300)
    expect(Date.now() - started).toBeLessThan(2000)
    hanging.closeAllConnections()
    await new Promise((resolve) => hanging.close(resolve))
  })
})

describe('a batch the store refuses for its data', { timeout: 60_000 }, () => {
  it('fails only the bad event; the others it shared a batch with are retried alone and committed', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    await migrate(store)
    // The store refuses any statement carrying the poisoned event, as Postgres refuses a row
    // that breaks a constraint: a statement error, not a lost connection.
    const query = store.query.bind(store)
    store.query = async <T>(sql: string, params?: unknown[]): Promise<T[]> => {
      if (sql.startsWith('insert into session_events') && String(params?.[0]).includes('poison')) {
        throw Object.assign(new Error('insert or update on table "session_events" violates foreign key constraint'), { code: '23503' })
      }
      return await query<T>(sql, params)
    }
    const recording = new Recording(store, recordingConfig({ batch: { maxDelayMs: 20 } }))
    const results = await Promise.allSettled([
      recording.record(facts()),
      recording.record(facts({ requestId: 'poison' })),
      recording.record(facts())
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((await verifyStore(store)).issues).toEqual([])
    await store.close()
  })
})
