// Value-level helpers shared by the mask functions: digests turned into a value of a given
// class, dates and timestamps in whichever representation the value came in.
import type { ValueClass, WarehouseKind } from './types.js'
import { defaultValue, isEpochText } from './types.js'

const DAY = 86400
const CENTURY_DAYS = 36524

/** Keeps the JS type of the value a mask replaces: number → number, text → text. */
export function numberLike (n: number, like: unknown): unknown {
  if (typeof like === 'number') return n
  if (typeof like === 'bigint') return BigInt(n)
  return String(n)
}

/** A value of class `cls` derived from digest bytes (SHA-256 / HMAC): deterministic, typed. */
export function fromDigest (digest: Buffer, cls: ValueClass, like: unknown, kind: WarehouseKind | undefined, text: string): unknown {
  const n = digest.readUIntBE(0, 6) // 48 bits: exact in a double
  switch (cls) {
    case 'int': case 'decimal': return numberLike(n, like)
    case 'float': return typeof like === 'string' ? String(n) : n
    case 'bool': {
      const bit = (digest[0] ?? 0) & 1
      const d = defaultValue('bool', kind, like)
      if (typeof d === 'boolean') return bit === 1
      if (d === 'false') return bit === 1 ? 'true' : 'false'
      if (d === 'f') return bit === 1 ? 't' : 'f'
      return bit === 1 ? '1' : '0'
    }
    case 'bytes': return typeof like === 'string' ? digest.toString('hex').toUpperCase() : Buffer.from(digest)
    case 'date': return dateLike(n % CENTURY_DAYS, like, kind)
    case 'time': return typeof like === 'string' && /^\d\d:/.test(like) ? isoTime(n % DAY) : `${n % DAY}.000000000`
    case 'datetime': case 'timestamp': return timestampLike((n % CENTURY_DAYS) * DAY + (n % DAY), like, cls, kind)
    case 'json': return typeof like === 'string' ? JSON.stringify(text) : text
    default: return text
  }
}

function isoTime (seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return `${pad(h)}:${pad(m)}:${pad(s)}`
}

function pad (n: number, width = 2): string {
  return String(n).padStart(width, '0')
}

/** A day number (since 1970-01-01) in the form of `like`. */
export function dateLike (days: number, like: unknown, kind: WarehouseKind | undefined): unknown {
  if (kind === 'snowflake' || isEpochText(like)) return numberLike(days, like)
  const iso = new Date(days * DAY * 1000).toISOString().slice(0, 10)
  return like instanceof Date ? new Date(days * DAY * 1000) : iso
}

const ISO_RE = /^(-?\d{4,})-(\d\d)-(\d\d)(?:([T ])(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?)?(.*)$/

/** Seconds since the epoch (UTC) in the form of `like`. */
export function timestampLike (seconds: number, like: unknown, cls: ValueClass, kind: WarehouseKind | undefined): unknown {
  if (like instanceof Date) return new Date(seconds * 1000)
  if (typeof like === 'number') return seconds
  if (typeof like === 'string' && isEpochText(like)) {
    const tz = like.includes(' ') ? like.slice(like.indexOf(' ')) : ''
    return `${seconds}.000000000${tz}`
  }
  const d = new Date(seconds * 1000)
  const m = typeof like === 'string' ? ISO_RE.exec(like) : null
  if (m === null) {
    if (kind === 'snowflake') return `${seconds}.000000000`
    const base = defaultValue(cls, kind, like)
    return typeof base === 'string' && base.includes('T') && base.endsWith('Z') ? d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') : d.toISOString()
  }
  const date = d.toISOString().slice(0, 10)
  if (m[4] === undefined) return date + (m[9] ?? '')
  let out = `${date}${m[4]}${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  if (m[7] !== undefined) out += `:${pad(d.getUTCSeconds())}`
  if (m[8] !== undefined) out += `.${'0'.repeat(m[8].length - 1)}`
  return out + (m[9] ?? '')
}

// Year starts (UTC seconds) for 1900…2199: a binary search instead of a Date per value.
const FIRST_YEAR = 1900
const YEAR_STARTS: number[] = Array.from({ length: 301 }, (_, i) => Date.UTC(FIRST_YEAR + i, 0, 1) / 1000)

/** The first second (UTC) of the year holding `seconds`. */
export function yearStart (seconds: number): number {
  if (seconds < (YEAR_STARTS[0] as number) || seconds >= (YEAR_STARTS[300] as number)) {
    return Date.UTC(new Date(seconds * 1000).getUTCFullYear(), 0, 1) / 1000
  }
  let lo = 0
  let hi = 300
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1
    if ((YEAR_STARTS[mid] as number) <= seconds) lo = mid
    else hi = mid
  }
  return YEAR_STARTS[lo] as number
}

/** Truncates a date / timestamp value to the first day of its year, in its own form. */
export function toYear (value: unknown, cls: ValueClass, kind: WarehouseKind | undefined): unknown {
  if (value instanceof Date) return new Date(Date.UTC(value.getUTCFullYear(), 0, 1))
  if (cls === 'date' && (kind === 'snowflake' || isEpochText(value))) {
    const days = Number(String(value))
    if (!Number.isFinite(days)) return defaultValue(cls, kind, value)
    return numberLike(yearStart(days * DAY) / DAY, value)
  }
  if ((cls === 'datetime' || cls === 'timestamp') && (isEpochText(value) || typeof value === 'number')) {
    // Snowflake's "seconds.fraction[ offset]": parseFloat stops at the space.
    const text = String(value)
    const secs = Math.floor(parseFloat(text))
    if (!Number.isFinite(secs)) return defaultValue(cls, kind, value)
    if (typeof value === 'number') return yearStart(secs)
    const space = text.indexOf(' ')
    return `${yearStart(secs)}.000000000${space === -1 ? '' : text.slice(space)}`
  }
  if (typeof value === 'string') {
    const m = ISO_RE.exec(value)
    if (m === null) return defaultValue(cls === 'string' ? 'string' : cls, kind, value)
    // Keep the layout (separator, precision, zone text), zero everything below the year.
    return `${m[1]}-01-01${value.slice(10).replace(/\d/g, (d, i: number) => (isZonePart(value, i + 10) ? d : '0'))}`
  }
  return defaultValue(cls, kind, value)
}

/** True for characters of a trailing zone offset (`+02:00`, `-0500`), which stay as they are. */
function isZonePart (value: string, index: number): boolean {
  const m = /([+-]\d\d(:?\d\d)?)$/.exec(value)
  return m !== null && value.length > 19 && index >= value.length - m[0].length
}
