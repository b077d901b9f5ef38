// The first answer of a result the upstream pages in chunks carries only the connection's
// firstPageRows rows (masked and recorded before it leaves); the rest of the upstream's inline
// rowset becomes pages of their own, re-read from the upstream by query id when a client asks,
// on whichever replica it asks. Through two gateway processes on one Postgres and a loopback
// upstream that inlines 6,000 rows and chunks the rest, every row of every path is checked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pageList } from '../../src/warehouses/snowflake/manifest.js'
import { checkMaskedSdkRow, LARGE_RESULT_POLICY, largeRow, startLargeUpstream, type LargeUpstream } from '../support/large-snowflake-upstream.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'
import { connectSdk, destroySdk, streamSdkRows, type SdkConnection } from '../support/snowflake-node-client.js'
import { runPython } from '../support/snowflake-python.js'

type Json = Record<string, any>

const ROWS = 40_000
const INLINE = 6_000
const CHUNK = 10_000
const PARTITION = 2_500
const FIRST = 1_000

describe('pageList: unstored inline rows as pages of their own', () => {
  const first = Array.from({ length: FIRST }, (_, i) => [String(i), 'x'])
  const chunks = [{ rows: CHUNK, bytes: 100 }, { rows: CHUNK, bytes: 100 }]

  it('lists stored slices, then the unstored inline rows by offset, then the chunks', () => {
    const { pages, total } = pageList(first, chunks, PARTITION, undefined, INLINE - FIRST)
    expect(pages.map((p) => [p.rows, p.offset ?? p.inline ?? p.chunk])).toEqual([[1000, 0], [2500, 1000], [2500, 3500], [CHUNK, 0], [CHUNK, 1]])
    expect(pages.filter((p) => p.inline !== undefined).every((p) => p.offset === undefined && p.chunk === undefined)).toBe(true)
    expect(total).toBe(INLINE + 2 * CHUNK)
  })

  it('cuts at the row cap wherever it falls: inside the unstored rows, past them, or in the stored page', () => {
    for (const cap of [1, 999, 1000, 1001, 3499, 3500, 3501, 5999, 6000, 6001, 26_000, 30_000]) {
      const { pages, total } = pageList(first.slice(0, Math.min(FIRST, cap)), chunks, PARTITION, cap, Math.max(0, Math.min(INLINE, cap) - FIRST))
      expect(total, `cap ${cap}`).toBe(Math.min(cap, INLINE + 2 * CHUNK))
      expect(pages.every((p) => p.rows > 0), `cap ${cap}`).toBe(true)
    }
  })
})

describe('first answers of chunked results, through two replicas', { timeout: 600_000 }, () => {
  let upstream: LargeUpstream
  let idp: TestIdp
  let cluster: ReplicaCluster
  let policies: string
  let headers: Record<string, string>
  let token: string

  const call = async (base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
    const res = await request(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), headersTimeout: 120_000, bodyTimeout: 120_000 })
    const text = await res.body.text()
    return { status: res.statusCode, body: text === '' ? {} : JSON.parse(text) as Json }
  }
  const replica = (i: number): string => cluster.replicas[i]!.url
  const checkRows = (rows: unknown[][], from: number): void => {
    rows.forEach((row, k) => {
      const want = largeRow(from + k)
      expect(row, `row ${from + k}`).toEqual([want[0], '****', want[2]])
    })
  }

  beforeAll(async () => {
    upstream = await startLargeUpstream({ rows: ROWS, inlineRows: INLINE, chunkRows: CHUNK })
    idp = await startTestIdp()
    policies = await mkdtemp(join(tmpdir(), 'sluice-first-page-'))
    await writeFile(join(policies, 'policy.yaml'), LARGE_RESULT_POLICY)
    cluster = await startReplicas({
      count: 2,
      policiesDir: policies,
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
        connections: {
          large: { kind: 'snowflake', url: upstream.url, default: true, secondaryRoles: 'keep', account: 'acme', user: 'svc', password: 'pw', partitionRows: PARTITION, firstPageRows: FIRST }
        }
      }
    })
    token = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  }, 300_000)

  afterAll(async () => {
    await cluster?.close()
    await idp?.close()
    await upstream?.close()
    if (policies !== undefined) await rm(policies, { recursive: true, force: true })
  })

  it('SQL API: partition 0 is the first 1,000 rows; the other inline rows are partitions the other replica re-reads', async () => {
    const first = await call(replica(0), 'POST', '/api/v2/statements', { statement: upstream.sql })
    expect(first.status).toBe(200)
    const meta = first.body.resultSetMetaData
    expect(meta.numRows).toBe(ROWS)
    expect(meta.partitionInfo.map((p: { rowCount: number }) => p.rowCount)).toEqual([FIRST, PARTITION, PARTITION, CHUNK, CHUNK, CHUNK, ROWS - INLINE - 3 * CHUNK])
    expect(first.body.data).toHaveLength(FIRST)
    checkRows(first.body.data, 1)
    const url = String(first.body.statementStatusUrl)
    let next = FIRST + 1
    for (let p = 1; p < meta.partitionInfo.length; p++) {
      // Alternating replicas: the one that did not run the statement re-reads the upstream's answer.
      const page = await call(replica(p % 2), 'GET', `${url}?partition=${p}`)
      expect(page.status, `partition ${p}`).toBe(200)
      expect(page.body.data).toHaveLength(meta.partitionInfo[p].rowCount)
      checkRows(page.body.data, next)
      next += page.body.data.length
    }
    expect(next - 1).toBe(ROWS)
    // The same statement again by its handle: partition 0 from the store, as first answered.
    const again = await call(replica(1), 'GET', url)
    expect(again.body.data).toEqual(first.body.data)
  })

  it('stores only the first page with the handle, not the whole inline rowset', async () => {
    const first = await call(replica(1), 'POST', '/api/v2/statements', { statement: upstream.sql })
    const sql = postgres(cluster.storeUrl!, { max: 1, onnotice: () => {} })
    try {
      const [row] = await sql<Array<{ rows: number }>>`select jsonb_array_length(first_page) as rows from statement_handles where id = ${String(first.body.statementHandle)}::uuid`
      expect(row?.rows).toBe(FIRST)
    } finally {
      await sql.end({ timeout: 5 })
    }
  })

  it('snowflake-sdk reads every row: the inline rowset it gets is the first page, the rest are chunks', async () => {
    const conn: SdkConnection = await connectSdk({ accessUrl: replica(0), token })
    let next = 1
    try {
      await streamSdkRows(conn, upstream.sql, (row) => { checkMaskedSdkRow(next++, row) })
    } finally {
      await destroySdk(conn)
    }
    expect(next - 1).toBe(ROWS)
  })

  // The unstored inline rows reach the Python connector as chunks like any other, in both formats.
  it.each(['arrow', 'json'] as const)('the Python connector reads every row in %s, checked in Python', async (format) => {
    const pad = largeRow(1)[2].slice('note 1: '.length)
    const out = await runPython('test/snowflake/python/replica_chunks_client.py',
      { port: Number(new URL(replica(1)).port), token, account: 'large', sql: upstream.sql, format, pad }, 180_000) as Record<string, unknown>
    expect(out).toMatchObject({ format, rows: ROWS, mismatches: 0 })
  })
})
