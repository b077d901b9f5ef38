// The performance targets (issue: "the gateway's own cost close to a bare proxy"), judged from
// one gateway bench run and printed beside its tables: each target, what this run measured,
// and whether it was met. Reported, never asserted: a miss is a finding, not a failed build.
// Recording throughput and masking on the wire path have benches of their own
// (`npm run bench -- recording`, `npm run bench -- masking`); their rows point there.
import type { Report, SmallCell } from './report.js'
import type { Protocol, SideName } from './sides.js'

export interface TargetRow {
  target: string
  measured: string
  /** undefined: this run did not measure it (a part not run, or another bench's). */
  met?: boolean
}

const fmt = (n: number, digits = 2): string => Number.isFinite(n) ? n.toFixed(digits) : '—'

function cell (r: Report, protocol: Protocol, concurrency: number, side: SideName): SmallCell | undefined {
  return r.small.find((c) => c.protocol === protocol && c.concurrency === concurrency && c.side === side)
}

/** The worst protocol's value of `pick` (largest when `worst` is 'max'), with its protocol. */
function worstOf (r: Report, pick: (p: Protocol) => number | undefined, worst: 'max' | 'min'): { value: number, protocol?: Protocol } {
  let out: { value: number, protocol?: Protocol } = { value: NaN }
  for (const protocol of ['sqlapi', 'connector', 'bigquery'] as const) {
    const v = pick(protocol)
    if (v === undefined || !Number.isFinite(v)) continue
    if (!Number.isFinite(out.value) || (worst === 'max' ? v > out.value : v < out.value)) out = { value: v, protocol }
  }
  return out
}

