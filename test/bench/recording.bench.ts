// Session recording under the record-then-release rule, into the machine's PostgreSQL
// (a throwaway database, dropped afterwards):
//  1. sustained events/s: C concurrent round trips, each waiting for its own event to commit
//     before starting the next (what a front end does), events of realistic size (SQL,
//     analysis, masking, a three-row result capture), sessions continuing; group commit batches
//     them. CPU per event (this process, and the database's server processes via /proc) is
//     reported too: the machine is shared, and CPU cost does not depend on the neighbours;
//  2. latency recording adds per round trip: the same pipeline route over HTTP with recording
//     (admission probe + event committed before the response) and without (a baseline route:
//     same handler and stages minus the record stage, not a front-end route), requests
//     interleaved so noise hits both alike. What recording adds is mostly one WAL flush.
// Aim: ≥ 5,000 events/s. Bounded: each phase stops at its count or its time limit.
//
// Machine: 2 cores (shared with other work; compare the side-by-side numbers). Node 20.20.2.
// Date: 2026-11-21.
// Run: npm run bench -- recording
// Run alone: npx tsx test/bench/recording.bench.ts   (TEST_DATABASE_URL picks the server)
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { Agent, request } from 'undici'
import type { Principal } from '../../src/identity/principal.js'
import { Pipeline, type Statement } from '../../src/pipeline.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { refuseApprovals } from '../../src/pipeline/stages.js'
import { CaptureCollector } from '../../src/recording/capture.js'
import { nowMicros } from '../../src/recording/chain.js'
import { Recording } from '../../src/recording/recorder.js'
import { migrate } from '../../src/store/migrate.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { recordingConfig } from '../recording/helpers.js'
import { decideForTests, maskEmail, startHarness } from '../recording/harness.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { createThrowawayDatabase } from '../support/stores.js'
import type { BenchResult } from './result.js'

const THROUGHPUT_CONCURRENCY = 256
const THROUGHPUT_EVENTS = 60_000
const THROUGHPUT_SECONDS = 8
const LATENCY_CONCURRENCY = 8
const LATENCY_REQUESTS = 2_000
const LATENCY_SECONDS = 25
/** recording.batch.lanes (default 2); BENCH_LANES=n to compare. */
const LANES = Number(process.env.BENCH_LANES ?? 2)

const principal: Principal = {
  subject: 'bench-user', issuer: 'https://idp.bench', type: 'human', groups: ['analysts'], roles: ['agent'],
  clientId: 'cursor', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }], expiresAt: new Date('2030-01-01T00:00:00Z')
}

const SQL = `SELECT o.id, o.customer_id, c.email, o.amount, o.created_at FROM analytics.public.orders o
JOIN crm.customers c ON c.id = o.customer_id WHERE o.created_at >= '2026-01-01' AND o.status NOT IN ('cancelled', 'test')
ORDER BY o.created_at DESC LIMIT 100`

/**
 * CPU time (ms) of this database's server processes, read from /proc: the machine is shared,
 * so wall-clock throughput depends on what else runs; CPU per event does not, much.
 * Undefined where /proc or the server is not local.
 */
async function backendCpuMs (store: { query: <T>(sql: string) => Promise<T[]> }): Promise<number | undefined> {
  try {
    const pids = await store.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()')
    let total = 0
    for (const { pid } of pids) {
      const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')
      total += (Number(fields[11]) + Number(fields[12])) * 10
    }
    return total
  } catch {
    return undefined
  }
}

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

