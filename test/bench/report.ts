// The gateway benchmark's report: Markdown tables (printed, and the README's "Performance"
// section is pasted from them) and the full JSON written to .sluice/bench/<date>.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Protocol, SideName } from './sides.js'
import { targetLines } from './targets.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface SmallCell {
  protocol: Protocol
  concurrency: number
  side: SideName
  requests: number
  errors: number
  firstError?: string
  reqPerSec: number
  p50Ms: number
  p99Ms: number
  /** p50 minus the direct side's p50 (same protocol and concurrency). */
  addedP50Ms: number
  /** req/s over the bare proxy's req/s. */
  ofProxy: number
  /** CPU of the side's own process per request (the upstream's for direct, the proxy's for proxy). */
  cpuMsPerRequest: number
  /** CPU of the Postgres backends serving the side's store database, per request (Postgres sides). */
  storeCpuMsPerRequest?: number
}

export interface CommitCell { store: string, commits: number, p50Ms: number, p99Ms: number }

export interface SizeCell {
  bytes: number
  reps: number
  directP50Ms: number
  sluiceP50Ms: number
  addedP50Ms: number
  /** Statuses Sluice answered (a refusal of a too large / too complex statement shows here). */
  sluiceStatuses: Record<string, number>
  /** The start of Sluice's first answer that was not a 200 (the refusal's code and message). */
  firstRefusal?: string
  /** A small statement from another client while the large ones ran through Sluice. */
  concurrentSmall: { count: number, p50Ms: number, maxMs: number }
}

export interface LargeCell {
  path: string
  rows: number
  side: 'direct' | SideName
  mb: number
  seconds: number
  mbPerSec: number
  ofDirect: number
  /** Time to the first byte of the first answer: the median over `firstAnswers` first answers, and the slowest. */
  ttfbMs: number
  ttfbMaxMs?: number
  firstAnswers?: number
  peakRssMb?: number
  /** The gateway's RSS just before the run (the peak's baseline). */
  rssBeforeMb?: number
  /** CPU seconds the gateway process spent serving the whole result (/proc utime+stime). */
  gatewayCpuSeconds?: number
  pages: number
  rowsReceived: number
  unmasked: boolean
  error?: string
}

export interface Report {
  date: string
  machine: { cores: number, cpu: string, memoryGb: number, node: string, loadavgStart: number[], loadavgEnd?: number[] }
  settings: Record<string, unknown>
  small: SmallCell[]
  commit: CommitCell[]
  sizes: SizeCell[]
  large: LargeCell[]
}

export function newReport (settings: Record<string, unknown>): Report {
  const cpu = cpus()
  return {
    date: new Date().toISOString(),
    machine: { cores: cpu.length, cpu: cpu[0]?.model ?? 'unknown', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadavgStart: loadavg().map(round2) },
    settings,
    small: [],
    commit: [],
    sizes: [],
    large: []
  }
}

