// The page masker: a plan compiled once per result into per-column closures, then applied to
// every page in place. Pages are owned by the pipeline between decode and encode, so masking in
// place costs no copy and keeps memory bounded by one page. Counts are of values actually
// masked (NULLs stay NULL and are not counted), per column and rule or detector.
import type { ColumnMeta, MaskCount, ResultPage, ResultSchema } from '../pipeline/types.js'
import type { MaskFunctionName, MaskingRuleSpec } from '../policy/model.js'
import { createScanner, type DetectorKind, type Scanner } from './detectors.js'
import { compileMask, type MaskOptions, type MaskSecrets, type ValueMasker } from './functions.js'
import type { PlannedColumn } from './planner.js'
import { segmentMatches } from './rules.js'
import { classOf, type ValueClass, type WarehouseKind } from './types.js'

export interface DetectorSettings {
  mode: 'mask' | 'flag' | 'off'
  kinds?: readonly DetectorKind[]
}

export interface PageMaskerInput {
  schema: ResultSchema
  kind?: WarehouseKind
  secrets: MaskSecrets
  columns: readonly PlannedColumn[]
  uncovered: readonly number[]
  detectors: DetectorSettings
  /** Filled as pages pass; shared with the round trip so the event sees the final numbers. */
  counts: MaskCount[]
}

interface Step {
  index: number
  fn: ValueMasker
  count: MaskCount
}

function optionsOf (spec: MaskingRuleSpec): MaskOptions {
  const o: MaskOptions = {}
  if (spec.keep !== undefined) o.keep = spec.keep
  if (spec.fill !== undefined) o.fill = spec.fill
  if (spec.replacement !== undefined) o.replacement = spec.replacement
  return o
}

/** A generic column for a JSON value of unknown schema, by its runtime type. */
function runtimeColumn (v: unknown): ColumnMeta {
  if (typeof v === 'number') return { name: '', type: 'FLOAT64' }
  if (typeof v === 'boolean') return { name: '', type: 'BOOL' }
  if (v !== null && typeof v === 'object') return { name: '', type: 'JSON' }
  return { name: '', type: 'STRING' }
}

/**
 * Masks the values at `path` inside a column value (record fields, JSON keys); arrays along the
 * way are walked element by element. A JSON-text value is parsed, masked and written back.
 */
function pathMasker (meta: ColumnMeta, path: readonly string[], fn: MaskFunctionName, spec: MaskingRuleSpec, input: PageMaskerInput, counter: { n: number }): ValueMasker {
  const cache = new Map<ColumnMeta | string, ValueMasker>()
  const leaf = (v: unknown, m: ColumnMeta | undefined): unknown => {
    if (v === null || v === undefined) return v
    const column = m ?? runtimeColumn(v)
    const key = m ?? column.type
    let mask = cache.get(key)
    if (mask === undefined) {
      // Inside JSON, values are plain JS values: mask them in BigQuery's (JS-typed) representation.
      mask = compileMask({ fn, column, kind: m === undefined ? 'bigquery' : input.kind, options: optionsOf(spec), secrets: input.secrets })
      cache.set(key, mask)
    }
    counter.n++
    return mask(v)
  }
  const walk = (v: unknown, i: number, m: ColumnMeta | undefined): unknown => {
    if (v === null || v === undefined) return v
    if (Array.isArray(v)) {
      const el = m === undefined ? undefined : { ...m, mode: 'REQUIRED' as const }
      return v.map((x) => walk(x, i, el))
    }
    if (typeof v === 'string' && m !== undefined && classOf(m, input.kind) === 'json') {
      let parsed: unknown
      try { parsed = JSON.parse(v) } catch { return leaf(v, m) }
      return JSON.stringify(walk(parsed, i, undefined))
    }
    if (typeof v !== 'object' || v instanceof Uint8Array) return v
    const seg = path[i] as string
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) }
    for (const key of Object.keys(out)) {
      if (!segmentMatches(seg, key)) continue
      const fm = m?.fields?.find((f) => f.name === key)
      out[key] = i === path.length - 1 ? leaf(out[key], fm) : walk(out[key], i + 1, fm)
    }
    return out
  }
  return (v) => walk(v, 0, meta)
}