export async function recordingThroughput (url: string): Promise<string[]> {
  const store = openPostgresStore({ url, poolSize: 4 })
  try {
    await migrate(store)
    const recording = new Recording(store, recordingConfig({ batch: { lanes: LANES, maxEvents: 1000, maxDelayMs: 0, maxQueue: 100_000 } }))
    let written = 0
    let n = 0
    let limit = 0
    let deadline = 0
    const client = async (id: number): Promise<void> => {
      while (n < limit && Date.now() < deadline) {
        n++
        const capture = new CaptureCollector([{ name: 'ID', type: 'NUMBER' }, { name: 'EMAIL', type: 'TEXT' }], 1024 * 1024)
        capture.add([[n, '***'], [n + 1, '***'], [n + 2, '***']])
        await recording.record({
          requestId: `bench-${n}`, frontEnd: 'bench', principal, connection: 'wh', route: '/bench', method: 'POST',
          statusCode: 200, outcome: 'ok', durationMs: 3.2, startedAtMicros: nowMicros(), sourceIp: '127.0.0.1',
          userAgent: 'bench/1.0', bytesReturned: 512,
          trip: {
            sql: SQL,
            params: [n, 'x'],
            analysis: { dialect: 'snowflake', statements: [{ kind: 'select', text: SQL, tablesRead: ['analytics.public.orders', 'crm.customers'], tablesWritten: [], functions: [], hasLimit: true }] },
            decision: { effect: 'allow', ruleId: 'allow-agents', reason: 'allowed by rule allow-agents: agents may read', limits: {} },
            maskedColumns: [{ column: 'EMAIL', rule: 'mask-email', values: 3 }],
            upstreamId: `q-${n}`,
            rowsReturned: 3,
            capture
          }
        }, { sessionKey: `bench-session-${id % 32}`, principal, frontEnd: 'bench', connection: 'wh' })
        written++
      }
    }
    const clients = async (): Promise<void> => {
      await Promise.all(Array.from({ length: THROUGHPUT_CONCURRENCY }, async (_, i) => { await client(i) }))
    }
    // Warm-up: JIT, sessions opened, every pool connection (and its server process) started.
    limit = 2000
    deadline = Date.now() + 10_000
    await clients()
    written = 0
    limit = n + THROUGHPUT_EVENTS
    deadline = Date.now() + THROUGHPUT_SECONDS * 1000
    const load = loadavg()[0] ?? 0
    const pg0 = await backendCpuMs(store)
    const stats0 = { ...recording.writer.stats }
    const cpu0 = process.cpuUsage()
    const started = performance.now()
    await clients()
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpu0)
    const statements = recording.writer.stats.batches - stats0.batches
    const pg1 = await backendCpuMs(store)
    const nodeUs = (cpu.user + cpu.system) / written
    const pgUs = pg0 === undefined || pg1 === undefined ? undefined : (pg1 - pg0) * 1000 / written
    await recording.close()
    const [row] = await store.query<{ n: number }>('select count(*)::int as n from session_events')
    const lines = [
      `throughput: ${Math.round(written / seconds).toLocaleString('en-US')} events/s committed (${written.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s, ${THROUGHPUT_CONCURRENCY} concurrent round trips, each waiting for its own commit; load average ${load.toFixed(1)} at start)`,
      `  stored ${row?.n ?? 0} events (warm-up included); ${statements.toLocaleString('en-US')} INSERT statements, ${(written / Math.max(statements, 1)).toFixed(0)} events each on average (group commit, ${recording.config.batch.lanes} lanes)`,
      `  CPU per event: gateway ${nodeUs.toFixed(0)} µs (this process, driver included)${pgUs === undefined ? '' : ` + PostgreSQL ${pgUs.toFixed(0)} µs`}`
    ]
    if (pgUs !== undefined) {
      lines.push(`  → ceiling on 2 otherwise idle cores ≈ ${Math.round(2e6 / (nodeUs + pgUs)).toLocaleString('en-US')} events/s (CPU-bound; wall-clock above is what this run got)`)
    }
    return lines
  } finally {
    await store.close()
  }
}

