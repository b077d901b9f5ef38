// The one validation layer for audit filters (admin API, `sluice audit export`): every value is
// checked and normalised here before it is bound into SQL, so no input can make Postgres refuse
// a statement (a 500) — a bad value is a 400 that names its parameter. The schema in
// plugins/admin-openapi.ts already checks shapes; what it cannot know is what Postgres accepts.
import { ERR_BAD_REQUEST } from '../errors.js'
import type { EventFilter, SessionFilter } from './search.js'

// RFC 3339 date-time as ajv's `date-time` format accepts it: `T`, `t` or a space between date and
// time, any number of fraction digits, `Z` or an offset written ±hh, ±hhmm or ±hh:mm.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// A bigint id as the store hands it out (int8 as a string).
const EVENT_ID = /^\d{1,18}$/

function bad (name: string, why: string): Error {
  return new ERR_BAD_REQUEST(`${name} ${why}`)
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** Proleptic Gregorian, as Postgres counts (year 0 is 1 BC, a leap year). */
function daysIn (year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  return month === 2 && leap ? 29 : DAYS[month - 1] as number
}

/**
 * An RFC 3339 time as a UTC timestamp literal Postgres accepts, exact to the microsecond
 * (rounded half up, as Postgres rounds). The offset is applied here: Postgres refuses offsets
 * beyond ±15:59 that RFC 3339 allows (up to ±23:59), and years outside 1–9999 that an offset
 * moves a time into are written as Postgres spells them (`… BC`, five-digit years).
 */
export function normaliseTime (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw bad(name, 'must be one RFC 3339 date-time')
  const m = DATE_TIME.exec(value)
  if (m === null) throw bad(name, `must be an RFC 3339 date-time with an offset, e.g. 2026-11-21T00:00:00Z (got ${JSON.stringify(value.slice(0, 64))})`)
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) throw bad(name, `has no such date: ${value.slice(0, 10)}`)
  // 60 is a leap second; like Postgres, it is read as the first instant of the next minute.
  if (hour > 23 || minute > 59 || second > 60) throw bad(name, `has no such time of day: ${value.slice(11, 19)}`)
  const offsetHours = m[10] === undefined ? 0 : Number(m[10])
  const offsetMinutes = m[11] === undefined ? 0 : Number(m[11])
  if (offsetHours > 23 || offsetMinutes > 59) throw bad(name, 'has an offset beyond ±23:59')
  const sign = m[9] === '-' ? -1 : 1

  const fraction = (m[7] ?? '').padEnd(7, '0')
  let micros = BigInt(fraction.slice(0, 6)) + (Number(fraction[6]) >= 5 ? 1n : 0n)
  const date = new Date(0)
  // setUTCFullYear, unlike Date.UTC, keeps years 0–99 as they are.
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, 0)
  micros += BigInt(date.getTime()) * 1000n - BigInt(sign * (offsetHours * 60 + offsetMinutes)) * 60_000_000n

  const wholeMs = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n)
  const utc = new Date(Number(wholeMs))
  const subMs = Number(micros - wholeMs * 1000n)
  const y = utc.getUTCFullYear()
  const clock = `${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}.${pad(utc.getUTCMilliseconds(), 3)}${pad(subMs, 3)}+00`
  const monthDay = `${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())}`
  // Postgres has no year 0: astronomical year 0 is 1 BC, -1 is 2 BC.
  return y >= 1 ? `${pad(y, 4)}-${monthDay} ${clock}` : `${pad(1 - y, 4)}-${monthDay} ${clock} BC`
}

/** Free text bound as a parameter: Postgres text cannot hold U+0000, so no stored value has it. */
export function checkText (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw bad(name, 'must be given once, as a string')
  if (value.includes('\u0000')) throw bad(name, 'must not contain a NUL character (U+0000)')
  return value
}

const TEXT_FIELDS = ['principal', 'agent', 'connection', 'decision', 'rule', 'table', 'maskedColumn', 'outcome', 'frontEnd', 'requestId', 'approvalId', 'fingerprint', 'q'] as const

export function normaliseEventFilter (f: EventFilter): EventFilter {
  const out: EventFilter = {}
  for (const key of TEXT_FIELDS) {
    const value = checkText(f[key], key)
    if (value !== undefined) out[key] = value
  }
  copyTimes(f, out)
  const incomplete = f.incomplete as unknown
  if (incomplete !== undefined) {
    if (incomplete !== true && incomplete !== false && incomplete !== 'true' && incomplete !== 'false') throw bad('incomplete', 'must be true or false')
    if (incomplete === true || incomplete === 'true') out.incomplete = true
  }
  if (f.sessionId !== undefined) {
    if (typeof f.sessionId !== 'string' || !UUID.test(f.sessionId)) throw bad('sessionId', 'must be a UUID')
    out.sessionId = f.sessionId
  }
  return out
}

export function normaliseSessionFilter (f: SessionFilter): SessionFilter {
  const out: SessionFilter = {}
  for (const key of ['principal', 'agent', 'connection', 'frontEnd'] as const) {
    const value = checkText(f[key], key)
    if (value !== undefined) out[key] = value
  }
  copyTimes(f, out)
  return out
}

/** `since` / `until`, checked and in UTC, onto the normalised filter. */
function copyTimes (f: { since?: string, until?: string }, out: { since?: string, until?: string }): void {
  const since = normaliseTime(f.since, 'since')
  const until = normaliseTime(f.until, 'until')
  if (since !== undefined) out.since = since
  if (until !== undefined) out.until = until
}

/** An events or timeline cursor: the id of the last event of the previous page. */
export function eventCursor (key: Record<string, string> | undefined): { id: string } | undefined {
  if (key === undefined) return undefined
  if (key.id === undefined || !EVENT_ID.test(key.id)) throw bad('cursor', 'is not one this API issued')
  return { id: key.id }
}

/** A sessions cursor: start time and id of the last session of the previous page. */
export function sessionCursor (key: Record<string, string> | undefined): { t: string, id: string } | undefined {
  if (key === undefined) return undefined
  if (key.id === undefined || !UUID.test(key.id) || key.t === undefined || !DATE_TIME.test(key.t)) throw bad('cursor', 'is not one this API issued')
  return { t: normaliseTime(key.t, 'cursor') as string, id: key.id }
}
