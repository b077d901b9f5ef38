// Neutral rows (JSON rowset text, already masked) → an Arrow IPC stream in Snowflake's own
// result layout, for the clients that read Arrow. The layout is what the drivers' Arrow readers
// expect of Snowflake (snowflake-connector-python's ArrowIterator, and the JSON→Arrow conversion
// Snowflake's own drivers use), so fetchall(), fetch_pandas_all() and fetch_arrow_all() give the
// same values and types as from Snowflake:
//   FIXED          the narrowest of Int8/16/32/64 that holds the batch's unscaled values (what
//                  Snowflake's SB1…SB8 are; pandas sees int8 for small numbers, as from Snowflake),
//                  Decimal128 past int64; the scale in the field metadata. One result served in
//                  several pieces (inline rowset and chunks) takes the width from the declared
//                  precision instead (stableWidths), so every piece has the same schema: see below
//   REAL           Float64            BOOLEAN  Bool          DATE  Date32 (days)
//   TIME           Int32 (scale ≤ 4) or Int64, scaled
//   TIMESTAMP_NTZ/LTZ  Int64 scaled (scale ≤ 7), else {epoch seconds Int64, fraction ns Int32}
//   TIMESTAMP_TZ   {epoch scaled Int64, timezone Int32} (scale ≤ 3, byteLength 8), else
//                  {epoch seconds, fraction ns, timezone} (byteLength 16); timezone is minutes + 1440
//   BINARY         Binary             TEXT, VARIANT, OBJECT, ARRAY  Utf8 (JSON text)
// Every field carries Snowflake's metadata (logicalType, precision, scale, charLength, byteLength,
// finalType; physicalType for FIXED). A value that does not fit its column's Arrow type (a mask
// turned a number into text), or a type this encoder does not lay out, makes the whole result
// fall back to JSON: the encoder returns undefined rather than guess.
import {
  Binary, Bool, DateDay, Decimal, Field, Float64, Int16, Int32, Int64, Int8, makeData, RecordBatch, Schema, Struct, Utf8,
  type Data, type DataType
} from 'apache-arrow'
import { ipcStream } from './arrow-ipc.js'
import type { RowTypeEntry } from './query-data.js'

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

type Texts = Array<string | null>

/** One column: its Arrow type, its data, and the metadata entries that depend on the values. */
interface Column {
  type: DataType
  data: Data
  meta?: Record<string, string>
}

/** Validity bitmap and null count; undefined bitmap when every value is present. */
function validity (texts: Texts): { nullBitmap: Uint8Array | undefined, nullCount: number } {
  const nulls = texts.reduce((n, t) => (t === null ? n + 1 : n), 0)
  if (nulls === 0) return { nullBitmap: undefined, nullCount: 0 }
  const bitmap = new Uint8Array(Math.ceil(texts.length / 8))
  texts.forEach((t, i) => { if (t !== null) bitmap[i >> 3]! |= 1 << (i & 7) })
  return { nullBitmap: bitmap, nullCount: nulls }
}

function primitive<T extends DataType> (type: T, texts: Texts, values: T['TArray']): Column {
  return { type, data: makeData({ type, length: texts.length, data: values, ...validity(texts) } as never) as Data }
}

/** A struct's child: no nulls of its own (a null value is the struct's), zeros in their place. */
function child<T extends DataType> (type: T, values: T['TArray']): Column {
  return { type, data: makeData({ type, length: values.length, data: values, nullCount: 0 } as never) as Data }
}

/** `digits`: the most decimal digits every value of the width holds (NUMBER(p) fits when p ≤ digits). */
const WIDTHS = [
  { bits: 8n, digits: 2, type: () => new Int8(), array: (n: number) => new Int8Array(n), physical: 'SB1' },
  { bits: 16n, digits: 4, type: () => new Int16(), array: (n: number) => new Int16Array(n), physical: 'SB2' },
  { bits: 32n, digits: 9, type: () => new Int32(), array: (n: number) => new Int32Array(n), physical: 'SB4' }
] as const

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const MAX_38_DIGITS = 10n ** 38n - 1n

/**
 * `stable`: the width comes from the declared precision, not from this batch's values, so every
 * piece of one result has the same Arrow schema. snowflake-connector-python 4+ (its Rust core)
 * reads a chunked result as ONE Arrow stream whose schema is the first piece's and hands later
 * chunks' arrays through unchanged: a chunk in Int32 after an Int16 inline rowset is read as
 * Int16, every other ID zero, without an error. NUMBER(p ≤ 18) gets the narrowest width that
 * holds p digits; wider declarations (NUMBER(38,0), Snowflake's INTEGER) get Int64, and a value
 * past 64 bits does not fit (the first page then falls back to JSON; a later chunk fails loudly
 * at the driver rather than being misread).
 */
