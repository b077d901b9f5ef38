// A result of 1,000,000 rows (about 130 MB of text) streams through the PostgreSQL listener with
// bounded gateway memory: Sluice fetches the upstream a batch at a time and writes with socket
// backpressure, so the heap does not grow with the result. Client and gateway share this process;
// the client (a postgres.js cursor) holds one batch too.
import v8 from 'node:v8'
import vm from 'node:vm'
import postgres from 'postgres'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startWireGateway, type WireGateway } from './harness.js'

const OPEN_POLICY = `
version: 1
rules:
  - { id: agents-read, effect: allow, match: { roles: [agent], kinds: [select] } }
masking: []
`

// Live heap is measured after a full collection, so garbage awaiting collection is not counted.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

let w: WireGateway
beforeAll(async () => { w = await startWireGateway(OPEN_POLICY) }, 120_000)
afterAll(async () => { await w?.close() })

it('streams 1,000,000 rows with bounded memory', async () => {
  const sql = postgres({ host: '127.0.0.1', port: w.port, database: 'app-db', username: 'agent', password: await w.token(), max: 1, onnotice: () => {} })
  try {
    gc()
    const before = process.memoryUsage().heapUsed
    let peak = before
    let rows = 0
    let bytes = 0
    const started = Date.now()
    const query = sql`select g, repeat(md5(g::text), 4) as payload from generate_series(1, 1000000) g`
    for await (const batch of query.cursor(1000)) {
      rows += batch.length
      for (const r of batch) bytes += (r.payload as string).length
      if (rows % 100_000 === 0) {
        gc()
        peak = Math.max(peak, process.memoryUsage().heapUsed)
      }
    }
    const seconds = (Date.now() - started) / 1000
    expect(rows).toBe(1_000_000)
    // Value detectors may rewrite a few values that look like secrets: the size is about 128 MB.
    expect(bytes).toBeGreaterThan(127_000_000)
    const growthMb = (peak - before) / 1024 / 1024
    // The same rows straight from the upstream, for the log: what the gateway costs on top.
    const directStarted = Date.now()
    let directRows = 0
    for await (const batch of w.direct`select g, repeat(md5(g::text), 4) as payload from generate_series(1, 1000000) g`.cursor(1000)) directRows += batch.length
    expect(directRows).toBe(1_000_000)
    console.log(`direct: ${((Date.now() - directStarted) / 1000).toFixed(1)} s`)
    console.log(`1,000,000 rows (${(bytes / 1e6).toFixed(0)} MB payload) in ${seconds.toFixed(1)} s; live heap growth at peak ${growthMb.toFixed(0)} MB`)
    // Holding the result would take well over 128 MB of strings alone.
    expect(growthMb).toBeLessThan(48)
  } finally {
    await sql.end({ timeout: 5 })
  }
}, 600_000)
