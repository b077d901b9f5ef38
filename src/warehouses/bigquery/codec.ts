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

export function decodeRows (fields: TableFieldSchema[], rows: TableRow[] | undefined, options: DecodeOptions): unknown[][] {
  return (rows ?? []).map((row) => decodeRecord(fields, row, options))
}

function decodeRecord (fields: TableFieldSchema[], row: TableRow, options: DecodeOptions): unknown[] {
  const cells: TableCell[] = Array.isArray(row?.f) ? row.f : []
  return fields.map((field, i) => decodeCell(field, cells[i]?.v ?? null, options))
}

function decodeCell (field: TableFieldSchema, v: unknown, options: DecodeOptions): unknown {
  if (field.mode === 'REPEATED') {
    if (!Array.isArray(v)) return []
    return v.map((cell: TableCell) => decodeScalar(field, cell?.v ?? null, options))
  }
  return decodeScalar(field, v, options)
}

function decodeScalar (field: TableFieldSchema, v: unknown, options: DecodeOptions): unknown {
  if (v === null || v === undefined) return null
  const kind = kindOf(field)
  if (kind === 'record') {
    const values = decodeRecord(field.fields ?? [], v as TableRow, options)
    return Object.fromEntries((field.fields ?? []).map((f, i) => [f.name, values[i]]))
  }
  const text = typeof v === 'string' ? v : JSON.stringify(v)
  switch (kind) {
    case 'float': return Number(text)
    case 'bool': return text.toLowerCase() === 'true'
    case 'bytes': return Buffer.from(text, 'base64')
    case 'timestamp': {
      const micros = wireTimestampToMicros(text, options.int64Timestamps)
      // A form we cannot read is kept as text rather than guessed at.
      return micros === undefined ? text : microsToIso(micros)
    }
    default: return text
  }
}

// ── encode: neutral → wire ────────────────────────────────────────────────────────────────────

export function encodeRows (fields: TableFieldSchema[], rows: unknown[][], options: EncodeOptions): TableRow[] {
  return rows.map((row) => ({ f: fields.map((field, i) => ({ v: encodeCell(field, row[i], options) })) }))
}

function encodeCell (field: TableFieldSchema, value: unknown, options: EncodeOptions): unknown {
  if (field.mode === 'REPEATED') {
    if (!Array.isArray(value)) return []
    // Array elements cannot be NULL in BigQuery; an unusable element becomes the zero value.
    return value.map((element) => ({ v: encodeScalar(field, element, options) ?? zeroValue(field) }))
  }
  const encoded = value === null || value === undefined ? undefined : encodeScalar(field, value, options)
  if (encoded !== undefined) return encoded
  return field.mode === 'REQUIRED' ? zeroValue(field) : null
}

const INT_TEXT = /^[+-]?\d+$/
const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/
const DATETIME_TEXT = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/
const TIME_TEXT = /^\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/
const FLOAT_WORDS: Record<string, string> = { NaN: 'NaN', Infinity: 'Infinity', '-Infinity': '-Infinity' }

/** The wire text for a value of this field's type, or undefined when the value cannot be one. */
function encodeScalar (field: TableFieldSchema, value: unknown, options: EncodeOptions): unknown {
  if (value === null || value === undefined) return undefined
  switch (kindOf(field)) {
    case 'record': return encodeRecord(field, value, options)
    case 'string': return scalarText(value)
    case 'json': return typeof value === 'string' ? value : safeJson(value)
    case 'int': {
      const text = numericText(value)
      return text !== undefined && INT_TEXT.test(text) ? text : undefined
    }
    case 'decimal': {
      const text = numericText(value)
      return text !== undefined && DECIMAL_TEXT.test(text) ? text : undefined
    }
    case 'float': {
      if (typeof value === 'number') return FLOAT_WORDS[String(value)] ?? String(value)
      const text = numericText(value)
      return text !== undefined && (DECIMAL_TEXT.test(text) || text in FLOAT_WORDS) ? text : undefined
    }
    case 'bool':
      if (typeof value === 'boolean') return String(value)
      return value === 'true' || value === 'false' ? value : undefined
    case 'bytes':
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
      // A mask's text in a BYTES column stays bytes: the UTF-8 of that text.
      return typeof value === 'string' ? Buffer.from(value, 'utf8').toString('base64') : undefined
    case 'timestamp': {
      const micros = neutralTimestampToMicros(value)
      if (micros === undefined) return undefined
      if (options.timestamps === 'int64') return micros.toString()
      return options.timestamps === 'iso' ? microsToIso(micros) : microsToSeconds(micros)
    }
    case 'date': return typeof value === 'string' && DATE_TEXT.test(value) ? value : undefined
    case 'datetime': return typeof value === 'string' && DATETIME_TEXT.test(value) ? value : undefined
    case 'time': return typeof value === 'string' && TIME_TEXT.test(value) ? value : undefined
  }
}

function encodeRecord (field: TableFieldSchema, value: unknown, options: EncodeOptions): TableRow | undefined {
  const fields = field.fields ?? []
  if (Array.isArray(value)) return { f: fields.map((f, i) => ({ v: encodeCell(f, value[i], options) })) }
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return undefined
  const record = value as Record<string, unknown>
  return { f: fields.map((f) => ({ v: encodeCell(f, record[f.name], options) })) }
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