function fixed (texts: Texts, scale: number, precision: number, stable: boolean): Column {
  const values = texts.map((t) => (t === null ? 0n : unscaled(t, scale)))
  let min = 0n
  let max = 0n
  for (const v of values) {
    if (v < min) min = v
    if (v > max) max = v
  }
  for (const w of WIDTHS) {
    const limit = 2n ** (w.bits - 1n)
    if (stable && precision > w.digits) continue
    if (min >= -limit && max < limit) {
      const array = w.array(values.length)
      values.forEach((v, i) => { array[i] = Number(v) })
      return { ...primitive(w.type(), texts, array), meta: { physicalType: w.physical } }
    }
    if (stable) throw new Unfit(String(min < -limit ? min : max))
  }
  if (min >= INT64_MIN && max <= INT64_MAX) {
    return { ...primitive(new Int64(), texts, BigInt64Array.from(values)), meta: { physicalType: 'SB8' } }
  }
  if (stable) throw new Unfit(String(min < INT64_MIN ? min : max))
  if (min < -MAX_38_DIGITS || max > MAX_38_DIGITS) throw new Unfit(String(max))
  // Decimal128: four little-endian 32-bit words of the two's complement value.
  const words = new Uint32Array(values.length * 4)
  values.forEach((v, i) => {
    let u = BigInt.asUintN(128, v)
    for (let w = 0; w < 4; w++) {
      words[i * 4 + w] = Number(u & 0xFFFFFFFFn)
      u >>= 32n
    }
  })
  return { ...primitive(new Decimal(scale, precision, 128), texts, words), meta: { physicalType: 'SB16' } }
}

function real (texts: Texts): Column {
  const values = Float64Array.from(texts, (t) => {
    if (t === null) return 0
    const n = t === 'inf' ? Infinity : t === '-inf' ? -Infinity : Number(t)
    if (Number.isNaN(n) && t !== 'NaN') throw new Unfit(t)
    return n
  })
  return primitive(new Float64(), texts, values)
}

function bool (texts: Texts): Column {
  const bits = new Uint8Array(Math.ceil(texts.length / 8))
  texts.forEach((t, i) => {
    if (t === null) return
    const v = t.toLowerCase()
    if (v !== '1' && v !== '0' && v !== 'true' && v !== 'false') throw new Unfit(t)
    if (v === '1' || v === 'true') bits[i >> 3]! |= 1 << (i & 7)
  })
  return primitive(new Bool(), texts, bits)
}

function int32 (texts: Texts, scale: number): Int32Array {
  return Int32Array.from(texts, (t) => {
    const v = t === null ? 0n : unscaled(t, scale)
    if (v < -(2n ** 31n) || v >= 2n ** 31n) throw new Unfit(String(t))
    return Number(v)
  })
}

function int64 (texts: Texts, scale: number): BigInt64Array {
  return BigInt64Array.from(texts, (t) => {
    const v = t === null ? 0n : unscaled(t, scale)
    if (v < INT64_MIN || v > INT64_MAX) throw new Unfit(String(t))
    return v
  })
}

function varLength (type: Utf8 | Binary, texts: Texts, bytes: (t: string) => Buffer): Column {
  const parts = texts.map((t) => (t === null ? Buffer.alloc(0) : bytes(t)))
  const offsets = new Int32Array(texts.length + 1)
  parts.forEach((p, i) => { offsets[i + 1] = offsets[i]! + p.byteLength })
  const data = makeData({ type, length: texts.length, valueOffsets: offsets, data: Buffer.concat(parts), ...validity(texts) } as never) as Data
  return { type, data }
}

/** {epoch seconds, fraction nanoseconds} from "seconds.fraction", fraction never negative. */
function epochFraction (text: string): { epoch: bigint, fraction: number } {
  const nanos = unscaled(text, 9)
  // Floor division: -0.5 s is epoch -1 + 0.5 s, as Snowflake writes it.
  let epoch = nanos / 1_000_000_000n
  let fraction = nanos % 1_000_000_000n
  if (fraction < 0n) {
    epoch -= 1n
    fraction += 1_000_000_000n
  }
  if (epoch < INT64_MIN || epoch > INT64_MAX) throw new Unfit(text)
  return { epoch, fraction: Number(fraction) }
}

/** A struct column from named child columns, nulls where the whole value is null. */
function struct (texts: Texts, children: Array<[string, Column]>, meta: Map<string, string>): Column {
  const type = new Struct(children.map(([name, c]) => new Field(name, c.type, true, meta)))
  const data = makeData({ type, length: texts.length, children: children.map(([, c]) => c.data), ...validity(texts) } as never) as Data
  return { type, data }
}

/** "seconds.fraction minutes+1440" → its two parts; the zone is required. */
function splitZone (text: string): [string, string] {
  const [value = '', zone] = text.split(' ')
  if (zone === undefined || !/^\d+$/.test(zone)) throw new Unfit(text)
  return [value, zone]
}

