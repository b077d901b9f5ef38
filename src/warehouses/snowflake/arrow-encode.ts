// Neutral rows (JSON rowset text, already masked) → an Arrow IPC stream in Snowflake's own
// result layout, for clients that read Arrow (the Python connector): FIXED as scaled Int64,
// REAL as Float64, DATE as Int32 days, TIME and TIMESTAMP_NTZ/LTZ as scaled Int64 (or
// {epoch, fraction} at nanosecond scale), TIMESTAMP_TZ as {epoch, [fraction,] timezone},
// BINARY as bytes, everything else as text; each field carries logicalType/scale/precision.
// A value that does not fit its column's Arrow type (a mask turned a number into text) makes
// the whole result fall back to JSON: the encoder returns undefined rather than guess.
import {
  Binary, Bool, Field, Float64, Int32, Int64, makeData, RecordBatch, Schema, Struct, Table, tableToIPC, Utf8,
  vectorFromArray, type DataType
} from 'apache-arrow'
import type { RowTypeEntry } from './upstream.js'

const NUMBER = /^-?\d+(\.\d+)?$/

class Unfit extends Error {}

/** "12.5" at scale 2 → 1250n; anything that is not a plain decimal is Unfit. */
export function unscaled (text: string, scale: number): bigint {
  if (!NUMBER.test(text)) throw new Unfit(text)
  const [whole = '0', fraction = ''] = text.split('.')
  if (fraction.length > scale && /[^0]/.test(fraction.slice(scale))) throw new Unfit(text)
  const negative = whole.startsWith('-')
  const digits = `${negative ? whole.slice(1) : whole}${fraction.slice(0, scale).padEnd(scale, '0')}`
  const value = BigInt(digits)
  return negative ? -value : value
}

const INT64_MAX = 2n ** 63n - 1n

function int64 (value: bigint): bigint {
  if (value > INT64_MAX || value < -INT64_MAX - 1n) throw new Unfit(String(value))
  return value
}

interface Column {
  type: DataType
  values: unknown[]
}

function column (entry: RowTypeEntry, texts: Array<string | null>): Column {
  const logical = entry.type.toUpperCase()
  const scale = entry.scale ?? 0
  const map = <T>(fn: (t: string) => T): Array<T | null> => texts.map((t) => (t === null ? null : fn(t)))
  switch (logical) {
    case 'FIXED':
      return { type: new Int64(), values: map((t) => int64(unscaled(t, scale))) }
    case 'REAL':
      return { type: new Float64(), values: map((t) => { const n = Number(t === 'inf' ? Infinity : t === '-inf' ? -Infinity : t); if (Number.isNaN(n) && t !== 'NaN') throw new Unfit(t); return n }) }
    case 'BOOLEAN':
      return { type: new Bool(), values: map((t) => { if (t !== '1' && t !== '0') throw new Unfit(t); return t === '1' }) }
    case 'DATE':
      return { type: new Int32(), values: map((t) => { if (!/^-?\d+$/.test(t)) throw new Unfit(t); return Number(t) }) }
    case 'TIME':
      return { type: new Int64(), values: map((t) => int64(unscaled(t, scale))) }
    case 'TIMESTAMP_NTZ':
    case 'TIMESTAMP_LTZ':
      if (scale < 9) return { type: new Int64(), values: map((t) => int64(unscaled(t, scale))) }
      return epochFraction(texts, false)
    case 'TIMESTAMP_TZ':
      return epochFraction(texts, true)
    case 'BINARY':
      return { type: new Binary(), values: map((t) => { if (!/^([0-9A-Fa-f]{2})*$/.test(t)) throw new Unfit(t); return Buffer.from(t, 'hex') }) }
    default:
      return { type: new Utf8(), values: texts }
  }
}

/** {epoch seconds, fraction nanoseconds[, timezone]} from "seconds.fraction[ tz]". */
function epochFraction (texts: Array<string | null>, withZone: boolean): Column {
  const fields = [new Field('epoch', new Int64(), false), new Field('fraction', new Int32(), false)]
  if (withZone) fields.push(new Field('timezone', new Int32(), false))
  const values = texts.map((t) => {
    if (t === null) return null
    const [value = '', zone] = t.split(' ')
    if (withZone && (zone === undefined || !/^\d+$/.test(zone))) throw new Unfit(t)
    const nanos = unscaled(value, 9)
    // Floor division: a negative instant has a positive fraction (-0.5 s = epoch -1 + 0.5 s).
    let epoch = nanos / 1_000_000_000n
    let fraction = nanos % 1_000_000_000n
    if (fraction < 0n) {
      epoch -= 1n
      fraction += 1_000_000_000n
    }
    const row: Record<string, unknown> = { epoch: int64(epoch), fraction: Number(fraction) }
    if (withZone) row.timezone = Number(zone)
    return row
  })
  return { type: new Struct(fields), values }
}

/** The IPC stream for these rows, or undefined when a value does not fit its column type. */
export function arrowFromRows (rowtype: RowTypeEntry[], rows: Array<Array<string | null>>): Uint8Array | undefined {
  try {
    const fields: Field[] = []
    const children = rowtype.map((entry, c) => {
      const col = column(entry, rows.map((r) => r[c] ?? null))
      const scale = entry.type.toUpperCase() === 'TIMESTAMP_TZ' ? 9 : (entry.scale ?? 0)
      fields.push(new Field(entry.name, col.type, true, new Map([
        ['logicalType', entry.type.toUpperCase()],
        ['scale', String(scale)],
        ['precision', String(entry.precision ?? 38)],
        ['charLength', String(entry.length ?? 0)],
        ['byteLength', String(entry.byteLength ?? 0)]
      ])))
      return vectorFromArray(col.values, col.type).data[0]
    })
    const schema = new Schema(fields)
    const data = makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children: children.map((d) => d!) })
    return tableToIPC(new Table([new RecordBatch(schema, data)]), 'stream')
  } catch (err) {
    if (err instanceof Unfit) return undefined
    throw err
  }
}