export function targets (r: Report): TargetRow[] {
  const rows: TargetRow[] = []
  const judged = (target: string, value: number, ok: (v: number) => boolean, measured: string): void => {
    rows.push(Number.isFinite(value) ? { target, measured, met: ok(value) } : { target, measured: 'not measured in this run' })
  }
  const addedP99 = (p: Protocol, side: SideName): number | undefined => {
    const s = cell(r, p, 1, side)
    const d = cell(r, p, 1, 'direct')
    return s === undefined || d === undefined ? undefined : s.p99Ms - d.p99Ms
  }

  const c0p50 = worstOf(r, (p) => cell(r, p, 1, 'sluice-pg-async')?.addedP50Ms, 'max')
  judged('C0 (synchronous_commit = off): added p50 ≤ 1 ms at c=1', c0p50.value, (v) => v <= 1, `+${fmt(c0p50.value)} ms (worst: ${c0p50.protocol ?? '—'})`)
  const c0p99 = worstOf(r, (p) => addedP99(p, 'sluice-pg-async'), 'max')
  judged('C0: added p99 ≤ 5 ms at c=1', c0p99.value, (v) => v <= 5, `+${fmt(c0p99.value)} ms (worst: ${c0p99.protocol ?? '—'})`)

  const commit = r.commit.find((c) => c.store === 'postgres')?.p50Ms ?? NaN
  const allowance = 1 + 2 * commit
  const cp50 = worstOf(r, (p) => cell(r, p, 1, 'sluice-pg')?.addedP50Ms, 'max')
  judged(`C (Postgres): added p50 ≤ 1 ms + two commit round trips (${fmt(allowance)} ms in this run)`, Number.isFinite(commit) ? cp50.value : NaN,
    (v) => v <= allowance, `+${fmt(cp50.value)} ms (worst: ${cp50.protocol ?? '—'}; one commit ${fmt(commit)} ms)`)

  const throughput = worstOf(r, (p) => cell(r, p, 16, 'sluice-pg')?.ofProxy, 'min')
  judged('c=16 throughput ≥ 70% of the bare proxy', throughput.value, (v) => v >= 0.7, `${fmt(throughput.value * 100, 0)}% (worst: ${throughput.protocol ?? '—'})`)

  const large = r.large.filter((l) => l.side !== 'direct' && l.error === undefined)
  const slowest = large.reduce<typeof large[number] | undefined>((w, l) => w === undefined || l.ofDirect < w.ofDirect ? l : w, undefined)
  judged('large results ≥ 60% of direct MB/s, masking on', slowest?.ofDirect ?? NaN, (v) => v >= 0.6,
    slowest === undefined ? '' : `${fmt(slowest.ofDirect * 100, 0)}% (worst: ${slowest.path}, ${slowest.rows.toLocaleString('en-US')} rows)`)
  const latest = large.reduce<typeof large[number] | undefined>((w, l) => w === undefined || l.ttfbMs > w.ttfbMs ? l : w, undefined)
  judged('large results: first byte ≤ 50 ms', latest?.ttfbMs ?? NaN, (v) => v <= 50,
    latest === undefined ? '' : `${fmt(latest.ttfbMs, 0)} ms, median of ${latest.firstAnswers ?? 1} first answers (worst: ${latest.path}, ${latest.rows.toLocaleString('en-US')} rows; slowest answer ${fmt(latest.ttfbMaxMs ?? latest.ttfbMs, 0)} ms)`)
  const million = r.large.filter((l) => l.side !== 'direct' && l.rows >= 1_000_000 && l.peakRssMb !== undefined)
  const fattest = million.reduce<typeof million[number] | undefined>((w, l) => w === undefined || l.peakRssMb! > w.peakRssMb! ? l : w, undefined)
  judged('1,000,000 rows: gateway peak RSS < 300 MB', fattest?.peakRssMb ?? NaN, (v) => v < 300,
    fattest === undefined ? '' : `${fmt(fattest.peakRssMb!, 0)} MB (worst: ${fattest.path}${fattest.error === undefined ? '' : ', failed'})`)

  // Linear: the largest statement's added cost per byte against the 100 KB one's (or the next
  // smaller measured above 1 KB); more than twice as much per byte is not linear.
  const sized = r.sizes.filter((s) => s.bytes >= 10_000 && s.addedP50Ms > 0).sort((a, b) => a.bytes - b.bytes)
  const big = sized.at(-1)
  const ref = sized.length >= 2 ? sized.at(-2) : undefined
  const growth = big !== undefined && ref !== undefined ? (big.addedP50Ms / big.bytes) / (ref.addedP50Ms / ref.bytes) : NaN
  judged('added latency linear in statement size (cost per byte of the largest ≤ 2× the next)', growth, (v) => v <= 2,
    big === undefined || ref === undefined ? '' : `${fmt(growth)}× (${fmt(ref.addedP50Ms, 0)} ms at ${ref.bytes / 1000} KB, ${fmt(big.addedP50Ms, 0)} ms at ${big.bytes / 1000} KB)`)
  // The small statement's own latency while nothing large runs: the 100 B row's meanwhile p50.
  const baseline = r.sizes.find((s) => s.bytes <= 1000)?.concurrentSmall.p50Ms ?? cell(r, 'sqlapi', 1, 'sluice-pg')?.p50Ms ?? NaN
  const delay = r.sizes.length === 0 ? NaN : Math.max(...r.sizes.map((s) => s.concurrentSmall.maxMs)) - baseline
  judged('no statement delays another client\'s small statement by more than 50 ms', delay, (v) => v <= 50,
    `${fmt(delay, 0)} ms (worst small statement ${fmt(delay + baseline, 0)} ms against ${fmt(baseline, 1)} ms alone)`)

  rows.push({ target: 'recording ≥ 5,000 events/s sustained', measured: 'npm run bench -- recording' })
  rows.push({ target: 'masking on the wire path ≥ 100 MB/s per core', measured: 'npm run bench -- masking' })
  return rows
}

export function targetLines (r: Report): string[] {
  const lines = ['Targets (reported, never asserted):', '', '| target | this run | met |', '|---|---|---|']
  for (const t of targets(r)) lines.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? '' : t.met ? 'yes' : 'no'} |`)
  return lines
}
