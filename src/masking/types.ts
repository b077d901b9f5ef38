// Warehouse type names → the small set of value classes mask functions reason about, and each
// class's default value in the neutral representation the codecs produce:
//   Snowflake: every value is the JSON rowset's text (FIXED "12.50", DATE = days since the epoch,
//     TIMESTAMP_* = "seconds.fraction[ offset]", BOOLEAN "1"/"0", VARIANT = JSON text);
//   BigQuery: INT64/NUMERIC/DATE/DATETIME/TIME/TIMESTAMP as text, FLOAT64 number, BOOL boolean,
//     BYTES Buffer, RECORD object, REPEATED array;
//   Postgres: text or JS values, whichever the codec gives.
// A masked value keeps its column's class *and* the representation of the value it replaces
// (a number stays a number, text stays text), so every codec can encode it back.
import type { ColumnMeta } from '../pipeline/types.js'

export type ValueClass =
  | 'string' | 'int' | 'decimal' | 'float' | 'bool' | 'bytes'
  | 'date' | 'time' | 'datetime' | 'timestamp' | 'json' | 'record' | 'geography' | 'interval' | 'unknown'

export type WarehouseKind = 'snowflake' | 'bigquery' | 'postgres'

const CLASSES: Record<string, ValueClass> = {
  // text
  STRING: 'string', TEXT: 'string', VARCHAR: 'string', CHAR: 'string', CHARACTER: 'string', BPCHAR: 'string', NAME: 'string',
  'CHARACTER VARYING': 'string', CITEXT: 'string', UUID: 'string', INET: 'string', CIDR: 'string', ENUM: 'string',
  // integers
  INT64: 'int', INTEGER: 'int', INT: 'int', INT2: 'int', INT4: 'int', INT8: 'int', SMALLINT: 'int', BIGINT: 'int',
  TINYINT: 'int', BYTEINT: 'int', SERIAL: 'int', BIGSERIAL: 'int', OID: 'int',
  // exact decimals (Snowflake FIXED may carry a scale: still decimal text)
  NUMERIC: 'decimal', DECIMAL: 'decimal', NUMBER: 'decimal', FIXED: 'decimal', BIGNUMERIC: 'decimal', BIGDECIMAL: 'decimal', MONEY: 'decimal',
  // floats
  FLOAT: 'float', FLOAT64: 'float', FLOAT4: 'float', FLOAT8: 'float', REAL: 'float', DOUBLE: 'float', 'DOUBLE PRECISION': 'float',
  BOOLEAN: 'bool', BOOL: 'bool',
  BYTES: 'bytes', BINARY: 'bytes', VARBINARY: 'bytes', BYTEA: 'bytes',
  DATE: 'date',
  TIME: 'time', TIMETZ: 'time',
  DATETIME: 'datetime', TIMESTAMP_NTZ: 'datetime', TIMESTAMP: 'timestamp',
  TIMESTAMP_LTZ: 'timestamp', TIMESTAMP_TZ: 'timestamp', TIMESTAMPTZ: 'timestamp',
  JSON: 'json', JSONB: 'json', VARIANT: 'json', OBJECT: 'json', ARRAY: 'json', MAP: 'json',
  RECORD: 'record', STRUCT: 'record',
  GEOGRAPHY: 'geography', GEOMETRY: 'geography',
  INTERVAL: 'interval', RANGE: 'unknown'
}

/** The class of a column; Postgres array types (`_int4`, `int4[]`) are classed by element. */
export function classOf (column: Pick<ColumnMeta, 'type'>, kind?: WarehouseKind): ValueClass {
  let t = column.type.trim().toUpperCase().replace(/\(.*\)$/, '')
  if (t.endsWith('[]')) t = t.slice(0, -2)
  else if (kind === 'postgres' && t.startsWith('_')) t = t.slice(1)
  if (t.startsWith('TIMESTAMP') && t.includes('WITH TIME ZONE')) return 'timestamp'
  if (t.startsWith('TIMESTAMP') && t.includes('WITHOUT')) return 'datetime'
  // BigQuery TIMESTAMP is an instant; Postgres / Snowflake plain TIMESTAMP is wall-clock time.
  if (t === 'TIMESTAMP' && kind !== undefined && kind !== 'bigquery') return 'datetime'
  if (t === 'FLOAT' && kind === 'snowflake') return 'float'
  return CLASSES[t] ?? (t.startsWith('VARCHAR') || t.startsWith('CHAR') ? 'string' : 'unknown')
}

/** Columns whose value is an array in the neutral result (REPEATED, Postgres arrays). */
export function isRepeated (column: ColumnMeta, kind?: WarehouseKind): boolean {
  if (column.mode === 'REPEATED') return true
  const t = column.type.trim()
  return t.endsWith('[]') || (kind === 'postgres' && t.startsWith('_'))
}

/** A REQUIRED column never becomes NULL: the type default stands in. */
export function isRequired (column: ColumnMeta): boolean {
  return column.mode === 'REQUIRED' || column.nullable === false
}

/** BigQuery's DEFAULT_MASKING_VALUE set, in each warehouse's neutral representation. */
export function defaultValue (cls: ValueClass, kind: WarehouseKind | undefined, like?: unknown): unknown {
  const sf = kind === 'snowflake'
  switch (cls) {
    case 'string': return ''
    case 'int': case 'decimal': return typeof like === 'number' ? 0 : typeof like === 'bigint' ? 0n : '0'
    case 'float': return typeof like === 'string' ? '0' : 0
    case 'bool':
      if (typeof like === 'string') return like === 'true' || like === 'false' ? 'false' : like === 't' || like === 'f' ? 'f' : '0'
      return sf ? '0' : false
    case 'bytes': return typeof like === 'string' ? '' : Buffer.alloc(0)
    case 'date': return sf || isEpochText(like) ? '0' : '1970-01-01'
    case 'time': return sf || isEpochText(like) ? '0.000000000' : '00:00:00'
    case 'datetime':
      if (sf || isEpochText(like)) return '0.000000000'
      return kind === 'postgres' ? '1970-01-01 00:00:00' : '1970-01-01T00:00:00'
    case 'timestamp':
      if (typeof like === 'string' && /^\d+(\.\d+)? \d+$/.test(like)) return '0.000000000 1440'
      if (sf || isEpochText(like)) return '0.000000000'
      return kind === 'postgres' ? '1970-01-01 00:00:00+00' : '1970-01-01T00:00:00.000000Z'
    case 'json': return typeof like === 'string' || sf ? 'null' : null
    case 'geography': return 'POINT(0 0)'
    case 'interval': return kind === 'postgres' ? '00:00:00' : '0-0 0 0:0:0'
    case 'record': return {}
    default: return typeof like === 'number' ? 0 : typeof like === 'boolean' ? false : ''
  }
}

/** Snowflake's epoch text form ("19000", "1700000000.123000000"). */
export function isEpochText (v: unknown): boolean {
  return typeof v === 'string' && /^-?\d+(\.\d+)?( \d+)?$/.test(v)
}