function timestamp (logical: string, texts: Texts, scale: number, meta: Map<string, string>): Column {
  if (logical === 'TIMESTAMP_TZ') {
    const split = texts.map((t) => (t === null ? null : splitZone(t)))
    const zones = child(new Int32(), Int32Array.from(split, (s) => Number(s?.[1] ?? 0)))
    if (scale <= 3) {
      const epochs = child(new Int64(), int64(split.map((s) => s?.[0] ?? null), scale))
      return { ...struct(texts, [['epoch', epochs], ['timezone', zones]], meta), meta: { byteLength: '8' } }
    }
    const parts = split.map((s) => (s === null ? { epoch: 0n, fraction: 0 } : epochFraction(s[0])))
    const epochs = child(new Int64(), BigInt64Array.from(parts, (p) => p.epoch))
    const fractions = child(new Int32(), Int32Array.from(parts, (p) => p.fraction))
    return { ...struct(texts, [['epoch', epochs], ['fraction', fractions], ['timezone', zones]], meta), meta: { byteLength: '16' } }
  }
  if (scale <= 7) return primitive(new Int64(), texts, int64(texts, scale))
  const parts = texts.map((t) => (t === null ? { epoch: 0n, fraction: 0 } : epochFraction(t)))
  const epochs = child(new Int64(), BigInt64Array.from(parts, (p) => p.epoch))
  const fractions = child(new Int32(), Int32Array.from(parts, (p) => p.fraction))
  return struct(texts, [['epoch', epochs], ['fraction', fractions]], meta)
}

/** Types read as text: semi-structured values are their JSON text, as from Snowflake. */
const TEXT_TYPES = new Set(['TEXT', 'CHAR', 'ANY', 'VARIANT', 'OBJECT', 'ARRAY'])

function column (entry: RowTypeEntry, logical: string, texts: Texts, meta: Map<string, string>, stable: boolean): Column {
  const scale = entry.scale ?? 0
  switch (logical) {
    case 'FIXED': return fixed(texts, scale, entry.precision ?? 38, stable)
    case 'REAL': return real(texts)
    case 'BOOLEAN': return bool(texts)
    case 'DATE': return primitive(new DateDay(), texts, int32(texts, 0))
    case 'TIME': return scale <= 4 ? primitive(new Int32(), texts, int32(texts, scale)) : primitive(new Int64(), texts, int64(texts, scale))
    case 'TIMESTAMP_NTZ': case 'TIMESTAMP_LTZ': case 'TIMESTAMP_TZ': return timestamp(logical, texts, scale, meta)
    case 'BINARY': return varLength(new Binary(), texts, (t) => {
      if (!/^([0-9A-Fa-f]{2})*$/.test(t)) throw new Unfit(t)
      return Buffer.from(t, 'hex')
    })
    default:
      if (!TEXT_TYPES.has(logical)) throw new Unfit(logical)
      return varLength(new Utf8(), texts, (t) => Buffer.from(t, 'utf8'))
  }
}

/** Snowflake's field metadata for a column, before the value-dependent entries. */
function fieldMetadata (entry: RowTypeEntry, logical: string): Map<string, string> {
  const timeLike = logical === 'TIME' || logical.startsWith('TIMESTAMP_')
  return new Map([
    ['logicalType', logical],
    ['precision', String(entry.precision ?? (logical === 'FIXED' ? 38 : 0))],
    // fakesnow's and older rowtypes leave a timestamp's scale out; Snowflake's default is 9.
    ['scale', String(entry.scale ?? (timeLike ? 9 : 0))],
    ['charLength', String(entry.length ?? 0)],
    ['byteLength', String(entry.byteLength ?? 0)],
    ['finalType', 'T']
  ])
}

export interface ArrowEncodeOptions {
  /**
   * The rows are one piece of a result served in several (inline rowset and chunks): lay out
   * every column by its declaration alone, so all pieces share one schema (see fixed()).
   */
  stableWidths?: boolean
}

/** The IPC stream for these rows, or undefined when a value or type does not fit. */
export function arrowFromRows (rowtype: RowTypeEntry[], rows: Array<Array<string | null>>, options: ArrowEncodeOptions = {}): Uint8Array | undefined {
  try {
    const fields: Field[] = []
    const children = rowtype.map((entry, c) => {
      const logical = entry.type.toUpperCase()
      const meta = fieldMetadata(entry, logical)
      const scaled = { ...entry, scale: Number(meta.get('scale')) }
      const col = column(scaled, logical, rows.map((r) => r[c] ?? null), meta, options.stableWidths === true)
      for (const [k, v] of Object.entries(col.meta ?? {})) meta.set(k, v)
      fields.push(new Field(entry.name, col.type, entry.nullable !== false, meta))
      return col.data
    })
    const schema = new Schema(fields)
    const data = makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children })
    return ipcStream(schema, new RecordBatch(schema, data))
  } catch (err) {
    if (err instanceof Unfit) return undefined
    throw err
  }
}
