// The PostgreSQL front end side by side (machine: this one, 2 shared cores; Node 24; see the
// report's machine line for the date and load):
//   direct    — postgres.js straight to the machine's PostgreSQL (a throwaway upstream database);
//   sluice-pg — the same client through Sluice's PostgreSQL listener (`sluice start` of the
//               compiled CLI, a child process), store on a throwaway Postgres database, the bench
//               policy (reads allowed, emails masked; the value detectors on).
// Small statement (the 10-row table) at concurrency 1 and 16: req/s, p50 / p99, CPU per request
// of the gateway process and of the Postgres backends (upstream database, store database).
// Large result (generated rows, about 130 bytes each): read whole in one Execute, and through a
// 1000-row cursor (an Execute row limit per batch, portal suspension): MB/s of the values the
// client received, time to the first row, the gateway's peak RSS (VmHWM, reset before each run).
//
// Rounds alternate the sides so machine noise hits both alike; every batch has a fixed request
// count, so the run is bounded. The client runs on the same machine: read the ratios.
//
// Run: npm run bench -- postgres
// Knobs: BENCH_ROUNDS (4), BENCH_C1_REQUESTS (100 per round), BENCH_C16_REQUESTS (400 per
//   round), BENCH_PG_LARGE_ROWS (1000000), BENCH_LOG_LEVEL (info, as shipped), BENCH_PARTS
//   (small,large: which parts run).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import postgres from 'postgres'
import { freePort, spawnChildServer, type ChildServer } from '../support/child-server.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { procCpuMs, procMemory } from '../support/proc-stats.js'
import { COMPILED_CLI } from '../support/replicas.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'
import { resetPeakRss } from './large.js'
import { shippedLaunch } from './sides.js'
import { quantile } from './load.js'
import type { BenchResult } from './result.js'
import { storeCpu } from './store-cpu.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const num = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const SETTINGS = {
  rounds: num('BENCH_ROUNDS', 4),
  requestsPerRound: { 1: num('BENCH_C1_REQUESTS', 100), 16: num('BENCH_C16_REQUESTS', 400) } as Record<number, number>,
  concurrencies: [1, 16],
  largeRows: num('BENCH_PG_LARGE_ROWS', 1_000_000),
  logLevel: process.env.BENCH_LOG_LEVEL ?? 'info',
  parts: (process.env.BENCH_PARTS ?? 'small,large').split(',')
}
const SMALL = 'select id, name, email, amount, note from rows_10'
const large = (n: number): string =>
  `select g as id, 'Customer ' || g as name, 'user' || g || '@example.com' as email, g * 1.5 as amount, repeat(md5(g::text), 3) as note from generate_series(1, ${n}) g`
const RAW_EMAIL = /^user\d+@example\.com$/

type SideName = 'direct' | 'sluice-pg'
interface Side { name: SideName, client: (max: number) => postgres.Sql, pid?: () => number }

async function startSluice (upstream: ThrowawayDatabase, store: ThrowawayDatabase, idp: TestIdp, dir: string): Promise<{ server: ChildServer, pgPort: number }> {
  const httpPort = await freePort()
  const pgPort = await freePort()
  const config = {
    log: { level: SETTINGS.logLevel },
    listen: { host: '127.0.0.1', port: httpPort, postgres: { host: '127.0.0.1', port: pgPort } },
    store: { url: store.url, poolSize: 10 },
    secrets: { key: 'postgres-bench-secret-key-0123456789abcdef' },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
    policies: { directory: fileURLToPath(new URL('./policies', import.meta.url)), watch: false },
    connections: { 'bench-pg': { kind: 'postgres', url: upstream.url } }
  }
  const file = join(dir, 'sluice.yaml')
  await writeFile(file, JSON.stringify(config, null, 2))
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_') && k !== 'DATABASE_URL') env[k] = v
  // As it ships (sides.ts shippedLaunch): the listener needs its own listen section, which the
  // replica harness sets itself, so this bench starts the CLI on its own.
  const launch = shippedLaunch()
  const nodeOptions = `${env.NODE_OPTIONS ?? ''} ${launch.nodeOptions}`.trim()
  const server = spawnChildServer('sluice (postgres bench)', process.execPath,
    [COMPILED_CLI, 'start'], { cwd: ROOT, env: { ...env, ...launch.env, NODE_OPTIONS: nodeOptions, SLUICE_CONFIG: file } })
  await server.waitUntil(async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200, 120_000)
  return { server, pgPort }
}

interface Acc { latencies: number[], wallMs: number, requests: number, errors: number, gatewayCpuMs: number, upstreamCpuMs: number, storeCpuMs: number, firstError?: string }

/** `total` statements from `concurrency` closed-loop clients on one pool of that many connections. */
async function batch (sql: postgres.Sql, total: number, concurrency: number): Promise<{ latencies: number[], wallMs: number, errors: number, firstError?: string }> {
  const latencies: number[] = []
  let errors = 0
  let firstError: string | undefined
  let issued = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (issued < total) {
      issued++
      const t = performance.now()
      try {
        const rows = await sql.unsafe(SMALL)
        if (rows.length !== 10) throw new Error(`${rows.length} rows`)
        latencies.push(performance.now() - t)
      } catch (err) {
        errors++
        firstError ??= (err as Error).message
      }
    }
  }))
  return { latencies, wallMs: performance.now() - started, errors, ...(firstError === undefined ? {} : { firstError }) }
}

