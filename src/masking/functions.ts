// The mask functions. Each is compiled once per result column into a closure specialised for
// the column's class (so the per-value cost is one call), and each keeps the column's type:
// a masked INTEGER is an integer, a DATE a date, a REPEATED column an array, a RECORD a record,
// a REQUIRED column never NULL (the type default stands in).
import { createHash, createHmac } from 'node:crypto'
import type { ColumnMeta } from '../pipeline/types.js'
import type { MaskFunctionName } from '../policy/model.js'
import { classOf, defaultValue, isRepeated, isRequired, type ValueClass, type WarehouseKind } from './types.js'
import { fromDigest, toYear } from './values.js'

export { MASK_FUNCTIONS, type MaskFunctionName } from '../policy/model.js'

/** Functions whose output is equal exactly when the input is (joins, GROUP BY still work). */
export const DETERMINISTIC: ReadonlySet<string> = new Set(['sha256', 'hash', 'token'])

export interface MaskOptions {
  /** partial: characters kept in clear at each end. */
  keep?: { first?: number, last?: number }
  /** partial: the character that replaces the hidden ones. */
  fill?: string
  /** redact: the text that replaces a string value. */
  replacement?: string
}

export interface MaskSecrets {
  /** Salt of `sha256`, per connection: the same value hashes differently on two connections. */
  salt: string
  /** Key of `token` (HMAC-SHA256): stable across queries, so tokens join and group. */
  tokenKey: string
}

export type ValueMasker = (value: unknown) => unknown

export interface CompileInput {
  fn: MaskFunctionName
  column: ColumnMeta
  kind?: WarehouseKind
  options?: MaskOptions
  secrets: MaskSecrets
}

const HIDDEN = 'XXXXX'
const DEFAULT_REPLACEMENT = '****'

/** A masker for a whole column value (arrays and records included). */
export function compileMask (input: CompileInput): ValueMasker {
  const { column, kind } = input
  const cls = classOf(column, kind)
  const required = isRequired(column)
  if (isRepeated(column, kind)) {
    // REPEATED stays an array: each element is masked as a REQUIRED value of the element type.
    const type = column.type.trim().replace(/\[\]$/, '').replace(kind === 'postgres' ? /^_/ : /^$/, '')
    const element = compileMask({ ...input, column: { ...column, mode: 'REQUIRED', nullable: false, type } })
    return (v) => (Array.isArray(v) ? v.map(element) : v === null || v === undefined ? [] : element(v))
  }
  if (cls === 'record' && column.fields !== undefined) {
    const fields = column.fields.map((f) => [f.name, compileMask({ ...input, column: f })] as const)
    const nullify = input.fn === 'nullify'
    return (v) => {
      if (v === null || v === undefined) return v
      if (nullify && !required) return null
      if (typeof v !== 'object' || Array.isArray(v)) return defaultValue('record', kind, v)
      const src = v as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (const [name, mask] of fields) out[name] = mask(src[name] ?? null)
      return out
    }
  }
  const leaf = leafMasker(input, cls)
  if (cls === 'json' || cls === 'record') return jsonMasker(leaf, input, cls, required)
  return (v) => {
    if (v === null || v === undefined) return required ? defaultValue(cls, kind, v) : v
    const out = leaf(v)
    return out === null && required ? defaultValue(cls, kind, v) : out
  }
}

/** Semi-structured values: every leaf is masked by its own runtime type; the shape stays. */
function jsonMasker (_leaf: ValueMasker, input: CompileInput, cls: ValueClass, required: boolean): ValueMasker {
  const { kind } = input
  const byType = (v: unknown): unknown => {
    if (v === null || v === undefined) return v
    if (Array.isArray(v)) return v.map(byType)
    if (typeof v === 'object' && !(v instanceof Uint8Array)) {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = byType(x)
      return out
    }
    const c: ValueClass = typeof v === 'number' ? 'float' : typeof v === 'boolean' ? 'bool' : 'string'
    return leafMasker({ ...input, kind: 'bigquery' }, c)(v)
  }
  return (v) => {
    if (v === null || v === undefined) return required ? defaultValue(cls, kind, v) : v
    if (input.fn === 'nullify') return required ? defaultValue(cls, kind, v) : null
    if (input.fn === 'default') return defaultValue(cls, kind, v)
    if (typeof v === 'string') {
      let parsed: unknown
      try { parsed = JSON.parse(v) } catch { return leafMasker(input, 'string')(v) }
      return JSON.stringify(byType(parsed))
    }
    return byType(v)
  }
}

