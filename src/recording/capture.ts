// Result capture for replay: the rows exactly as released to the client (after masking — the
// collector sits behind the masker, never before it), up to a byte budget, then gzip. The
// neutral result is captured rather than the wire body: the body of a login or a session
// call carries tokens, and a wire format is no use to an auditor replaying across front ends.
import { promisify } from 'node:util'
import { gunzip, gzip } from 'node:zlib'
import type { ConnectionConfig } from '../config/types.js'

export interface CapturedColumn { name: string, type: string }

export interface CapturedResult {
  columns: CapturedColumn[]
  rows: unknown[][]
  /** Rows released in total, captured or not. */
  rowsReleased: number
  truncated: boolean
}

/** Rows sized together by one JSON.stringify (per-row calls dominate the cost otherwise). */
const BATCH_ROWS = 256

/**
 * Collects pages as they are released. The budget counts the JSON of each row, so the stored
 * capture (gzip of that JSON) is never larger than the budget and usually far smaller.
 */
export class CaptureCollector {
  readonly columns: CapturedColumn[]
  readonly rows: unknown[][] = []
  rowsReleased = 0
  truncated = false
  #budget: number
  #used = 2

  constructor (columns: CapturedColumn[], budgetBytes: number) {
    this.columns = columns
    this.#budget = budgetBytes
    this.#used += JSON.stringify(columns).length
    if (budgetBytes <= 0) this.truncated = true
  }

  add (rows: unknown[][]): void {
    this.rowsReleased += rows.length
    if (this.truncated) return
    for (let start = 0; start < rows.length; start += BATCH_ROWS) {
      const batch = rows.length <= BATCH_ROWS ? rows : rows.slice(start, start + BATCH_ROWS)
      // A batch of plain rows sized by one JSON text: its brackets and commas are one byte
      // each, so its size less one is exactly the sum of (row JSON + 1) taken row by row.
      if (batch.every((row) => Array.isArray(row) && plainValues(row))) {
        const size = Buffer.byteLength(JSON.stringify(batch)) - 1
        if (this.#used + size <= this.#budget) {
          this.#used += size
          for (const row of batch) this.rows.push(row)
          continue
        }
      }
      // The batch that crosses the budget (or holds other values) goes row by row.
      for (const row of batch) {
        const size = Buffer.byteLength(rowJson(row)) + 1
        if (this.#used + size > this.#budget) {
          this.truncated = true
          return
        }
        this.#used += size
        this.rows.push(row)
      }
    }
  }

  result (): CapturedResult {
    return { columns: this.columns, rows: this.rows, rowsReleased: this.rowsReleased, truncated: this.truncated }
  }
}

/**
 * The capture budget of each connection: recording.resultCaptureBytes unless the connection
 * says otherwise; null when the connection's results are not captured at all (its events are
 * still written, with no capture). Unknown connections get the top-level budget.
 */
export function captureBudgets (resultCaptureBytes: number, connections: Record<string, ConnectionConfig> = {}): (connection: string) => number | null {
  const budgets = new Map<string, number | null>()
  for (const [name, connection] of Object.entries(connections)) {
    const settings = connection.recording
    if (settings === undefined) continue
    budgets.set(name, settings.captureResults === false ? null : settings.resultCaptureBytes ?? resultCaptureBytes)
  }
  return (connection) => budgets.has(connection) ? budgets.get(connection) as number | null : resultCaptureBytes
}

/**
 * True when JSON.stringify needs no replacer for these values: the replacer only changes
 * bigints and bytes, and a replacer makes V8 leave its fast path (2-3x the cost per row, on up
 * to resultCaptureBytes of rows per round trip). Objects (records, Dates, Buffers) take the
 * replacer path, as their contents may hold either.
 */
function plainValues (row: readonly unknown[]): boolean {
  for (let i = 0; i < row.length; i++) {
    const v = row[i]
    if (v === null || v === undefined) continue
    const t = typeof v
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return false
  }
  return true
}

/** The row's JSON exactly as `JSON.stringify(row, replacer)` writes it. */
function rowJson (row: readonly unknown[]): string {
  return Array.isArray(row) && plainValues(row) ? JSON.stringify(row) : JSON.stringify(row, replacer)
}

function replacer (_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return value
}

// Below this a capture is stored as its JSON. Setting up a deflate stream (its state, the trip
// to the thread pool and back) cost more CPU than the rest of the event: 4.4% of the gateway's
// CPU at c=16 for 10-row results. Postgres compresses a value over ~2 KB in its own storage
// (TOAST) anyway. The first byte tells them apart: gzip starts with 0x1f, JSON with '{'.
const GZIP_FROM_BYTES = 8192

// On libuv's thread pool, never on the event loop: a capture is up to resultCaptureBytes (1 MiB
// by default), tens of milliseconds of deflate that every other request would wait behind.
const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

/** Nothing to capture when the budget is 0 or the round trip released no result. */
export async function compressCapture (capture: CapturedResult | undefined): Promise<{ bytes: Buffer, truncated: boolean } | undefined> {
  if (capture === undefined) return undefined
  // Checked now, not when the rows were added: front ends encode released rows in place.
  const json = JSON.stringify(capture, capture.rows.every((r) => Array.isArray(r) && plainValues(r)) ? undefined : replacer)
  if (json.length < GZIP_FROM_BYTES) return { bytes: Buffer.from(json), truncated: capture.truncated }
  // A window no larger than the input: most captures are a few KB, and zlib's default 32 KB
  // window (and 256 KB of state) would be allocated for each of them.
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(json.length + 1))))
  const bytes = await gzipAsync(json, { level: 1, windowBits, memLevel: Math.min(8, Math.max(1, windowBits - 7)) })
  return { bytes, truncated: capture.truncated }
}

export async function decompressCapture (bytes: Uint8Array | null | undefined): Promise<CapturedResult | null> {
  if (bytes === null || bytes === undefined || bytes.length === 0) return null
  const json = bytes[0] === 0x1f ? await gunzipAsync(bytes) : Buffer.from(bytes)
  return JSON.parse(json.toString('utf8')) as CapturedResult
}