interface LargeRun { side: SideName, path: string, rows: number, mb: number, seconds: number, gatewayCpuS?: number, ttfbMs: number, peakRssMb?: number, rssBeforeMb?: number, unmasked: boolean }

async function readLarge (sql: postgres.Sql, n: number, cursor: boolean): Promise<{ rows: number, bytes: number, ttfbMs: number, unmasked: boolean }> {
  let rows = 0
  let bytes = 0
  let first = 0
  let unmasked = false
  const started = performance.now()
  const take = (r: Record<string, unknown>): void => {
    if (first === 0) first = performance.now()
    rows++
    for (const v of Object.values(r)) bytes += String(v).length
    if (rows % 1000 === 1) unmasked ||= RAW_EMAIL.test(String(r.email))
  }
  if (cursor) for await (const b of sql.unsafe(large(n)).cursor(1000)) for (const r of b) take(r)
  else await sql.unsafe(large(n)).forEach(take)
  return { rows, bytes, ttfbMs: first - started, unmasked }
}

export async function benchPostgres (): Promise<BenchResult> {
  const cleanups: Array<() => Promise<void>> = []
  const lines: string[] = []
  try {
    const idp = await startTestIdp()
    cleanups.push(idp.close)
    const upstream = await createThrowawayDatabase()
    cleanups.push(upstream.drop)
    const store = await createThrowawayDatabase()
    cleanups.push(store.drop)
    const seed = postgres(upstream.url, { max: 1, onnotice: () => {} })
    await seed.unsafe(`create table rows_10 as select g as id, 'Customer ' || g as name, 'user' || g || '@example.com' as email, g * 1.5 as amount, 'note ' || g as note from generate_series(1, 10) g`)
    await seed.end()
    const dir = await mkdtemp(join(tmpdir(), 'sluice-pgbench-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const { server, pgPort } = await startSluice(upstream, store, idp, dir)
    cleanups.push(server.close)
    const token = await idp.userToken({ subject: 'bench-user', groups: ['ai-agents'] })
    const sides: Side[] = [
      { name: 'direct', client: (max) => postgres(upstream.url, { max, onnotice: () => {} }) },
      {
        name: 'sluice-pg',
        client: (max) => postgres({ host: '127.0.0.1', port: pgPort, database: 'bench-pg', username: 'agent', password: token, max, onnotice: () => {} }),
        pid: () => server.child.pid ?? 0
      }
    ]
    const upstreamCpu = storeCpu(upstream.url)
    const storeCpuOf = storeCpu(store.url)
    cleanups.push(upstreamCpu.close, storeCpuOf.close)

    // Sanity: Sluice answers and masks.
    {
      const sql = sides[1]!.client(1)
      const rows = await sql.unsafe(SMALL)
      await sql.end()
      if (rows.length !== 10 || rows.some((r) => RAW_EMAIL.test(String(r.email)))) throw new Error(`Sluice's answer is wrong or unmasked: ${JSON.stringify(rows[0])}`)
    }

    const acc = new Map<string, Acc>()
    const pools = new Map<string, postgres.Sql>()
    for (const side of sides) for (const c of SETTINGS.concurrencies) pools.set(`${side.name}|${c}`, side.client(c))
    cleanups.push(async () => { for (const p of pools.values()) await p.end({ timeout: 5 }) })
    // Warm-up: connections opened, statements prepared, the gateway's code compiled.
    for (const [, sql] of pools) await batch(sql, 40, 4)
    const order = [...sides]
    for (let round = 0; round < (SETTINGS.parts.includes('small') ? SETTINGS.rounds : 0); round++) {
      for (const c of SETTINGS.concurrencies) {
        for (const side of order) {
          const sql = pools.get(`${side.name}|${c}`)!
          await upstreamCpu.sample()
          await storeCpuOf.sample()
          const cpu0 = side.pid === undefined ? 0 : procCpuMs(side.pid())
          const b = await batch(sql, SETTINGS.requestsPerRound[c]!, c)
          const gatewayMs = side.pid === undefined ? 0 : procCpuMs(side.pid()) - cpu0
          const upstreamMs = await upstreamCpu.sample()
          const storeMs = await storeCpuOf.sample()
          const k = `${side.name}|${c}`
          const a = acc.get(k) ?? { latencies: [], wallMs: 0, requests: 0, errors: 0, gatewayCpuMs: 0, upstreamCpuMs: 0, storeCpuMs: 0 }
          a.latencies.push(...b.latencies)
          a.wallMs += b.wallMs
          a.requests += b.latencies.length + b.errors
          a.errors += b.errors
          a.gatewayCpuMs += gatewayMs
          a.upstreamCpuMs += upstreamMs
          a.storeCpuMs += storeMs
          a.firstError ??= b.firstError
          acc.set(k, a)
        }
      }
      order.push(order.shift()!)
      process.stderr.write(`postgres bench: round ${round + 1}/${SETTINGS.rounds} done\n`)
    }

    const runs: LargeRun[] = []
    for (const [path, cursor] of SETTINGS.parts.includes('large') ? [['one Execute', false], ['1000-row cursor', true]] as const : []) {
      for (const side of sides) {
        const sql = side.client(1)
        const measured = side.pid !== undefined && resetPeakRss(side.pid())
        const rssBeforeMb = measured ? procMemory(side.pid!()).rssBytes / 1e6 : undefined
        const cpu0 = side.pid === undefined ? 0 : procCpuMs(side.pid())
        const started = performance.now()
        const got = await readLarge(sql, SETTINGS.largeRows, cursor)
        const seconds = (performance.now() - started) / 1000
        const gatewayCpuS = side.pid === undefined ? undefined : (procCpuMs(side.pid()) - cpu0) / 1000
        await sql.end()
        if (got.rows !== SETTINGS.largeRows) throw new Error(`${side.name} ${path}: ${got.rows} rows of ${SETTINGS.largeRows}`)
        runs.push({ side: side.name, path, rows: got.rows, mb: got.bytes / 1e6, seconds, ...(gatewayCpuS === undefined ? {} : { gatewayCpuS }), ttfbMs: got.ttfbMs, unmasked: got.unmasked,
          ...(measured ? { rssBeforeMb, peakRssMb: procMemory(side.pid!()).peakRssBytes / 1e6 } : {}) })
        process.stderr.write(`postgres bench: ${path} ${side.name} done\n`)
      }
    }

    const f = (n: number): string => n < 10 ? n.toFixed(2) : n.toFixed(1)
    const int = (n: number): string => Math.round(n).toLocaleString('en-US')
    const cpu = cpus()
    lines.push(`Machine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.version}; load average ${loadavg().map((n) => n.toFixed(2)).join(' / ')}. Date: ${new Date().toISOString()}.`)
    const { nodeOptions, env } = shippedLaunch()
    lines.push(`Sluice runs the compiled CLI with NODE_OPTIONS=${nodeOptions === '' ? '(none)' : nodeOptions}${env.MALLOC_MMAP_THRESHOLD_ === undefined ? '' : ` and MALLOC_MMAP_THRESHOLD_=${env.MALLOC_MMAP_THRESHOLD_}`} (the container image's; BENCH_GATEWAY_NODE_OPTIONS, BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD).`)
    lines.push('', `Small statement (${SMALL}; 10 rows), postgres.js, closed-loop clients, ${SETTINGS.rounds} alternating rounds:`, '')
    lines.push('| c | side | req/s | p50 ms | p99 ms | added p50 | gateway CPU ms/req | upstream backend CPU ms/req | store CPU ms/req | errors |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|')
    for (const c of acc.size === 0 ? [] : SETTINGS.concurrencies) {
      const direct = acc.get(`direct|${c}`)!
      for (const side of sides) {
        const a = acc.get(`${side.name}|${c}`)!
        const rps = (a.requests - a.errors) / (a.wallMs / 1000)
        const added = quantile(a.latencies, 0.5) - quantile(direct.latencies, 0.5)
        lines.push(`| ${c} | ${side.name} | ${int(rps)} | ${f(quantile(a.latencies, 0.5))} | ${f(quantile(a.latencies, 0.99))} | ${side.name === 'direct' ? '' : `+${f(added)}`} | ${side.pid === undefined ? '' : f(a.gatewayCpuMs / a.requests)} | ${f(a.upstreamCpuMs / a.requests)} | ${side.pid === undefined ? '' : f(a.storeCpuMs / a.requests)} | ${a.errors}${a.firstError === undefined ? '' : ` (${a.firstError.slice(0, 80)})`} |`)
      }
    }
    lines.push('', `Large result (${int(SETTINGS.largeRows)} generated rows, emails masked by a rule, value detectors on), postgres.js:`, '')
    lines.push('| read as | side | MB of values | seconds | MB/s | × direct | gateway CPU s | first row ms | gateway RSS before → peak MB | masked |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|')
    for (const r of runs) {
      const direct = runs.find((d) => d.path === r.path && d.side === 'direct')!
      lines.push(`| ${r.path} | ${r.side} | ${r.mb.toFixed(1)} | ${r.seconds.toFixed(1)} | ${(r.mb / r.seconds).toFixed(1)} | ${r.side === 'direct' ? '' : `${(direct.seconds / r.seconds).toFixed(2)}×`} | ${r.gatewayCpuS === undefined ? '' : r.gatewayCpuS.toFixed(1)} | ${f(r.ttfbMs)} | ${r.peakRssMb === undefined ? '' : `${int(r.rssBeforeMb ?? 0)} → ${int(r.peakRssMb)}`} | ${r.side === 'direct' ? '' : r.unmasked ? 'NO' : 'yes'} |`)
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  }
  return { name: 'PostgreSQL front end side by side', lines }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchPostgres()
  process.stdout.write(`${result.lines.join('\n')}\n`)
  process.exit(0)
}
