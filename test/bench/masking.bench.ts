// Masking throughput (MB/s of result rows, one core) per path, and peak memory while a large
// result streams through the pipeline page by page.
//
// Rows: 10 columns, ~150 bytes of JSON per row, 10,000 rows per page. Three columns are masked
// by rules (email, last4, year); the other text columns pass under the value detectors, a few
// percent of them holding an email or a card number, the phone column a phone number in every
// row. A further configuration adds a deterministic token (one HMAC-SHA256 per value, every
// value distinct so the memo never helps): that path is bound by the digest.
// Paths (MB = the wire / JSON size of the rows the client is sent):
//   neutral page       — the masker alone over decoded pages (every front end's common part);
//   Snowflake chunk    — the wire path of connector chunks and SQL API partitions: the upstream
//                        body's bytes cut between rows into ~64 KB slices (json-rows.ts), each
//                        parsed → decoded → masked → encoded to bytes (wire.ts jsonRowsEncoder);
//   Snowflake rowset   — the same rows parsed and encoded as one whole page (the path before
//                        slicing, and the inline rows of a first answer);
//   BigQuery f/v       — wire f/v rows → decode → mask → encode → JSON text.
// Each path runs beside its baseline — the same work without masking — interleaved in one loop,
// so machine noise hits both alike; the neutral page's baselines are a plain copy of the page
// and JSON.stringify of it. Codec paths for Arrow and Postgres DataRow get added with theirs.
// Aim: ≥ 100 MB/s on the Snowflake chunk (wire) path; memory bounded by page size, not result size.
//
// Machine: 2 cores, 24 GiB, shared with other work (load average ~10 during the runs reported;
// read the ratios, not just the rates). Node 20. Date: 2026-11-21.
// Run alone: npx tsx test/bench/masking.bench.ts   (SLUICE_BENCH_MASKING_MB=1024 for 1 GB)
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createMaskStage, type MaskingStage } from '../../src/masking/stage.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline, type RoundTrip } from '../../src/pipeline.js'
import type { MaskPlan, ResultPage, ResultSchema, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { decodeRows, encodeRows } from '../../src/warehouses/bigquery/codec.js'
import type { TableFieldSchema, TableRow } from '../../src/warehouses/bigquery/wire.js'
import { chunkSlices } from '../../src/warehouses/snowflake/chunk-slices.js'
import { rowsetFromRows, rowsFromRowset } from '../../src/warehouses/snowflake/rowset.js'
import { jsonRowsEncoder } from '../../src/warehouses/snowflake/wire.js'
import type { BenchResult } from './result.js'

const ROWS_PER_PAGE = 10_000
const SQL = 'SELECT id, name, email, ssn, phone, country, created_at, amount, note, status FROM customers'
const COLUMNS = ['ID:FIXED:INT64', 'NAME:TEXT:STRING', 'EMAIL:TEXT:STRING', 'SSN:TEXT:STRING', 'PHONE:TEXT:STRING', 'COUNTRY:TEXT:STRING',
  'CREATED_AT:TIMESTAMP_NTZ:DATETIME', 'AMOUNT:FIXED:NUMERIC', 'NOTE:TEXT:STRING', 'STATUS:TEXT:STRING'].map((c) => c.split(':') as [string, string, string])
const SF_SCHEMA: ResultSchema = { columns: COLUMNS.map(([name, type]) => ({ name, type })) }
const BQ_FIELDS: TableFieldSchema[] = COLUMNS.map(([name, , type]) => ({ name: name.toLowerCase(), type, mode: 'NULLABLE' }))
const BQ_SCHEMA: ResultSchema = { columns: BQ_FIELDS.map((f) => ({ name: f.name, type: f.type, mode: 'NULLABLE' as const })) }
const POLICY = `
version: 1
masking:
  - { id: email, columns: ['*.*.customers.email'], function: email }
  - { id: ssn, columns: ['*.*.customers.ssn'], function: last4 }
  - { id: created, columns: ['*.*.customers.created_at'], function: year }
`
const POLICY_TOKEN = `${POLICY}  - { id: phone, columns: ['*.*.customers.phone'], function: token, allowEquality: true }
`
const NOTES = ['called back, all good', 'prefers email', 'ticket closed', 'asked about invoice 2024-05', 'VIP customer since 2019']

/** One page of rows in the Snowflake rowset's text form. */
function rowset (seed: number): string[][] {
  const rows: string[][] = new Array(ROWS_PER_PAGE)
  for (let i = 0; i < ROWS_PER_PAGE; i++) {
    const n = seed * ROWS_PER_PAGE + i
    const note = n % 33 === 0 ? `write to user${n}@example.com` : n % 97 === 0 ? 'card 4111 1111 1111 1111' : NOTES[n % NOTES.length] as string
    rows[i] = [
      String(n), `Customer ${n}`, `user${n}@example.com`, `${100 + (n % 800)}-${10 + (n % 89)}-${1000 + (n % 8999)}`,
      `+1 415 ${String(n).padStart(7, '0')}`, ['FR', 'US', 'DE', 'JP'][n % 4] as string, `${1700000000 + n}.000000000`,
      `${n % 1000}.${n % 100}`, note, n % 3 === 0 ? 'active' : 'closed'
    ]
  }
  return rows
}

/** The same page as BigQuery `f/v` rows (DATETIME as text, INT64 / NUMERIC as strings). */
function fv (rows: string[][]): TableRow[] {
  return rows.map((r) => ({ f: r.map((v, i) => ({ v: i === 6 ? new Date(Number(v.split('.')[0]) * 1000).toISOString().slice(0, 19) : v })) }))
}

function statement (kind: 'snowflake' | 'bigquery'): Statement {
  return {
    requestId: 'bench', frontEnd: 'bench', sql: SQL, client: {},
    principal: { subject: 'bench', type: 'machine', groups: [], roles: ['agent'] } as unknown as Statement['principal'],
    connection: kind === 'snowflake'
      ? { name: 'sf', kind, defaults: { database: 'analytics', schema: 'public' } }
      : { name: 'bq', kind, defaults: { database: 'proj', schema: 'crm' } }
  }
}

// Collect garbage outside the timed sections, so one path's allocations are not charged to the
// next (the bench runner starts node without --expose-gc).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const mbps = (bytes: number, ns: bigint): string => (bytes / 1e6 / (Number(ns) / 1e9)).toFixed(0).padStart(5)

/** Times `fn` once (after a GC), adding to `acc[key]`. */
function timed<T> (acc: Record<string, bigint>, key: string, fn: () => T): T {
  gc()
  const s = process.hrtime.bigint()
  const out = fn()
  acc[key] = (acc[key] ?? 0n) + (process.hrtime.bigint() - s)
  return out
}

export async function benchMasking (): Promise<BenchResult> {
  const analyzer = await createSqlAnalyzer()
  const rules = parsePolicySet([{ name: 'bench.yaml', text: POLICY }]).masking
  const tokenRules = parsePolicySet([{ name: 'bench.yaml', text: POLICY_TOKEN }]).masking
  const stage = createMaskStage({ rules: () => rules })
  const quiet = createMaskStage({ rules: () => rules, settings: { detectors: { mode: 'off' } } })
  const tokens = createMaskStage({ rules: () => tokenRules })
  const pipeline = new Pipeline({ analyze: analyzeStage(analyzer), decide: passThroughDecide, hold: refuseApprovals, mask: stage })
  const sf = statement('snowflake')
  const bq = statement('bigquery')
  const sfAdmission = await pipeline.admit(sf, {})
  const bqAdmission = await pipeline.admit(bq, {})
  const plan = (s: MaskingStage, schema: ResultSchema, kind: 'snowflake' | 'bigquery'): MaskPlan =>
    s.plan(kind === 'snowflake' ? sf : bq, kind === 'snowflake' ? sfAdmission : bqAdmission, schema)
  const plans = {
    mask: plan(stage, SF_SCHEMA, 'snowflake'), quiet: plan(quiet, SF_SCHEMA, 'snowflake'),
    token: plan(tokens, SF_SCHEMA, 'snowflake'), bq: plan(stage, BQ_SCHEMA, 'bigquery')
  }

  // ── throughput: interleaved rounds over the same pages ──────────────────────────────────
  const SAMPLE = 6
  const sources = Array.from({ length: SAMPLE }, (_, i) => rowset(i))
  const sfWire = sources.map((r) => JSON.stringify(r))
  // A result chunk's body as the upstream sends it: rows comma-joined, no enclosing brackets.
  const sfChunks = sfWire.map((w) => Buffer.from(w.slice(1, -1)))
  const chunkPath = (body: Buffer, mask: (rows: unknown[][]) => unknown[][]): Buffer => {
    const encoder = jsonRowsEncoder()
    for (const slice of chunkSlices(body, 'bench')) encoder.add(mask(slice))
    return encoder.end()
  }
  const bqWire = sources.map((r) => JSON.stringify(fv(r)))
  const t: Record<string, bigint> = {}
  let neutralBytes = 0
  let sfBytes = 0
  let bqBytes = 0
  const rounds = 6
  for (let round = 0; round < rounds; round++) {
    if (round === 1) for (const k of Object.keys(t)) t[k] = 0n // the first round warms up
    for (let i = 0; i < SAMPLE; i++) {
      const src = sources[i] as string[][]
      const copy = (): ResultPage => ({ rows: src.map((r) => r.slice()) }) // masking works in place
      const a = copy(); const b = copy(); const c = copy()
      const copied = timed(t, 'copy', () => src.map((r) => r.slice()))
      timed(t, 'stringify', () => JSON.stringify(copied))
      timed(t, 'mask', () => stage.mask(plans.mask, a))
      timed(t, 'quiet', () => quiet.mask(plans.quiet, b))
      timed(t, 'token', () => tokens.mask(plans.token, c))
      // Snowflake chunk: what the connector and SQL API front ends do per page, with and without masking.
      const chunk = sfChunks[i] as Buffer
      timed(t, 'chunkBase', () => chunkPath(chunk, (rows) => rows))
      timed(t, 'chunkMask', () => chunkPath(chunk, (rows) => stage.mask(plans.mask, { rows }).rows))
      // The same page parsed and encoded whole.
      const sfIn = sfWire[i] as string
      timed(t, 'sfBase', () => JSON.stringify(rowsetFromRows(rowsFromRowset(JSON.parse(sfIn) as unknown[][]))))
      timed(t, 'sfMask', () => JSON.stringify(rowsetFromRows(stage.mask(plans.mask, { rows: rowsFromRowset(JSON.parse(sfIn) as unknown[][]) }).rows)))
      const bqIn = bqWire[i] as string
      const timestamps = { timestamps: 'iso' as const }
      timed(t, 'bqBase', () => JSON.stringify(encodeRows(BQ_FIELDS, decodeRows(BQ_FIELDS, JSON.parse(bqIn) as TableRow[], { int64Timestamps: true }), timestamps)))
      timed(t, 'bqMask', () => JSON.stringify(encodeRows(BQ_FIELDS, stage.mask(plans.bq, { rows: decodeRows(BQ_FIELDS, JSON.parse(bqIn) as TableRow[], { int64Timestamps: true }) }).rows, timestamps)))
      if (round > 0) {
        neutralBytes += sfIn.length
        sfBytes += sfIn.length
        bqBytes += bqIn.length
      }
    }
  }
  const rows = (rounds - 1) * SAMPLE * ROWS_PER_PAGE
  const us = (ns: bigint | undefined): string => (Number(ns ?? 0n) / 1000 / rows).toFixed(2)

  // ── streaming: a large result through Pipeline.release, page by page ────────────────────
  const targetMb = Number(process.env.SLUICE_BENCH_MASKING_MB ?? 256)
  const perPage = sfWire.reduce((x, y) => x + y.length, 0) / SAMPLE
  const pages = Math.ceil(targetMb * 1e6 / perPage)
  gc()
  const base = process.memoryUsage()
  let peakRss = base.rss
  let peakHeap = base.heapUsed
  async function * upstream (): AsyncIterable<ResultPage> {
    for (let i = 0; i < pages; i++) yield { rows: rowset(i) }
  }
  const trip: RoundTrip = {}
  const started = process.hrtime.bigint()
  const released = pipeline.release(sf, sfAdmission, { schema: SF_SCHEMA, pages: upstream() }, trip)
  let streamed = 0
  let seen = 0
  // Peak heap in the first and in the last quarter of the stream: equal when memory is bounded
  // by the page, growing when something holds on to the result.
  const quarter = { first: 0, last: 0 }
  for await (const p of released.pages) {
    streamed += p.rows.length
    seen++
    const m = process.memoryUsage()
    if (m.rss > peakRss) peakRss = m.rss
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed
    if (seen <= pages / 4) quarter.first = Math.max(quarter.first, m.heapUsed)
    if (seen > pages * 3 / 4) quarter.last = Math.max(quarter.last, m.heapUsed)
  }
  const streamNs = process.hrtime.bigint() - started
  gc()
  const retained = process.memoryUsage().heapUsed - base.heapUsed
  const masked = (trip.maskedColumns ?? []).reduce((n, c) => n + c.values, 0)
  const MB = (n: number): string => (n / 1e6).toFixed(0)

  return {
    name: 'masking: throughput per path (one core) and streaming memory',
    lines: [
      `neutral page (${MB(neutralBytes)} MB per path, ${ROWS_PER_PAGE} rows/page, ~${(neutralBytes / rows).toFixed(0)} B/row):`,
      `  3 rule columns + detectors on 5 text columns      ${mbps(neutralBytes, t.mask ?? 0n)} MB/s  ${us(t.mask)} µs/row`,
      `  3 rule columns, detectors off                     ${mbps(neutralBytes, t.quiet ?? 0n)} MB/s  ${us(t.quiet)} µs/row`,
      `  + token (HMAC-SHA256) on the phone column          ${mbps(neutralBytes, t.token ?? 0n)} MB/s  ${us(t.token)} µs/row`,
      `  baseline: copy the page unmasked                  ${mbps(neutralBytes, t.copy ?? 0n)} MB/s`,
      `  baseline: JSON.stringify the page                 ${mbps(neutralBytes, t.stringify ?? 0n)} MB/s`,
      `Snowflake chunk, the wire path (slices of ~64 KB: parse → decode → mask → encode → bytes), ${MB(sfBytes)} MB:`,
      `  masked (rules + detectors)                        ${mbps(sfBytes, t.chunkMask ?? 0n)} MB/s  (aim ≥ 100)`,
      `  baseline: same path unmasked                      ${mbps(sfBytes, t.chunkBase ?? 0n)} MB/s  → masking costs ${(Number(t.chunkMask) / Number(t.chunkBase)).toFixed(2)}× the codec`,
      `Snowflake JSON rowset as one whole page (parse → decode → mask → encode → JSON), ${MB(sfBytes)} MB:`,
      `  masked (rules + detectors)                        ${mbps(sfBytes, t.sfMask ?? 0n)} MB/s`,
      `  baseline: same path unmasked                      ${mbps(sfBytes, t.sfBase ?? 0n)} MB/s  → masking costs ${(Number(t.sfMask) / Number(t.sfBase)).toFixed(2)}× the codec`,
      `BigQuery f/v rows (parse → decode → mask → encode → JSON), ${MB(bqBytes)} MB:`,
      `  masked (rules + detectors)                        ${mbps(bqBytes, t.bqMask ?? 0n)} MB/s`,
      `  baseline: same path unmasked                      ${mbps(bqBytes, t.bqBase ?? 0n)} MB/s  → ${(Number(t.bqMask) / Number(t.bqBase)).toFixed(2)}×`,
      `streaming ${MB(pages * perPage)} MB (${streamed} rows, ${pages} pages of ~${(perPage / 1e6).toFixed(1)} MB) through Pipeline.release:`,
      `  generate + mask + capture                         ${mbps(pages * perPage, streamNs)} MB/s, ${masked} values masked`,
      `  peak RSS ${MB(peakRss)} MB (+${MB(peakRss - base.rss)} MB over start), peak heap ${MB(peakHeap)} MB (+${MB(peakHeap - base.heapUsed)} MB)`,
      `  peak heap, first quarter ${MB(quarter.first)} MB / last quarter ${MB(quarter.last)} MB; retained after the stream ${(retained / 1e6).toFixed(1)} MB`
    ]
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await benchMasking()
  process.stdout.write(`## ${result.name}\n${result.lines.map((l) => `  ${l}`).join('\n')}\n`)
}