function round2 (n: number): number { return Math.round(n * 100) / 100 }
const ms = (n: number): string => Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '—'
const signed = (n: number): string => Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${ms(n)}` : '—'
const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
const ratio = (n: number): string => Number.isFinite(n) ? `${n.toFixed(2)}×` : '—'
const rss = (l: LargeCell): string => l.peakRssMb === undefined ? '' : `${l.rssBeforeMb === undefined ? '' : `${int(l.rssBeforeMb)} → `}${int(l.peakRssMb)}`
const size = (bytes: number): string => bytes >= 1_000_000 ? `${bytes / 1_000_000} MB` : bytes >= 1000 ? `${bytes / 1000} KB` : `${bytes} B`

export function markdown (r: Report): string[] {
  const lines: string[] = []
  lines.push(`Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGb} GB, Node ${r.machine.node}; load average at start ${r.machine.loadavgStart.join(' / ')}${r.machine.loadavgEnd === undefined ? '' : `, at end ${r.machine.loadavgEnd.join(' / ')}`}. Date: ${r.date}.`)
  const options = r.settings.gatewayNodeOptions
  if (typeof options === 'string') lines.push('', `Sluice runs with NODE_OPTIONS=${options === '' ? '(none)' : options} (BENCH_GATEWAY_NODE_OPTIONS; by default the container image's, from the Dockerfile).`)
  const threshold = r.settings.gatewayMallocMmapThreshold
  if (typeof threshold === 'string') lines.push('', `Sluice runs with MALLOC_MMAP_THRESHOLD_=${threshold === '' ? "(glibc's default)" : threshold} (BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD; by default the container image's).`)
  lines.push('')
  if (r.small.length > 0) {
    lines.push('Small statements (10-row result), closed-loop clients, alternating rounds:')
    lines.push('')
    lines.push('| protocol | c | side | req/s | p50 ms | p99 ms | added p50 | × proxy | CPU ms/req | store CPU ms/req | errors |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|')
    for (const c of r.small) {
      lines.push(`| ${c.protocol} | ${c.concurrency} | ${c.side} | ${int(c.reqPerSec)} | ${ms(c.p50Ms)} | ${ms(c.p99Ms)} | ${c.side === 'direct' ? '' : signed(c.addedP50Ms)} | ${ratio(c.ofProxy)} | ${ms(c.cpuMsPerRequest)} | ${c.storeCpuMsPerRequest === undefined ? '' : ms(c.storeCpuMsPerRequest)} | ${c.errors} |`)
    }
  }
  if (r.commit.length > 0) {
    lines.push('')
    lines.push('Store: one single-row INSERT committed (autocommit), one client:')
    lines.push('')
    lines.push('| store | commits | p50 ms | p99 ms |')
    lines.push('|---|---|---|---|')
    for (const c of r.commit) lines.push(`| ${c.store} | ${c.commits} | ${ms(c.p50Ms)} | ${ms(c.p99Ms)} |`)
  }
  if (r.sizes.length > 0) {
    lines.push('')
    lines.push('Statement size (SQL API, an IN list; sluice-pg), and another client\'s small statement meanwhile:')
    lines.push('')
    lines.push('| statement | reps | direct p50 ms | Sluice p50 ms | added ms | Sluice answers | small stmt meanwhile: n / p50 / max ms |')
    lines.push('|---|---|---|---|---|---|---|')
    for (const s of r.sizes) {
      const statuses = Object.entries(s.sluiceStatuses).map(([k, v]) => `${k}×${v}`).join(' ')
      lines.push(`| ${size(s.bytes)} | ${s.reps} | ${ms(s.directP50Ms)} | ${ms(s.sluiceP50Ms)} | ${signed(s.addedP50Ms)} | ${statuses} | ${s.concurrentSmall.count} / ${ms(s.concurrentSmall.p50Ms)} / ${ms(s.concurrentSmall.maxMs)} |`)
    }
    for (const s of r.sizes) {
      if (s.firstRefusal !== undefined) lines.push('', `${size(s.bytes)}: Sluice answered ${s.firstRefusal.replace(/\s+/g, ' ')}`)
    }
  }
  if (r.large.length > 0) {
    lines.push('')
    lines.push('Large results (emails masked by a rule; the value detectors on), fetched whole, pages in order:')
    lines.push('')
    lines.push('| path | rows | side | MB | MB/s | × direct | first byte ms: p50 / max | gateway CPU s | gateway RSS before → peak MB | masked |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|')
    for (const l of r.large) {
      if (l.error !== undefined) {
        lines.push(`| ${l.path} | ${int(l.rows)} | ${l.side} | — | — | — | — | — | ${rss(l)} | failed: ${l.error.slice(0, 120)} |`)
        continue
      }
      const masked = l.side === 'direct' ? '' : (l.unmasked ? 'NO' : 'yes')
      lines.push(`| ${l.path} | ${int(l.rows)} | ${l.side} | ${l.mb.toFixed(1)} | ${l.mbPerSec.toFixed(1)} | ${l.side === 'direct' ? '' : ratio(l.ofDirect)} | ${ms(l.ttfbMs)}${l.ttfbMaxMs === undefined ? '' : ` / ${ms(l.ttfbMaxMs)}`} | ${l.gatewayCpuSeconds === undefined ? '' : l.gatewayCpuSeconds.toFixed(2)} | ${rss(l)} | ${masked} |`)
    }
  }
  if (r.small.length > 0 || r.sizes.length > 0 || r.large.length > 0) lines.push('', ...targetLines(r))
  return lines
}

/** Writes the report to .sluice/bench/<date>.json (git-ignored); returns the path written. */
export function writeReport (r: Report): string {
  const dir = join(ROOT, '.sluice', 'bench')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${r.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`)
  return file
}
