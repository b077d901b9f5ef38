// The gateway side by side, in one run (issue: "the gateway's own cost close to a bare proxy"):
//   direct          — the instant loopback upstream (test/bench/upstream.ts), its own process;
//   proxy           — a bare @fastify/http-proxy pass-through to it (what plain proxying costs in Node);
//   sluice-pg       — Sluice on Postgres (`sluice start` of the compiled CLI, a child process);
//   sluice-pg-async — Sluice on a store database with synchronous_commit = off;
//   sluice-pglite   — Sluice on the embedded PGlite store;
// and the store's own single-row commit round trip (the floor of record-then-release).
// For the SQL API (POST /api/v2/statements), the connector's query-request and BigQuery
// jobs.query, at concurrency 1 and 16: req/s, p50 / p99, added p50 against direct, throughput
// as a ratio of the bare proxy, CPU of the side's own process per request (/proc utime+stime).
// Then statement sizes (an IN list, 100 B to 1 MB) through the SQL API with another client's small
// statement meanwhile, and large results through each result path (large.ts).
//
// Rounds alternate (every side and protocol once per round, the side order rotating) so machine
// noise hits all sides alike; every batch has a fixed request count, so the run is bounded.
// The client runs on the same machine as everything else: read the ratios, not just the rates.
//
// Run: npm run bench -- gateway
// Knobs: BENCH_ROUNDS (4), BENCH_C1_REQUESTS (25 per round), BENCH_C16_REQUESTS (96 per round),
//   BENCH_SIZES (100,10000,100000,1000000), BENCH_LARGE_ROWS (200000; e.g. 200000,1000000),
//   BENCH_FIRST_ANSWERS (7: first answers per large-result path and side, for the first byte),
//   BENCH_LOG_LEVEL (info, as shipped), BENCH_PARTS (small,sizes,large: which parts run),
//   BENCH_GATEWAY_NODE_OPTIONS (default: the container image's NODE_OPTIONS; '' for none),
//   BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD (default: the image's MALLOC_MMAP_THRESHOLD_; '' for glibc's).
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Pool } from 'undici'
import { openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { procCpuMs, procMemory } from '../support/proc-stats.js'
import { LARGE_RESULT_PATHS, resetPeakRss } from './large.js'
import { storeCpu, type StoreCpu } from './store-cpu.js'
import { meanwhile, poolFor, quantile, runBatch, send } from './load.js'
import { markdown, newReport, writeReport, type Report, type SizeCell } from './report.js'
import type { BenchResult } from './result.js'
import { callFor, gatewayMallocEnv, gatewayNodeOptions, PROTOCOLS, selectRows, SIDE_NAMES, startSides, type Protocol, type Side, type SideName, type Sides } from './sides.js'

const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const list = (name: string, fallback: string): number[] => (process.env[name] ?? fallback).split(',').filter((s) => s.trim() !== '').map(Number)

const SETTINGS = {
  rounds: num('BENCH_ROUNDS', 4),
  requestsPerRound: { 1: num('BENCH_C1_REQUESTS', 25), 16: num('BENCH_C16_REQUESTS', 96) } as Record<number, number>,
  concurrencies: [1, 16],
  commitsPerRound: 50,
  warmupRequests: 20,
  sizes: list('BENCH_SIZES', '100,10000,100000,1000000'),
  largeRows: list('BENCH_LARGE_ROWS', '200000'),
  firstAnswers: Math.max(1, num('BENCH_FIRST_ANSWERS', 7)),
  resultRows: 10,
  parts: (process.env.BENCH_PARTS ?? 'small,sizes,large').split(','),
  logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
  gatewayNodeOptions: gatewayNodeOptions(),
  gatewayMallocMmapThreshold: gatewayMallocEnv().MALLOC_MMAP_THRESHOLD_ ?? ''
}
/** Repetitions per statement size: the large ones take seconds each. */
const repsFor = (bytes: number): number => bytes <= 1000 ? 20 : bytes <= 10_000 ? 10 : bytes <= 100_000 ? 6 : 3
const RAW_EMAIL = /user\d+@example\.com/

interface Acc { latencies: number[], wallMs: number, requests: number, errors: number, cpuMs: number, storeCpuMs: number, firstError?: string }

/** Every side answers every protocol correctly (and Sluice masks) before anything is timed. */
async function sanityCheck (s: Sides, pools: Map<SideName, Pool>): Promise<void> {
  for (const side of s.sides) {
    for (const protocol of PROTOCOLS) {
      const res = await send(pools.get(side.name)!, callFor(side, protocol, selectRows(protocol, SETTINGS.resultRows), s.bearer))
      if (res.status !== 200) throw new Error(`${side.name} ${protocol}: HTTP ${res.status}: ${res.body.slice(0, 300)}`)
      if (!res.body.includes('Customer 9')) throw new Error(`${side.name} ${protocol}: the 10-row result is not in the answer: ${res.body.slice(0, 300)}`)
      if (side.sluice && RAW_EMAIL.test(res.body)) throw new Error(`${side.name} ${protocol}: an email reached the client unmasked`)
    }
  }
}

async function smallStatements (s: Sides, pools: Map<SideName, Pool>, report: Report, commit: CommitProbe): Promise<void> {
  const acc = new Map<string, Acc>()
  const key = (p: Protocol, c: number, side: SideName): string => `${p}|${c}|${side}`
  const order = [...s.sides]
  // The Postgres backends of each Sluice side's store database (PGlite runs inside the gateway).
  const stores = new Map<SideName, StoreCpu>([['sluice-pg', storeCpu(s.stores.postgres)], ['sluice-pg-async', storeCpu(s.stores.postgresAsync)]])
  try {
    for (let round = 0; round < SETTINGS.rounds; round++) {
      for (const concurrency of SETTINGS.concurrencies) {
        for (const protocol of PROTOCOLS) {
          for (const side of order) {
            const pool = pools.get(side.name)!
            const sql = selectRows(protocol, SETTINGS.resultRows)
            const store = stores.get(side.name)
            await store?.sample()
            const cpu0 = procCpuMs(side.pid())
            const batch = await runBatch(pool, () => callFor(side, protocol, sql, s.bearer), SETTINGS.requestsPerRound[concurrency]!, concurrency)
            const cpu = procCpuMs(side.pid()) - cpu0
            const storeMs = await store?.sample() ?? 0
            const a = acc.get(key(protocol, concurrency, side.name)) ?? { latencies: [], wallMs: 0, requests: 0, errors: 0, cpuMs: 0, storeCpuMs: 0 }
            a.latencies.push(...batch.latencies)
            a.wallMs += batch.wallMs
            a.requests += batch.latencies.length + batch.errors
            a.errors += batch.errors
            a.cpuMs += cpu
            a.storeCpuMs += storeMs
            a.firstError ??= batch.firstError
            acc.set(key(protocol, concurrency, side.name), a)
          }
        }
      }
      await commit.round()
      order.push(order.shift()!)
      process.stderr.write(`gateway bench: round ${round + 1}/${SETTINGS.rounds} done\n`)
    }
  } finally {
    for (const store of stores.values()) await store.close()
  }
  for (const concurrency of SETTINGS.concurrencies) {
    for (const protocol of PROTOCOLS) {
      const direct = acc.get(key(protocol, concurrency, 'direct'))!
      const proxy = acc.get(key(protocol, concurrency, 'proxy'))!
      const rps = (a: Acc): number => (a.requests - a.errors) / (a.wallMs / 1000)
      for (const name of SIDE_NAMES) {
        const a = acc.get(key(protocol, concurrency, name))!
        report.small.push({
          protocol, concurrency, side: name, requests: a.requests, errors: a.errors, ...(a.firstError === undefined ? {} : { firstError: a.firstError }),
          reqPerSec: rps(a),
          p50Ms: quantile(a.latencies, 0.5),
          p99Ms: quantile(a.latencies, 0.99),
          addedP50Ms: quantile(a.latencies, 0.5) - quantile(direct.latencies, 0.5),
          ofProxy: rps(a) / rps(proxy),
          cpuMsPerRequest: a.cpuMs / a.requests,
          ...(stores.has(name) ? { storeCpuMsPerRequest: a.storeCpuMs / a.requests } : {})
        })
      }
    }
  }
}

/** The store's own commit round trip on each engine, one batch per round beside the HTTP rounds. */
interface CommitProbe { round: () => Promise<void>, finish: (report: Report) => void, close: () => Promise<void> }

async function commitProbe (s: Sides): Promise<CommitProbe> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-pglite-'))
  const stores: Array<[string, Store]> = [
    ['postgres', openPostgresStore({ url: s.stores.postgres, poolSize: 1 })],
    ['postgres, synchronous_commit = off', openPostgresStore({ url: s.stores.postgresAsync, poolSize: 1 })],
    ['pglite', await openPgliteStore({ dataDir: join(dir, 'data') })]
  ]
  const latencies = new Map<string, number[]>(stores.map(([name]) => [name, []]))
  for (const [, store] of stores) {
    await store.query('create table if not exists bench_commit (id bigserial primary key, at timestamptz not null default now(), payload text not null)')
  }
  return {
    async round () {
      for (const [name, store] of stores) {
        for (let i = 0; i < SETTINGS.commitsPerRound; i++) {
          const started = performance.now()
          await store.query('insert into bench_commit (payload) values ($1)', [`commit ${i}`])
          latencies.get(name)!.push(performance.now() - started)
        }
      }
    },
    finish (report) {
      for (const [name, l] of latencies) report.commit.push({ store: name, commits: l.length, p50Ms: quantile(l, 0.5), p99Ms: quantile(l, 0.99) })
    },
    async close () {
      for (const [, store] of stores) await store.close().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A SELECT of the 10-row table with an IN list making it `bytes` long. */
function inListStatement (bytes: number): string {
  const base = `${selectRows('sqlapi', SETTINGS.resultRows)} WHERE ID IN (`
  const parts: string[] = []
  let length = base.length + 1
  for (let i = 1; length < bytes; i++) {
    const item = parts.length === 0 ? String(i) : `, ${i}`
    parts.push(item)
    length += item.length
  }
  return `${base}${parts.join('')})`
}

async function statementSizes (s: Sides, pools: Map<SideName, Pool>, report: Report, background: Pool): Promise<void> {
  const direct = s.byName('direct')
  const sluice = s.byName('sluice-pg')
  const small = (): ReturnType<typeof callFor> => callFor(sluice, 'sqlapi', selectRows('sqlapi', SETTINGS.resultRows), s.bearer)
  for (const bytes of SETTINGS.sizes) {
    const sql = inListStatement(bytes)
    const reps = repsFor(bytes)
    const directMs: number[] = []
    const sluiceMs: number[] = []
    const statuses: Record<string, number> = {}
    const concurrent: number[] = []
    let firstRefusal: string | undefined
    for (let rep = 0; rep < reps; rep++) {
      directMs.push((await send(pools.get('direct')!, callFor(direct, 'sqlapi', sql, s.bearer))).ms)
      const large = send(pools.get('sluice-pg')!, callFor(sluice, 'sqlapi', sql, s.bearer))
      concurrent.push(...await meanwhile(background, small, large))
      const res = await large
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
      if (res.status !== 200) firstRefusal ??= res.body.slice(0, 300)
      sluiceMs.push(res.ms)
    }
    const cell: SizeCell = {
      bytes,
      reps,
      directP50Ms: quantile(directMs, 0.5),
      sluiceP50Ms: quantile(sluiceMs, 0.5),
      addedP50Ms: quantile(sluiceMs, 0.5) - quantile(directMs, 0.5),
      sluiceStatuses: statuses,
      ...(firstRefusal === undefined ? {} : { firstRefusal }),
      concurrentSmall: { count: concurrent.length, p50Ms: quantile(concurrent, 0.5), maxMs: concurrent.length === 0 ? NaN : Math.max(...concurrent) }
    }
    report.sizes.push(cell)
    process.stderr.write(`gateway bench: statement size ${bytes} B done\n`)
  }
}

async function largeResults (s: Sides, pools: Map<SideName, Pool>, report: Report): Promise<void> {
  const sluice = s.byName('sluice-pg')
  for (const rows of SETTINGS.largeRows) {
    for (const protocol of PROTOCOLS) {
      const path = LARGE_RESULT_PATHS[protocol]
      // Untimed: fills the upstream's cache of generated pages, so no side pays for generating them.
      await path.fetch(pools.get('direct')!, s.byName('direct'), s.bearer, rows)
      let directSeconds = NaN
      for (const side of [s.byName('direct'), sluice] as Side[]) {
        const measured = side.sluice && resetPeakRss(side.pid())
        const before = measured ? { rssBeforeMb: procMemory(side.pid()).rssBytes / 1e6 } : {}
        // Steadier than wall time on a shared machine: the gateway's own CPU for the result.
        const cpu0 = side.sluice ? procCpuMs(side.pid()) : 0
        const started = performance.now()
        try {
          const got = await path.fetch(pools.get(side.name)!, side, s.bearer, rows)
          const seconds = (performance.now() - started) / 1000
          if (!side.sluice) directSeconds = seconds
          if (got.rows !== rows) throw new Error(`received ${got.rows} rows of ${rows}`)
          const done = {
            path: path.name, rows, side: side.name, mb: got.bytes / 1e6, seconds, mbPerSec: got.bytes / 1e6 / seconds,
            ofDirect: directSeconds / seconds, pages: got.pages, rowsReceived: got.rows, unmasked: got.unmasked,
            ...(side.sluice && { gatewayCpuSeconds: (procCpuMs(side.pid()) - cpu0) / 1000 }),
            ...before, ...(measured ? { peakRssMb: procMemory(side.pid()).peakRssBytes / 1e6 } : {})
          }
          // One first byte is one sample of a noisy machine: more first answers alone give its median.
          const firstBytes = [got.ttfbMs]
          for (let i = 1; i < SETTINGS.firstAnswers; i++) firstBytes.push((await path.fetch(pools.get(side.name)!, side, s.bearer, rows, true)).ttfbMs)
          report.large.push({ ...done, ttfbMs: quantile(firstBytes, 0.5), ttfbMaxMs: Math.max(...firstBytes), firstAnswers: firstBytes.length })
        } catch (err) {
          report.large.push({
            path: path.name, rows, side: side.name, mb: NaN, seconds: NaN, mbPerSec: NaN, ofDirect: NaN, ttfbMs: NaN, pages: 0, rowsReceived: 0, unmasked: false,
            error: (err as Error).message, ...before, ...(measured ? { peakRssMb: procMemory(side.pid()).peakRssBytes / 1e6 } : {})
          })
        }
      }
      process.stderr.write(`gateway bench: ${rows} rows through ${path.name} done\n`)
    }
  }
}

export async function benchGateway (): Promise<BenchResult> {
  // Interrupted, exit properly so the child processes' exit hooks stop them.
  const interrupted = (): never => process.exit(130)
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  const report = newReport(SETTINGS)
  const s = await startSides()
  const pools = new Map<SideName, Pool>(s.sides.map((side) => [side.name, poolFor(side.url, 16)]))
  const background = poolFor(s.byName('sluice-pg').url, 1)
  const commit = await commitProbe(s)
  try {
    await sanityCheck(s, pools)
    for (const side of s.sides) {
      for (const protocol of PROTOCOLS) {
        await runBatch(pools.get(side.name)!, () => callFor(side, protocol, selectRows(protocol, SETTINGS.resultRows), s.bearer), SETTINGS.warmupRequests, 4)
      }
    }
    if (SETTINGS.parts.includes('small')) {
      await smallStatements(s, pools, report, commit)
      commit.finish(report)
    }
    if (SETTINGS.parts.includes('sizes')) await statementSizes(s, pools, report, background)
    if (SETTINGS.parts.includes('large')) await largeResults(s, pools, report)
  } finally {
    await commit.close()
    for (const pool of [...pools.values(), background]) await pool.close().catch(() => {})
    await s.close()
    process.removeListener('SIGINT', interrupted)
    process.removeListener('SIGTERM', interrupted)
  }
  report.machine.loadavgEnd = loadavg().map((n) => Math.round(n * 100) / 100)
  const file = writeReport(report)
  return { name: 'gateway side by side', lines: [...markdown(report), '', `JSON: ${file.slice(file.indexOf('.sluice'))}`] }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchGateway()
  process.stdout.write(`${result.lines.join('\n')}\n`)
  process.exit(0)
}
