// Connector result chunks through two real gateway processes on one Postgres behind the
// round-robin proxy (test/support/replicas.ts), so a driver's chunk downloads land on both
// replicas, from loopback upstreams that generate their chunks lazily
// (test/support/large-snowflake-upstream.ts):
// - snowflake-connector-python (5.x, and 3.x where its venv is set up) reads a multi-chunk result
//   in both formats it takes, Arrow (its default) and JSON, chunks served by both replicas, every
//   value checked masked;
// - the Python connector reads a 1,000,000-row result in Arrow, every value checked in Python
//   (this process never holds the rows), each replica's peak RSS growth held under the result;
// - snowflake-sdk reads a multi-chunk result and, after its first chunks, the replica that served
//   the latest one is killed (SIGKILL, with whatever prefetch it was answering): the remaining
//   chunks come through the other replica, every row correct and masked.
// Speed is measured by the bench, not here.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLargeResultReplicas, type LargeResultReplicas } from '../support/large-result-replicas.js'
import { checkMaskedSdkRow, largeRow, startLargeUpstream, type LargeUpstream } from '../support/large-snowflake-upstream.js'
import type { ReplicaCluster } from '../support/replicas.js'
import { connectSdk, destroySdk, streamSdkRows, type SdkConnection } from '../support/snowflake-node-client.js'
import { PYTHON, PYTHON_CONNECTOR3, pythonAvailable, runPython } from '../support/snowflake-python.js'

const MB = 1024 * 1024
/** The upstream's inline rowset (its default): the gateway serves it as the first page. */
const INLINE_ROWS = 1000
// Past 32,767 rows: IDs outgrow 16 bits part-way, so a result whose chunks disagree on the ID's
// Arrow width would show here too.
const CHUNKED = { rows: 40_000, chunkRows: 1000 }
const LARGE = { rows: 1_000_000, chunkRows: 10_000 }
/** Client chunks of a result: one per upstream chunk (the inline rows fit one partition). */
const chunkCount = (u: { rows: number, chunkRows: number }): number => Math.ceil((u.rows - INLINE_ROWS) / u.chunkRows)
/** What every NOTE after "note <i>: " carries; the Python side rebuilds rows from it. */
const NOTE_PAD = largeRow(1)[2].slice('note 1: '.length)
const CHUNK_PATH = /^\/sluice\/snowflake\/chunks\/[^/]+\/(\d+)(\?format=arrow)?$/

interface PythonSummary {
  format: string
  rowcount: number
  rows: number
  mismatches: number
  firstMismatch?: unknown
  first: unknown[]
  last: unknown[]
  seconds: number
}

