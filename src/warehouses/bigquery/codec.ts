// BigQuery `f/v` rows ↔ the neutral result (DESIGN.md §1). Masking never sees `f/v`.
//
// Neutral values, by BigQuery type:
//   STRING, JSON, GEOGRAPHY, DATE, DATETIME, TIME, INTERVAL, RANGE → string (BigQuery's text)
//   INTEGER/INT64, NUMERIC, BIGNUMERIC → string (exact; a JS number would lose digits)
//   FLOAT/FLOAT64 → number (NaN and ±Infinity included); BOOLEAN → boolean
//   BYTES → Buffer; TIMESTAMP → ISO 8601 UTC string with microseconds (see timestamps.ts)
//   RECORD/STRUCT → plain object keyed by field name; REPEATED → array; NULL → null
//
// Encoding back is where "a masked value keeps its declared type valid" is enforced: a value the
// type cannot carry (a mask's "***" in an INTEGER, a null in a REQUIRED column, a string where an
// array was) becomes null for NULLABLE, the type's zero value for REQUIRED and for array
// elements, and [] for REPEATED, so no client library fails on a masked row.
import type { ColumnMeta } from '../../pipeline/types.js'
import { microsToIso, microsToSeconds, neutralTimestampToMicros, wireTimestampToMicros } from './timestamps.js'
import type { TableCell, TableFieldSchema, TableRow } from './wire.js'

export interface DecodeOptions {
  /** The upstream was asked for int64-microsecond timestamps (Sluice always asks). */
  int64Timestamps: boolean
}

/** How TIMESTAMP values are written: float seconds (the API default), int64 microseconds
 * (`formatOptions.useInt64Timestamp`) or ISO text (`formatOptions.timestampOutputFormat`). */
export type TimestampForm = 'float' | 'int64' | 'iso'

export interface EncodeOptions {
  timestamps: TimestampForm
}

type Kind = 'string' | 'int' | 'decimal' | 'float' | 'bool' | 'bytes' | 'timestamp' | 'date' | 'datetime' | 'time' | 'json' | 'record'

const KINDS: Record<string, Kind> = {
  STRING: 'string',
  GEOGRAPHY: 'string',
  INTERVAL: 'string',
  RANGE: 'string',
  JSON: 'json',
  INTEGER: 'int',
  INT64: 'int',
  NUMERIC: 'decimal',
  DECIMAL: 'decimal',
  BIGNUMERIC: 'decimal',
  BIGDECIMAL: 'decimal',
  FLOAT: 'float',
  FLOAT64: 'float',
  BOOLEAN: 'bool',
  BOOL: 'bool',
  BYTES: 'bytes',
  TIMESTAMP: 'timestamp',
  DATE: 'date',
  DATETIME: 'datetime',
  TIME: 'time',
  RECORD: 'record',
  STRUCT: 'record'
}

/** Unknown types are carried as text: the safest reading of a value we cannot interpret. */
function kindOf (field: TableFieldSchema): Kind {
  return KINDS[field.type.toUpperCase()] ?? 'string'
}

// ── schema ─────────────────────────────────────────────────────────────────────────────────

export function columnsOf (fields: TableFieldSchema[] | undefined): ColumnMeta[] {
  return (fields ?? []).map(function toColumn (field): ColumnMeta {
    const mode = field.mode ?? 'NULLABLE'
    const column: ColumnMeta = { name: field.name, type: field.type, mode, nullable: mode === 'NULLABLE' }
    if (field.fields !== undefined) column.fields = columnsOf(field.fields)
    return column
  })
}

// ── decode: wire → neutral ───────────────────────────────────────────────────────────────────

// A large result is decoded cell by cell: each field's decoder is built once per schema (its
// kind, mode and nested fields resolved then), not looked up again for every value.
type CellCodec = (v: unknown) => unknown
const decoders = new WeakMap<TableFieldSchema[], { int64: CellCodec[], float: CellCodec[] }>()