async function latency (url: string): Promise<string[]> {
  const store = openPostgresStore({ url, poolSize: 4 })
  await migrate(store)
  const verifier = { verify: async (): Promise<Principal> => principal }
  // The baseline runs the same stages minus recording: no record stage (no admission probe),
  // and a route that is not a front-end route (no event written before the response).
  const unrecorded = new Pipeline({ analyze: analyzeStage(await createSqlAnalyzer()), decide: decideForTests, hold: refuseApprovals, mask: maskEmail })
  const h = await startHarness({
    store,
    identity: { issuer: 'http://127.0.0.1:1', audience: ['sluice'], groupsClaim: 'groups', groupRoles: {}, clientRoles: {}, algorithms: ['RS256'], clockSkewSeconds: 30, jwksRefetchIntervalSeconds: 30, maxTokenBytes: 16384 },
    verifier,
    recording: { batch: { lanes: LANES } },
    routes (app, upstream) {
      app.post('/bench/baseline', { config: { authenticate: true } }, async function baseline (req) {
        const body = req.body as { sql: string }
        const statement: Statement = { requestId: req.id, frontEnd: 'bench', principal, connection: { name: 'wh', kind: 'snowflake', defaults: { database: 'analytics', schema: 'public' } }, sql: body.sql, client: {} }
        const trip = {}
        const admission = await unrecorded.admit(statement, trip)
        const released = unrecorded.release(statement, admission, await upstream.execute(statement), trip)
        const rows: unknown[][] = []
        for await (const page of released.pages) rows.push(...page.rows)
        return { columns: released.schema.columns.map((c) => c.name), rows }
      })
    }
  })
  try {
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = h.app.server.address() as { port: number }
    const base = `http://127.0.0.1:${port}`
    const agent = new Agent({ connections: LATENCY_CONCURRENCY * 2 })
    let i = 0
    const one = async (path: string): Promise<number> => {
      const t = performance.now()
      const res = await request(`${base}${path}`, {
        method: 'POST', dispatcher: agent,
        headers: { authorization: 'Bearer bench', 'content-type': 'application/json' },
        body: JSON.stringify({ sql: `select id, email from orders where id = ${i}` })
      })
      await res.body.arrayBuffer()
      if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`)
      return performance.now() - t
    }
    for (let w = 0; w < 50; w++) { await one('/test/sql'); await one('/bench/baseline') }
    const ms = (x: number): string => `${x.toFixed(2)} ms`
    const lines: string[] = []
    // One client at a time shows the inherent cost (probe + one commit); several show it
    // with batching and lanes in play.
    for (const [clients, requests] of [[1, LATENCY_REQUESTS / 4], [LATENCY_CONCURRENCY, LATENCY_REQUESTS]] as const) {
      const samples: Record<'recorded' | 'baseline', number[]> = { recorded: [], baseline: [] }
      const deadline = Date.now() + LATENCY_SECONDS * 1000 / 2
      i = 0
      await Promise.all(Array.from({ length: clients }, async () => {
        while (i < requests && Date.now() < deadline) {
          i++
          // Alternate which goes first so neither always runs on a warmer pipeline.
          const order: Array<'recorded' | 'baseline'> = i % 2 === 0 ? ['recorded', 'baseline'] : ['baseline', 'recorded']
          for (const kind of order) samples[kind].push(await one(kind === 'recorded' ? '/test/sql' : '/bench/baseline'))
        }
      }))
      const stats = (xs: number[]): { p50: number, p99: number } => {
        const sorted = [...xs].sort((a, b) => a - b)
        return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
      }
      const r = stats(samples.recorded)
      const b = stats(samples.baseline)
      lines.push(
        `latency per round trip over HTTP, ${clients} client${clients === 1 ? '' : 's'} (${samples.recorded.length} + ${samples.baseline.length} requests, interleaved):`,
        `  with recording     p50 ${ms(r.p50)}   p99 ${ms(r.p99)}`,
        `  baseline           p50 ${ms(b.p50)}   p99 ${ms(b.p99)}`,
        `  added by recording p50 ${ms(r.p50 - b.p50)}   p99 ${ms(r.p99 - b.p99)}`
      )
    }
    await agent.close()
    return lines
  } finally {
    await h.app.close()
  }
}

export async function benchRecording (): Promise<BenchResult> {
  // A database each: the throughput phase leaves autovacuum and GIN clean-up work behind
  // that would otherwise land on the latency samples.
  const lines: string[] = []
  for (const phase of [recordingThroughput, latency]) {
    const db = await createThrowawayDatabase()
    try {
      lines.push(...await phase(db.url))
    } finally {
      await db.drop()
    }
  }
  return { name: 'session recording into PostgreSQL (record, then release)', lines }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchRecording()
  console.log(`${result.name}\n${result.lines.map((l) => `  ${l}`).join('\n')}`)
}