const SCANNED: ReadonlySet<ValueClass> = new Set(['string', 'json', 'unknown', 'record'])

/** Builds the page function for one result. */
export function createPageMasker (input: PageMaskerInput): (page: ResultPage) => ResultPage {
  const { schema, counts } = input
  const steps: Step[] = []
  const nested = new Map<number, PlannedColumn[]>()
  for (const col of input.columns) {
    const meta = schema.columns[col.index]
    if (meta === undefined) continue
    if (col.path !== undefined) {
      nested.set(col.index, [...(nested.get(col.index) ?? []), col])
      continue
    }
    const count: MaskCount = { column: meta.name, rule: col.rule, values: 0, action: 'masked' }
    if (col.reason !== undefined) count.reason = col.reason
    counts.push(count)
    steps.push({ index: col.index, count, fn: compileMask({ fn: col.function, column: meta, kind: input.kind, options: optionsOf(col.spec), secrets: input.secrets }) })
  }
  const nestedSteps: Array<{ index: number, fn: ValueMasker, counter: { n: number }, count: MaskCount }> = []
  for (const [index, cols] of nested) {
    const meta = schema.columns[index] as ColumnMeta
    for (const col of cols) {
      const counter = { n: 0 }
      const count: MaskCount = { column: `${meta.name}.${(col.path ?? []).join('.')}`, rule: col.rule, values: 0, action: 'masked' }
      if (col.reason !== undefined) count.reason = col.reason
      counts.push(count)
      nestedSteps.push({ index, counter, count, fn: pathMasker(meta, col.path ?? [], col.function, col.spec, input, counter) })
    }
  }
  const scanner: Scanner | undefined = input.detectors.mode === 'off' ? undefined : createScanner(input.detectors.kinds)
  const scanned = scanner === undefined
    ? []
    : input.uncovered.filter((i) => { const m = schema.columns[i]; return m !== undefined && SCANNED.has(classOf(m, input.kind)) })
  const flagOnly = input.detectors.mode === 'flag'
  // Per column, per detector kind: found lazily, so an event lists only what was seen.
  const found = new Map<number, Map<DetectorKind, MaskCount>>()
  const note = (index: number, kinds: DetectorKind[]): void => {
    let byKind = found.get(index)
    if (byKind === undefined) found.set(index, byKind = new Map())
    for (const kind of kinds) {
      let c = byKind.get(kind)
      if (c === undefined) {
        c = { column: schema.columns[index]?.name ?? String(index), rule: `detector:${kind}`, values: 0, action: flagOnly ? 'flagged' : 'masked' }
        byKind.set(kind, c)
        counts.push(c)
      }
      c.values++
    }
  }
  const scan = (v: unknown, index: number): unknown => {
    if (typeof v === 'string') {
      const r = (scanner as Scanner)(v)
      if (r === undefined) return v
      note(index, r.findings)
      return flagOnly ? v : r.text
    }
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v
    if (Array.isArray(v)) return v.map((x) => scan(x, index))
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = scan(x, index)
    return out
  }

  return (page) => {
    const rows = page.rows
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as unknown[]
      for (let s = 0; s < steps.length; s++) {
        const step = steps[s] as Step
        const v = row[step.index]
        const out = step.fn(v)
        if (v !== null && v !== undefined) step.count.values++
        row[step.index] = out
      }
      for (const n of nestedSteps) {
        const before = n.counter.n
        row[n.index] = n.fn(row[n.index])
        n.count.values += n.counter.n - before
      }
      for (let s = 0; s < scanned.length; s++) {
        const i = scanned[s] as number
        const v = row[i]
        if (v !== null && v !== undefined) row[i] = scan(v, i)
      }
    }
    return page
  }
}