function fieldDecoders (fields: TableFieldSchema[], options: DecodeOptions): CellCodec[] {
  let cached = decoders.get(fields)
  if (cached === undefined) {
    cached = { int64: fields.map((f) => cellDecoder(f, true)), float: fields.map((f) => cellDecoder(f, false)) }
    decoders.set(fields, cached)
  }
  return options.int64Timestamps ? cached.int64 : cached.float
}

export function decodeRows (fields: TableFieldSchema[], rows: TableRow[] | undefined, options: DecodeOptions): unknown[][] {
  const fns = fieldDecoders(fields, options)
  return (rows ?? []).map((row) => decodeRecord(fns, row))
}

function decodeRecord (fns: CellCodec[], row: TableRow): unknown[] {
  const cells: TableCell[] = Array.isArray(row?.f) ? row.f : []
  const out: unknown[] = []
  for (let i = 0; i < fns.length; i++) out.push((fns[i] as CellCodec)(cells[i]?.v ?? null))
  return out
}

function cellDecoder (field: TableFieldSchema, int64Timestamps: boolean): CellCodec {
  const scalar = scalarDecoder(field, int64Timestamps)
  if (field.mode === 'REPEATED') {
    return (v) => Array.isArray(v) ? v.map((cell: TableCell) => scalar(cell?.v ?? null)) : []
  }
  return scalar
}

function scalarDecoder (field: TableFieldSchema, int64Timestamps: boolean): CellCodec {
  const kind = kindOf(field)
  if (kind === 'record') {
    const subFields = field.fields ?? []
    const fns = subFields.map((f) => cellDecoder(f, int64Timestamps))
    return (v) => {
      if (v === null || v === undefined) return null
      const values = decodeRecord(fns, v as TableRow)
      return Object.fromEntries(subFields.map((f, i) => [f.name, values[i]]))
    }
  }
  const textOf = (v: unknown): string => typeof v === 'string' ? v : JSON.stringify(v)
  switch (kind) {
    case 'float': return (v) => v === null || v === undefined ? null : Number(textOf(v))
    case 'bool': return (v) => v === null || v === undefined ? null : textOf(v).toLowerCase() === 'true'
    case 'bytes': return (v) => v === null || v === undefined ? null : Buffer.from(textOf(v), 'base64')
    case 'timestamp': return (v) => {
      if (v === null || v === undefined) return null
      const text = textOf(v)
      const micros = wireTimestampToMicros(text, int64Timestamps)
      // A form we cannot read is kept as text rather than guessed at.
      return micros === undefined ? text : microsToIso(micros)
    }
    default: return (v) => v === null || v === undefined ? null : textOf(v)
  }
}

// ── encode: neutral → wire ────────────────────────────────────────────────────────────────────

const encoders = new WeakMap<TableFieldSchema[], Map<TimestampForm, CellCodec[]>>()

export function encodeRows (fields: TableFieldSchema[], rows: unknown[][], options: EncodeOptions): TableRow[] {
  let byForm = encoders.get(fields)
  if (byForm === undefined) encoders.set(fields, byForm = new Map())
  let fns = byForm.get(options.timestamps)
  if (fns === undefined) byForm.set(options.timestamps, fns = fields.map((f) => cellEncoder(f, options)))
  const n = fns.length
  return rows.map((row) => {
    const f: TableCell[] = []
    for (let i = 0; i < n; i++) f.push({ v: (fns[i] as CellCodec)(row[i]) })
    return { f }
  })
}

function cellEncoder (field: TableFieldSchema, options: EncodeOptions): CellCodec {
  const scalar = scalarEncoder(field, options)
  if (field.mode === 'REPEATED') {
    // Array elements cannot be NULL in BigQuery; an unusable element becomes the zero value.
    return (value) => Array.isArray(value) ? value.map((element) => ({ v: scalar(element) ?? zeroValue(field) })) : []
  }
  const required = field.mode === 'REQUIRED'
  return (value) => {
    const encoded = value === null || value === undefined ? undefined : scalar(value)
    if (encoded !== undefined) return encoded
    return required ? zeroValue(field) : null
  }
}

const INT_TEXT = /^[+-]?\d+$/
const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/
const DATETIME_TEXT = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/
const TIME_TEXT = /^\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/
const FLOAT_WORDS: Record<string, string> = { NaN: 'NaN', Infinity: 'Infinity', '-Infinity': '-Infinity' }

