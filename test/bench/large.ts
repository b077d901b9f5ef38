// Large results through each result path, direct and through Sluice: the whole result fetched
// the way its client fetches it (first answer, then every partition / chunk / page in order),
// each page parsed and its rows counted. Reported: MB/s of what the client received, the time
// to the first byte of the first answer, and the gateway's peak RSS while it served the result
// (VmHWM, reset before each run through /proc/<pid>/clear_refs).
//
// Extension point: LARGE_RESULT_PATHS. A path is a name and a `fetch` that runs one whole
// result against a side and returns what it received; a new result path (Python connector
// Arrow, PostgreSQL wire, tabledata.list) is one more entry, measured by the same loop.
import { writeFileSync } from 'node:fs'
import type { Pool } from 'undici'
import type { Call } from './load.js'
import { callFor, selectRows, type Protocol, type Side } from './sides.js'
import { BENCH_PROJECT } from './upstream.js'

export interface Fetched {
  rows: number
  bytes: number
  /** ms from sending the first request to the first body byte. */
  ttfbMs: number
  /** Pages after the first answer. */
  pages: number
  /** True when a raw generated email reached the client (masking missed). */
  unmasked: boolean
}

export interface LargeResultPath {
  name: string
  /** The whole result, or with `firstOnly` its first answer alone (a first-byte sample). */
  fetch: (pool: Pool, side: Side, bearer: string, rows: number, firstOnly?: boolean) => Promise<Fetched>
}

const RAW_EMAIL = /user\d+@example\.com/
const MAX_PAGES = 10_000

interface Page { status: number, text: string, firstByteAt: number }

async function get (pool: Pool, call: Call): Promise<Page> {
  const res = await pool.request({ method: call.method, path: call.path, headers: call.headers, body: call.body })
  let firstByteAt = 0
  const parts: Buffer[] = []
  for await (const chunk of res.body) {
    if (firstByteAt === 0) firstByteAt = performance.now()
    parts.push(chunk as Buffer)
  }
  const text = Buffer.concat(parts).toString('utf8')
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} for ${call.method} ${call.path}: ${text.slice(0, 300)}`)
  return { status: res.statusCode, text, firstByteAt }
}

/**
 * Runs `first`, then `whole(first answer, index, latest page)` until it returns undefined (not
 * at all with `firstOnly`); counts bytes and rows. `parsePage` reads a later page (connector
 * chunks are rows without brackets).
 */
async function walk (pool: Pool, first: Call, rowsIn: (json: any) => number, whole: (first: any, index: number, latest: any) => Call | undefined,
  parsePage: (text: string) => any = (text) => JSON.parse(text), firstOnly = false): Promise<Fetched> {
  const next = firstOnly ? () => undefined : whole
  const started = performance.now()
  const head = await get(pool, first)
  const answer: any = JSON.parse(head.text)
  let rows = rowsIn(answer)
  let bytes = Buffer.byteLength(head.text)
  let unmasked = RAW_EMAIL.test(head.text)
  let pages = 0
  let latest: any = answer
  for (let call = next(answer, 0, latest); call !== undefined; call = next(answer, pages, latest)) {
    // A path that never stops paging is a bug to report, not a run to wait for.
    if (pages >= MAX_PAGES) throw new Error(`more than ${MAX_PAGES} pages`)
    const page = await get(pool, call)
    pages++
    bytes += Buffer.byteLength(page.text)
    unmasked ||= RAW_EMAIL.test(page.text)
    latest = parsePage(page.text)
    rows += rowsIn(latest)
  }
  return { rows, bytes, ttfbMs: head.firstByteAt - started, pages, unmasked }
}

const sqlApi: LargeResultPath = {
  name: 'SQL API partitions',
  async fetch (pool, side, bearer, n, firstOnly) {
    const headers = { authorization: `Bearer ${bearer}`, accept: 'application/json' }
    let handle = ''
    let partitions = 0
    return await walk(pool, callFor(side, 'sqlapi', selectRows('sqlapi', n), bearer), (json) => (json.data as unknown[]).length, (json, index) => {
      if (index === 0) {
        handle = String(json.statementHandle)
        partitions = (json.resultSetMetaData.partitionInfo as unknown[]).length
      }
      const partition = index + 1
      return partition < partitions ? { method: 'GET', path: `/api/v2/statements/${handle}?partition=${partition}`, headers } : undefined
    }, undefined, firstOnly)
  }
}

const connector: LargeResultPath = {
  name: 'connector chunks',
  async fetch (pool, side, bearer, n, firstOnly) {
    let chunks: Array<{ url: string }> = []
    let headers: Record<string, string> = {}
    const first = callFor(side, 'connector', selectRows('connector', n), bearer)
    return await walk(pool, first, (json) => Array.isArray(json) ? json.length : (json.data.rowset as unknown[]).length, (json, index) => {
      if (index === 0) {
        chunks = json.data.chunks ?? []
        headers = json.data.chunkHeaders ?? (json.data.qrmk === undefined ? {} : {
          'x-amz-server-side-encryption-customer-algorithm': 'AES256',
          'x-amz-server-side-encryption-customer-key': json.data.qrmk
        })
      }
      const chunk = chunks[index]
      if (chunk === undefined) return undefined
      const url = new URL(chunk.url)
      return { method: 'GET', path: `${url.pathname}${url.search}`, headers }
    }, (text) => JSON.parse(`[${text}]`), firstOnly)
  }
}

const bigQuery: LargeResultPath = {
  name: 'BigQuery pages',
  async fetch (pool, side, bearer, n, firstOnly) {
    const headers = { authorization: `Bearer ${bearer}` }
    return await walk(pool, callFor(side, 'bigquery', selectRows('bigquery', n), bearer), (json) => (json.rows as unknown[] | undefined)?.length ?? 0, (first, _index, latest) => {
      if (latest.pageToken === undefined) return undefined
      const jobId = String(first.jobReference.jobId)
      return { method: 'GET', path: `/bigquery/v2/projects/${BENCH_PROJECT}/queries/${encodeURIComponent(jobId)}?pageToken=${encodeURIComponent(String(latest.pageToken))}`, headers }
    }, undefined, firstOnly)
  }
}

export const LARGE_RESULT_PATHS: Record<Protocol, LargeResultPath> = { sqlapi: sqlApi, connector, bigquery: bigQuery }

/** Resets the peak-RSS mark of `pid` (Linux ≥ 4.0); false where that is not allowed. */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}