describe('connector chunks through two replicas behind a round-robin proxy', { timeout: 900_000 }, () => {
  let chunked: LargeUpstream
  let large: LargeUpstream
  let replicas: LargeResultReplicas
  let cluster: ReplicaCluster
  let token: string

  /** Chunk downloads the proxy answered from log entry `from` (to `to`): chunk index, format, replica. */
  const chunkDownloads = (from: number, to?: number): Array<{ chunk: number, arrow: boolean, replica: number, status: number }> =>
    cluster.proxy.log.slice(from, to).flatMap((e) => {
      const m = CHUNK_PATH.exec(e.path)
      return m === null ? [] : [{ chunk: Number(m[1]), arrow: m[2] !== undefined, replica: e.replica, status: e.status }]
    })
  /** The distinct chunk indexes downloaded, in order, and all a result has. */
  const chunksOf = (downloads: Array<{ chunk: number }>): number[] => [...new Set(downloads.map((d) => d.chunk))].sort((a, b) => a - b)
  const allChunks = (u: { rows: number, chunkRows: number }): number[] => Array.from({ length: chunkCount(u) }, (_, n) => n)
  /** Rows as the Python connector returns them (NUMBER(38,0) as int). */
  const pythonRow = (i: number): unknown[] => { const [id, , note] = largeRow(i); return [Number(id), '****', note] }

  const readWithPython = async (account: string, sql: string, format: 'arrow' | 'json', timeoutMs: number, python = PYTHON): Promise<PythonSummary> =>
    await runPython('test/snowflake/python/replica_chunks_client.py',
      { port: cluster.proxy.port, token, account, sql, format, pad: NOTE_PAD }, timeoutMs, python) as unknown as PythonSummary

  beforeAll(async () => {
    chunked = await startLargeUpstream(CHUNKED)
    large = await startLargeUpstream(LARGE)
    replicas = await startLargeResultReplicas({
      chunked: { kind: 'snowflake', url: chunked.url, default: true, secondaryRoles: 'keep', account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 60 },
      large: { kind: 'snowflake', url: large.url, secondaryRoles: 'keep', account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 60 }
    })
    cluster = replicas.cluster
    token = replicas.token
  }, 600_000)

  afterAll(async () => {
    await replicas?.close()
    await large?.close()
    await chunked?.close()
  })

  describe.skipIf(!pythonAvailable())('snowflake-connector-python', () => {
    // 3.x reads each chunk with its own schema, 5.x all of them with the first piece's.
    const generations: Array<[string, string]> = [['5.x', PYTHON], ...(existsSync(PYTHON_CONNECTOR3) ? [['3.x', PYTHON_CONNECTOR3] as [string, string]] : [])]
    for (const [generation, python] of generations) {
      for (const format of ['arrow', 'json'] as const) {
        it(`${generation} reads a ${chunkCount(CHUNKED)}-chunk result in ${format === 'arrow' ? 'Arrow' : 'JSON'}, chunks from both replicas, every value masked`, async () => {
          const from = cluster.proxy.log.length
          const out = await readWithPython('chunked', chunked.sql, format, 180_000, python)
          expect(out).toMatchObject({ format, rowcount: CHUNKED.rows, rows: CHUNKED.rows, mismatches: 0 })
          expect(out.first).toEqual(pythonRow(1))
          expect(out.last).toEqual(pythonRow(CHUNKED.rows))
          const downloads = chunkDownloads(from)
          // Every chunk downloaded, in the format the connector was served, all answered.
          expect(chunksOf(downloads)).toEqual(allChunks(CHUNKED))
          expect(downloads.every((d) => d.arrow === (format === 'arrow') && d.status === 200)).toBe(true)
          expect(new Set(downloads.map((d) => d.replica))).toEqual(new Set([0, 1]))
        })
      }
    }

    it('5.x reads 1,000,000 rows in Arrow, every value checked, each replica\'s peak RSS growth bounded under the result\'s size', async () => {
      // Measured as replicas-snowflake.test.ts does for SQL API partitions and sdk chunks: the
      // whole growth under the result's size, the last nine tenths under half of it (a replica
      // that held the result, or a chunk list encoded whole, grows by several times it or dies
      // under its heap cap). "Early" is sampled once a tenth of the chunks were answered.
      const from = cluster.proxy.log.length
      const base = cluster.replicas.map((r) => r.rssBytes())
      let early: number[] | undefined
      const sampler = setInterval(() => {
        if (early === undefined && chunkDownloads(from).length >= chunkCount(LARGE) / 10) early = cluster.replicas.map((r) => r.peakRssBytes())
      }, 100)
      let out: PythonSummary
      try {
        out = await readWithPython('large', large.sql, 'arrow', 600_000)
      } finally {
        clearInterval(sampler)
      }
      expect(out).toMatchObject({ format: 'arrow', rowcount: LARGE.rows, rows: LARGE.rows, mismatches: 0 })
      expect(out.first).toEqual(pythonRow(1))
      expect(out.last).toEqual(pythonRow(LARGE.rows))
      const downloads = chunkDownloads(from)
      expect(chunksOf(downloads)).toEqual(allChunks(LARGE))
      expect(downloads.every((d) => d.arrow && d.status === 200)).toBe(true)
      expect(new Set(downloads.map((d) => d.replica))).toEqual(new Set([0, 1]))

      const grew = cluster.replicas.map((r, i) => r.peakRssBytes() - (base[i] ?? 0))
      const late = cluster.replicas.map((r, i) => r.peakRssBytes() - (early?.[i] ?? 0))
      const mb = (n: number): string => (n / MB).toFixed(0)
      console.log(`1M rows via the Python connector (Arrow): read in ${out.seconds} s, result ${mb(large.resultBytes)} MB as JSON, peak RSS growth per replica ${grew.map(mb).join(' / ')} MB, over the last nine tenths ${late.map(mb).join(' / ')} MB`)
      expect(early).toBeDefined()
      for (const g of late) expect(g).toBeLessThan(large.resultBytes / 2)
      for (const g of grew) expect(g).toBeLessThan(large.resultBytes)
    })
  })

  it('snowflake-sdk: the replica serving its chunks killed after the first ones, the rest come through the other', async () => {
    const conn: SdkConnection = await connectSdk({ accessUrl: cluster.url, account: 'chunked', token })
    const from = cluster.proxy.log.length
    let victim: ReplicaCluster['replicas'][number] | undefined
    let killedAt = 0
    let next = 1
    try {
      await streamSdkRows(conn, chunked.sql, (row, rows) => {
        checkMaskedSdkRow(next++, row)
        // Half-way through the second chunk: the first two are in, the sdk is prefetching the
        // next ones. The replica that answered the latest chunk download dies with whatever it
        // is sending.
        if (victim === undefined && next - 1 === INLINE_ROWS + CHUNKED.chunkRows * 1.5) {
          const latest = chunkDownloads(from).at(-1)
          if (latest === undefined) throw new Error('no chunk downloaded before the kill')
          victim = cluster.replicas[latest.replica]!
          rows.pause()
          victim.kill().then(() => { killedAt = cluster.proxy.log.length; rows.resume() }, (err: Error) => { rows.destroy(err) })
        }
      })
    } finally {
      await destroySdk(conn)
      if (victim !== undefined && !victim.running) await victim.restart()
    }
    expect(next - 1).toBe(CHUNKED.rows)
    expect(victim).toBeDefined()
    const before = chunkDownloads(from, killedAt)
    const after = chunkDownloads(killedAt)
    const list = (ds: typeof before): string => ds.map((d) => `${d.chunk}@${d.replica}`).join(' ')
    console.log(`snowflake-sdk failover: replica ${victim!.index} killed; chunk@replica answered before: ${list(before)}; after: ${list(after)}`)
    expect(before.some((d) => d.replica === victim!.index)).toBe(true)
    // Everything after the kill, the chunks still to come among it, through the survivor.
    expect(after.length).toBeGreaterThan(0)
    expect(after.every((d) => d.replica !== victim!.index && d.status === 200)).toBe(true)
    const answeredBefore = new Set(before.filter((d) => d.status === 200).map((d) => d.chunk))
    const answeredAfter = new Set(after.map((d) => d.chunk))
    expect(answeredAfter.has(chunkCount(CHUNKED) - 1)).toBe(true)
    for (let n = 0; n < chunkCount(CHUNKED); n++) expect(answeredBefore.has(n) || answeredAfter.has(n)).toBe(true)
  })
})