function digestText (v: unknown): string {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'string') return v
  if (typeof v === 'object' && v !== null) return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))
  return String(v)
}

/** The masker of one scalar value of class `cls` (null already handled by the caller). */
function leafMasker (input: CompileInput, cls: ValueClass): ValueMasker {
  const { fn, kind, options = {}, secrets } = input
  const sha = (v: unknown): unknown => {
    const text = digestText(v)
    const d = createHash('sha256').update(secrets.salt).update('\u0000').update(text).digest()
    return fromDigest(d, cls, v, kind, d.toString('hex'))
  }
  switch (fn) {
    case 'nullify': return () => null
    case 'default': return (v) => defaultValue(cls, kind, v)
    case 'redact': {
      const replacement = options.replacement ?? DEFAULT_REPLACEMENT
      return cls === 'string' || cls === 'unknown' ? () => replacement : (v) => defaultValue(cls, kind, v)
    }
    case 'sha256': case 'hash': return memo(sha)
    case 'token': return memo((v) => {
      const d = createHmac('sha256', secrets.tokenKey).update(digestText(v)).digest()
      return fromDigest(d, cls, v, kind, `tok_${d.toString('hex').slice(0, 32)}`)
    })
    case 'last4': case 'first4': {
      const last = fn === 'last4'
      if (cls === 'int' || cls === 'decimal') return (v) => keepDigits(v, last ? { last: 4 } : { first: 4 }, '0')
      if (cls !== 'string' && cls !== 'unknown') return (v) => defaultValue(cls, kind, v)
      return (v) => {
        const s = String(v)
        // BigQuery's rule: a value of 4 characters or fewer would be shown whole; hash it instead.
        if (s.length <= 4) return sha(v)
        return last ? HIDDEN + s.slice(-4) : s.slice(0, 4) + HIDDEN
      }
    }
    case 'email':
      if (cls !== 'string' && cls !== 'unknown') return (v) => defaultValue(cls, kind, v)
      return (v) => {
        const m = /^[^@\s]+@([^@\s]+\.[^@\s]+)$/.exec(String(v))
        return m === null ? sha(v) : `${HIDDEN}@${m[1] as string}`
      }
    case 'year':
      if (cls === 'date' || cls === 'datetime' || cls === 'timestamp' || cls === 'string') return (v) => toYear(v, cls, kind)
      return (v) => defaultValue(cls, kind, v)
    case 'partial': {
      const keep = { first: options.keep?.first ?? 0, last: options.keep?.last ?? 0 }
      const fill = (options.fill ?? '*').slice(0, 1) || '*'
      if (cls === 'int' || cls === 'decimal') return (v) => keepDigits(v, keep, '0')
      if (cls !== 'string' && cls !== 'unknown') return (v) => defaultValue(cls, kind, v)
      return (v) => partial(String(v), keep, fill)
    }
  }
}

/**
 * Digests cost microseconds each, and results repeat values (joins, dimensions): a small
 * per-column memo of text inputs pays for itself. Bounded, so memory stays per page.
 */
function memo (fn: ValueMasker): ValueMasker {
  const seen = new Map<string, unknown>()
  return (v) => {
    if (typeof v !== 'string') return fn(v)
    let out = seen.get(v)
    if (out === undefined) {
      out = fn(v)
      if (seen.size >= 4096) seen.clear()
      seen.set(v, out)
    }
    return out
  }
}

function partial (s: string, keep: { first?: number, last?: number }, fill: string): string {
  const first = keep.first ?? 0
  const last = keep.last ?? 0
  // Keeping as much as (or more than) the value is long would show it whole: hide it all.
  if (first + last >= s.length) return fill.repeat(s.length)
  return s.slice(0, first) + fill.repeat(s.length - first - last) + (last > 0 ? s.slice(-last) : '')
}

/** Integer masks keep the number a number: hidden digits become zeros (last4 keeps 4 digits). */
function keepDigits (v: unknown, keep: { first?: number, last?: number }, fill: string): unknown {
  const text = String(v)
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(text)
  if (m === null) return typeof v === 'number' ? 0 : '0'
  const digits = m[2] as string
  let out: string
  if (keep.last !== undefined && keep.first === undefined) out = digits.slice(-keep.last)
  else if (keep.first !== undefined && keep.last === undefined) out = digits.slice(0, keep.first)
  else out = partial(digits, keep, fill)
  const n = out.replace(/^0+(?=\d)/, '')
  if (typeof v === 'number') return Number(n)
  if (typeof v === 'bigint') return BigInt(n)
  return n
}
