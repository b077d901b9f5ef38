// Values between the wire and the neutral result. Sluice asks the upstream for text format
// only, so masking sees PostgreSQL's own text output ('2024-05-07', '{a,b}', '{"k": 1}'); an
// array column becomes a JS array of element texts so masks apply per element. Towards the
// client a value is written back as text, or in binary for the types encoded below; a binary
// result column of any other type is refused (the client is told to ask for text).
import { parse as parseArray } from 'postgres-array'
import { isArrayType, OID, typeName } from './types.js'

const PG_EPOCH_DAYS = 10957 // 2000-01-01 − 1970-01-01
const PG_EPOCH_MS = PG_EPOCH_DAYS * 86_400_000

/** Upstream text → neutral value for a column of `oid`. */
export function toNeutral (text: string | null, oid: number): unknown {
  if (text === null) return null
  if (isArrayType(oid)) return parseArray(text)
  return text
}

function quoteElement (v: string): string {
  if (v === '' || /[{},"\\\s]/.test(v) || v.toUpperCase() === 'NULL') return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`
  return v
}

/** Neutral value → PostgreSQL text; masks may have replaced a value by a number or a Date. */
export function toText (v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  if (typeof v === 'boolean') return v ? 't' : 'f'
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace('Z', '+00')
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`
  if (Array.isArray(v)) return `{${v.map((e) => Array.isArray(e) ? toText(e) as string : e === null ? 'NULL' : quoteElement(toText(e) as string)).join(',')}}`
  return JSON.stringify(v)
}

/** Types Sluice can write in binary format from their text (the result column formats allowed). */
const BINARY_OUT = new Set<number>([OID.bool, OID.bytea, OID.int2, OID.int4, OID.int8, OID.oid, OID.float4, OID.float8,
  OID.text, OID.varchar, OID.bpchar, OID.name, OID.json, OID.jsonb, OID.uuid, OID.date, OID.timestamp, OID.timestamptz])

export function binaryEncodable (oid: number): boolean {
  return BINARY_OUT.has(oid)
}

export class BinaryFormatRefused extends Error {
  constructor (readonly column: string, readonly oid: number) {
    super(`binary result format for column "${column}" of type ${typeName(oid)} is not supported through Sluice: request text format for it (the default of psql, node-postgres, postgres.js and psycopg)`)
  }
}

/** Microseconds since 2000-01-01 of a timestamp text ('2024-05-07 12:34:56.789+02'). */
function pgMicros (text: string, withZone: boolean): bigint {
  const m = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?([+-]\d\d(?::?\d\d)?(?::?\d\d)?)?/.exec(text)
  if (m === null) throw new RangeError(`not a timestamp: ${text}`)
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as string[]
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s))
  if (withZone && zone !== undefined) {
    const z = /^([+-])(\d\d):?(\d\d)?:?(\d\d)?$/.exec(zone)
    if (z !== null) {
      const offset = (Number(z[2]) * 3600 + Number(z[3] ?? 0) * 60 + Number(z[4] ?? 0)) * 1000
      ms += z[1] === '+' ? -offset : offset
    }
  }
  const micros = BigInt(ms - PG_EPOCH_MS) * 1000n
  const fraction = frac === undefined ? 0n : BigInt((frac.slice(1) + '000000').slice(0, 6))
  return micros + fraction
}

/** PostgreSQL text of a value → its binary wire form (only for `binaryEncodable` types). */
export function encodeBinary (text: string, oid: number): Buffer {
  switch (oid) {
    case OID.bool: return Buffer.from([text === 't' || text === 'true' ? 1 : 0])
    case OID.bytea: return text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : Buffer.from(text, 'utf8')
    case OID.int2: { const b = Buffer.alloc(2); b.writeInt16BE(Number(text)); return b }
    case OID.int4: { const b = Buffer.alloc(4); b.writeInt32BE(Number(text)); return b }
    case OID.oid: { const b = Buffer.alloc(4); b.writeUInt32BE(Number(text)); return b }
    case OID.int8: { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(text)); return b }
    case OID.float4: { const b = Buffer.alloc(4); b.writeFloatBE(floatOf(text)); return b }
    case OID.float8: { const b = Buffer.alloc(8); b.writeDoubleBE(floatOf(text)); return b }
    case OID.jsonb: return Buffer.concat([Buffer.from([1]), Buffer.from(text, 'utf8')])
    case OID.uuid: return Buffer.from(text.replace(/-/g, ''), 'hex')
    case OID.date: {
      const b = Buffer.alloc(4)
      b.writeInt32BE(Math.round(Date.parse(`${text.slice(0, 10)}T00:00:00Z`) / 86_400_000) - PG_EPOCH_DAYS)
      return b
    }
    case OID.timestamp: case OID.timestamptz: {
      const b = Buffer.alloc(8)
      b.writeBigInt64BE(pgMicros(text, oid === OID.timestamptz))
      return b
    }
    default: return Buffer.from(text, 'utf8')
  }
}

function floatOf (text: string): number {
  if (text === 'NaN') return NaN
  if (text === 'Infinity') return Infinity
  if (text === '-Infinity') return -Infinity
  return Number(text)
}

/** Types whose binary parameters Sluice reads back into text for the upstream. */
export function decodeBinaryParam (value: Buffer, oid: number): string | Buffer {
  switch (oid) {
    case OID.bool: return value[0] === 1 ? 't' : 'f'
    case OID.int2: return String(value.readInt16BE(0))
    case OID.int4: return String(value.readInt32BE(0))
    case OID.oid: return String(value.readUInt32BE(0))
    case OID.int8: return String(value.readBigInt64BE(0))
    case OID.float4: return String(value.readFloatBE(0))
    case OID.float8: return String(value.readDoubleBE(0))
    case OID.bytea: return value
    case OID.jsonb: return value.subarray(1).toString('utf8')
    case OID.uuid: {
      const h = value.toString('hex')
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
    }
    case OID.date: return new Date((value.readInt32BE(0) + PG_EPOCH_DAYS) * 86_400_000).toISOString().slice(0, 10)
    case OID.timestamp: case OID.timestamptz: {
      const micros = value.readBigInt64BE(0)
      const ms = Number(micros / 1000n) + PG_EPOCH_MS
      const iso = new Date(ms).toISOString().replace('T', ' ').replace('Z', '')
      return `${iso.slice(0, 19)}.${String(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).padStart(6, '0')}${oid === OID.timestamptz ? '+00' : ''}`
    }
    case OID.text: case OID.varchar: case OID.bpchar: case OID.name: case OID.json: case 0:
      return value.toString('utf8')
    default: throw new RangeError(`binary parameters of type ${typeName(oid)} are not supported through Sluice: send the parameter in text format`)
  }
}
