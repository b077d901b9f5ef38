// The benchmark's load generator and statistics: closed-loop clients (each sends its next
// request when the previous answer has been read in full), over keep-alive connections, with
// a bounded request count per batch. Latency is measured from sending to the last byte read.
import { Pool } from 'undici'

export interface Call {
  method: 'GET' | 'POST'
  path: string
  headers: Record<string, string>
  body?: string
}

export interface Batch {
  /** Per-request latencies, ms. */
  latencies: number[]
  wallMs: number
  /** Requests answered with an unexpected status (their latency is not counted). */
  errors: number
  firstError?: string
}

/** One pool per target; `connections` caps the concurrency it can carry. */
export function poolFor (url: string, connections = 16): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 120_000, bodyTimeout: 120_000 })
}

/** Sends one call and reads its whole answer; resolves with its status, body and latency. */
export async function send (pool: Pool, call: Call): Promise<{ status: number, body: string, ms: number, headers: Record<string, string | string[] | undefined> }> {
  const started = performance.now()
  const res = await pool.request({ method: call.method, path: call.path, headers: call.headers, body: call.body })
  const body = await res.body.text()
  return { status: res.statusCode, body, ms: performance.now() - started, headers: res.headers }
}

/** `total` requests from `concurrency` clients; `next()` builds each request (fresh ids). */
export async function runBatch (pool: Pool, next: () => Call, total: number, concurrency: number, ok = (status: number) => status === 200): Promise<Batch> {
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  let issued = 0
  const started = performance.now()
  const client = async (): Promise<void> => {
    while (issued < total) {
      issued++
      try {
        const res = await send(pool, next())
        if (ok(res.status)) latencies.push(res.ms)
        else {
          errors++
          firstError ??= `HTTP ${res.status}: ${res.body.slice(0, 300)}`
        }
      } catch (err) {
        errors++
        firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, client))
  return { latencies, wallMs: performance.now() - started, errors, ...(firstError === undefined ? {} : { firstError }) }
}

export function quantile (values: number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

/** Round trips a background client completes while `during` runs; their latencies, ms. */
export async function meanwhile (pool: Pool, next: () => Call, during: Promise<unknown>): Promise<number[]> {
  let done = false
  const finished = during.finally(() => { done = true })
  const latencies: number[] = []
  while (!done) {
    const res = await send(pool, next()).catch(() => undefined)
    if (res !== undefined && res.status === 200) latencies.push(res.ms)
  }
  await finished
  return latencies
}
