// Walks inside column values shared by the page masker and the structured masker: masks at a
// field path (a rule on `….address.ssn`), and the value detectors' deep scan, which skips the
// paths an exemption shows in clear.
import type { ColumnMeta } from '../pipeline/types.js'
import type { MaskFunctionName, MaskingRuleSpec } from '../policy/model.js'
import type { DetectorKind, Scanner } from './detectors.js'
import { compileMask, type MaskOptions, type MaskSecrets, type ValueMasker } from './functions.js'
import { segmentMatches } from './rules.js'
import { classOf, type WarehouseKind } from './types.js'

export interface WalkContext {
  kind?: WarehouseKind
  secrets: MaskSecrets
}

export function optionsOf (spec: MaskingRuleSpec): MaskOptions {
  const o: MaskOptions = {}
  if (spec.keep !== undefined) o.keep = spec.keep
  if (spec.fill !== undefined) o.fill = spec.fill
  if (spec.replacement !== undefined) o.replacement = spec.replacement
  return o
}

/** A generic column for a JSON value of unknown schema, by its runtime type. */
export function runtimeColumn (v: unknown): ColumnMeta {
  if (typeof v === 'number') return { name: '', type: 'FLOAT64' }
  if (typeof v === 'boolean') return { name: '', type: 'BOOL' }
  if (v !== null && typeof v === 'object') return { name: '', type: 'JSON' }
  return { name: '', type: 'STRING' }
}

/**
 * A masker for values met inside a column (record fields, JSON values): typed by the field's
 * column when the schema has one, by the runtime type otherwise (inside JSON, values are plain
 * JS values: masked in BigQuery's JS-typed representation).
 */
export function leafMasker (fn: MaskFunctionName, spec: MaskingRuleSpec, ctx: WalkContext): (v: unknown, m: ColumnMeta | undefined) => unknown {
  const cache = new Map<ColumnMeta | string, ValueMasker>()
  return (v, m) => {
    const column = m ?? runtimeColumn(v)
    const key = m ?? column.type
    let mask = cache.get(key)
    if (mask === undefined) {
      mask = compileMask({ fn, column, kind: m === undefined ? 'bigquery' : ctx.kind, options: optionsOf(spec), secrets: ctx.secrets })
      cache.set(key, mask)
    }
    return mask(v)
  }
}

/** The field of a record column by name (case-insensitive, as warehouses compare them). */
export function fieldMeta (m: ColumnMeta | undefined, key: string): ColumnMeta | undefined {
  if (m?.fields === undefined) return undefined
  return m.fields.find((f) => f.name === key) ?? m.fields.find((f) => f.name.toLowerCase() === key.toLowerCase())
}

/** An array column's element, as a column of its own. */
export function elementMeta (m: ColumnMeta | undefined): ColumnMeta | undefined {
  return m === undefined ? undefined : { ...m, mode: 'REQUIRED' }
}

/**
 * Masks the values at `path` inside a column value (record fields, JSON keys); arrays along the
 * way are walked element by element. A JSON-text value is parsed, masked and written back.
 */
export function pathMasker (meta: ColumnMeta | undefined, path: readonly string[], fn: MaskFunctionName, spec: MaskingRuleSpec, ctx: WalkContext, counter: { n: number }): ValueMasker {
  const mask = leafMasker(fn, spec, ctx)
  const leaf = (v: unknown, m: ColumnMeta | undefined): unknown => {
    if (v === null || v === undefined) return v
    counter.n++
    return mask(v, m)
  }
  const walk = (v: unknown, i: number, m: ColumnMeta | undefined): unknown => {
    if (v === null || v === undefined) return v
    if (Array.isArray(v)) {
      const el = elementMeta(m)
      return v.map((x) => walk(x, i, el))
    }
    if (typeof v === 'string' && m !== undefined && classOf(m, ctx.kind) === 'json') {
      let parsed: unknown
      try { parsed = JSON.parse(v) } catch { return leaf(v, m) }
      return JSON.stringify(walk(parsed, i, undefined))
    }
    if (typeof v !== 'object' || v instanceof Uint8Array) return v
    const seg = path[i] as string
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) }
    for (const key of Object.keys(out)) {
      if (!segmentMatches(seg, key)) continue
      const fm = fieldMeta(m, key)
      out[key] = i === path.length - 1 ? leaf(out[key], fm) : walk(out[key], i + 1, fm)
    }
    return out
  }
  return (v) => walk(v, 0, meta)
}

/** True when `skip` holds a path that `at` completes (the field at `at` is shown in clear). */
function skipped (skip: readonly string[][], at: readonly string[]): boolean {
  return skip.some((p) => p.length === at.length && p.every((seg, i) => seg === '**' || segmentMatches(seg, at[i] as string)) ||
    (p.includes('**') && p.length <= at.length && p.slice(0, p.indexOf('**')).every((seg, i) => segmentMatches(seg, at[i] as string))))
}

/**
 * The detectors over every string inside a value, skipping the paths an exemption shows in
 * clear. JSON text is looked into only when there is a path to skip (otherwise the text is
 * scanned whole, which finds the same values). `note` receives the kinds found.
 */
export function deepScan (scanner: Scanner, flagOnly: boolean, skip: readonly string[][], note: (kinds: DetectorKind[]) => void): (v: unknown, json?: boolean) => unknown {
  const text = (v: string): string => {
    const r = scanner(v)
    if (r === undefined) return v
    note(r.findings)
    return flagOnly ? v : r.text
  }
  const visit = (v: unknown, at: string[]): unknown => {
    if (typeof v === 'string') return text(v)
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date) return v
    if (Array.isArray(v)) return v.map((x) => visit(x, at))
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const here = [...at, k]
      out[k] = skip.length > 0 && skipped(skip, here) ? x : visit(x, here)
    }
    return out
  }
  return (v, json = false) => {
    // Most values are plain text: scanned without the walk's bookkeeping.
    if (typeof v === 'string' && !(json && skip.length > 0)) return text(v)
    if (json && typeof v === 'string' && skip.length > 0) {
      let parsed: unknown
      try { parsed = JSON.parse(v) } catch { return visit(v, []) }
      if (parsed === null || typeof parsed !== 'object') return visit(v, [])
      let changed = false
      const inner = deepScan(scanner, flagOnly, skip, (kinds) => { changed = true; note(kinds) })
      const out = inner(parsed)
      return changed && !flagOnly ? JSON.stringify(out) : v
    }
    return visit(v, [])
  }
}
