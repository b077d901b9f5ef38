// Arrow codec: Snowflake's `rowsetBase64` / Arrow result chunks → neutral rows in the JSON
// rowset's text encoding (see rowset.ts), so masking and every client see one representation.
// Snowflake's Arrow layout (per the Python connector's ArrowIterator): FIXED as scaled
// integers (or Decimal), DATE as days, TIME as scaled integers, TIMESTAMP_* as scaled int64 or
// a struct {epoch, fraction[, timezone]}, BINARY as bytes; the column's `scale` is in the
// field metadata and in the rowtype.
import { tableFromIPC, Type, type Vector } from 'apache-arrow'
import type { RowTypeEntry } from './query-data.js'

/** Decodes one IPC stream (rowsetBase64 or a chunk body); an empty input is zero rows. */
export function rowsFromArrow (ipc: Uint8Array, rowtype: RowTypeEntry[]): unknown[][] {
  if (ipc.byteLength === 0) return []
  const table = tableFromIPC(ipc)
  const columns: Array<(i: number) => string | null> = []
  for (let c = 0; c < table.numCols; c++) {
    const vector = table.getChildAt(c)
    const field = table.schema.fields[c]
    if (vector === null || field === undefined) continue
    const meta = field.metadata
    const logical = (meta.get('logicalType') ?? rowtype[c]?.type ?? '').toUpperCase()
    const scale = Number(meta.get('scale') ?? rowtype[c]?.scale ?? 0)
    columns.push(reader(vector, logical, scale))
  }
  const rows: unknown[][] = new Array(table.numRows)
  for (let i = 0; i < table.numRows; i++) rows[i] = columns.map((read) => read(i))
  return rows
}

function reader (vector: Vector, logical: string, scale: number): (i: number) => string | null {
  const typeId = vector.type.typeId
  const nullable = (read: (i: number) => string): (i: number) => string | null =>
    (i) => (vector.isValid(i) ? read(i) : null)

  if (typeId === Type.Struct) {
    // A null timestamp may be a valid struct with a null epoch (fakesnow writes them so): null
    // either way, never the epoch's 0 (1970-01-01).
    const epoch = (vector as unknown as { getChild: (name: string) => Vector | null }).getChild('epoch')
    const read = structReader(vector, logical, scale)
    return (i) => (vector.isValid(i) && (epoch === null || epoch.isValid(i)) ? read(i) : null)
  }
  switch (logical) {
    case 'FIXED':
      if (typeId === Type.Decimal) {
        const decimalScale = (vector.type as { scale: number }).scale
        return nullable((i) => scaled(BigInt(String(vector.get(i))), decimalScale))
      }
      if (typeId === Type.Float) return nullable((i) => String(vector.get(i)))
      return nullable((i) => scaled(BigInt(vector.get(i) as number | bigint), scale))
    case 'DATE':
      // Date32 decodes to epoch milliseconds; Snowflake's own layout is a plain Int32 of days.
      if (typeId === Type.Date) return nullable((i) => String(Math.floor(Number(vector.get(i)) / 86_400_000)))
      return nullable((i) => String(vector.get(i)))
    case 'TIME':
    case 'TIMESTAMP_NTZ':
    case 'TIMESTAMP_LTZ':
      return nullable((i) => scaled(BigInt(vector.get(i) as number | bigint), scale))
    case 'TIMESTAMP_TZ':
      return nullable((i) => scaled(BigInt(vector.get(i) as number | bigint), scale))
    case 'BOOLEAN':
      return nullable((i) => (vector.get(i) === true ? '1' : '0'))
    case 'BINARY':
      return nullable((i) => Buffer.from(vector.get(i) as Uint8Array).toString('hex').toUpperCase())
    case 'REAL':
      return nullable((i) => realText(Number(vector.get(i))))
    default:
      return nullable((i) => textOf(vector.get(i)))
  }
}

/** TIMESTAMP_* as {epoch seconds, fraction nanoseconds[, timezone minutes + 1440]}. */
function structReader (vector: Vector, logical: string, scale: number): (i: number) => string {
  const struct = vector as unknown as { getChild: (name: string) => Vector | null }
  const epoch = struct.getChild('epoch')
  const fraction = struct.getChild('fraction')
  const timezone = struct.getChild('timezone')
  return (i) => {
    const seconds = BigInt(epoch?.get(i) as number | bigint ?? 0)
    const nanos = BigInt(fraction?.get(i) as number ?? 0)
    // With a fraction child, epoch is whole seconds; without one it is already scaled.
    const value = fraction === null ? seconds : seconds * 10n ** BigInt(scale) + nanos / 10n ** BigInt(9 - scale)
    const text = scaled(value, scale)
    if (logical === 'TIMESTAMP_TZ' && timezone !== null) return `${text} ${String(timezone.get(i))}`
    return text
  }
}

/** An unscaled integer as decimal text with `scale` fraction digits ("-150", 2 → "-1.50"). */
export function scaled (value: bigint, scale: number): string {
  if (scale <= 0) return value.toString()
  const negative = value < 0n
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0')
  const text = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
  return negative ? `-${text}` : text
}

function realText (n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return 'inf'
  if (n === -Infinity) return '-inf'
  return String(n)
}

function textOf (value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex').toUpperCase()
  return JSON.stringify(value)
}