/** The wire text for a value of this field's type, or undefined when the value cannot be one. */
function scalarEncoder (field: TableFieldSchema, options: EncodeOptions): CellCodec {
  const orUndefined = (fn: CellCodec): CellCodec => (value) => value === null || value === undefined ? undefined : fn(value)
  switch (kindOf(field)) {
    case 'record': {
      const fields = field.fields ?? []
      const fns = fields.map((f) => cellEncoder(f, options))
      return orUndefined((value) => {
        if (Array.isArray(value)) return { f: fns.map((fn, i) => ({ v: fn(value[i]) })) }
        if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return undefined
        const record = value as Record<string, unknown>
        return { f: fns.map((fn, i) => ({ v: fn(record[(fields[i] as TableFieldSchema).name]) })) }
      })
    }
    case 'string': return orUndefined(scalarText)
    case 'json': return orUndefined((value) => typeof value === 'string' ? value : safeJson(value))
    case 'int': return orUndefined((value) => {
      const text = numericText(value)
      return text !== undefined && INT_TEXT.test(text) ? text : undefined
    })
    case 'decimal': return orUndefined((value) => {
      const text = numericText(value)
      return text !== undefined && DECIMAL_TEXT.test(text) ? text : undefined
    })
    case 'float': return orUndefined((value) => {
      if (typeof value === 'number') return FLOAT_WORDS[String(value)] ?? String(value)
      const text = numericText(value)
      return text !== undefined && (DECIMAL_TEXT.test(text) || text in FLOAT_WORDS) ? text : undefined
    })
    case 'bool': return orUndefined((value) => {
      if (typeof value === 'boolean') return String(value)
      return value === 'true' || value === 'false' ? value : undefined
    })
    case 'bytes': return orUndefined((value) => {
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
      // A mask's text in a BYTES column stays bytes: the UTF-8 of that text.
      return typeof value === 'string' ? Buffer.from(value, 'utf8').toString('base64') : undefined
    })
    case 'timestamp': return orUndefined((value) => {
      const micros = neutralTimestampToMicros(value)
      if (micros === undefined) return undefined
      if (options.timestamps === 'int64') return micros.toString()
      return options.timestamps === 'iso' ? microsToIso(micros) : microsToSeconds(micros)
    })
    case 'date': return orUndefined((value) => typeof value === 'string' && DATE_TEXT.test(value) ? value : undefined)
    case 'datetime': return orUndefined((value) => typeof value === 'string' && DATETIME_TEXT.test(value) ? value : undefined)
    case 'time': return orUndefined((value) => typeof value === 'string' && TIME_TEXT.test(value) ? value : undefined)
  }
}

function scalarText (value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8')
  return undefined
}

function numericText (value: unknown): string | undefined {
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined
  return typeof value === 'string' ? value.trim() : undefined
}

function safeJson (value: unknown): string | undefined {
  try {
    return JSON.stringify(value)
  } catch {
    return undefined
  }
}

const TEXT_ZERO: Record<string, string> = {
  GEOGRAPHY: 'GEOMETRYCOLLECTION EMPTY',
  INTERVAL: '0-0 0 0:0:0',
  RANGE: '[UNBOUNDED, UNBOUNDED)'
}

/** The value a REQUIRED column (or an array element) gets when its own value cannot be sent. */
export function zeroValue (field: TableFieldSchema): unknown {
  switch (kindOf(field)) {
    case 'record': return { f: (field.fields ?? []).map((f) => ({ v: f.mode === 'REPEATED' ? [] : f.mode === 'REQUIRED' ? zeroValue(f) : null })) }
    case 'int': case 'decimal': case 'float': case 'timestamp': return '0'
    case 'bool': return 'false'
    case 'date': return '1970-01-01'
    case 'datetime': return '1970-01-01T00:00:00'
    case 'time': return '00:00:00'
    case 'json': return 'null'
    default: return TEXT_ZERO[field.type.toUpperCase()] ?? ''
  }
}
