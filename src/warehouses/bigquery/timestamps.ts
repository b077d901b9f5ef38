// TIMESTAMP values in every form BigQuery's REST surface uses, converted exactly (BigInt
// microseconds, never through a float): the default float-seconds string ("1.7041646451E9"),
// the int64 microseconds string asked for with `formatOptions.useInt64Timestamp`, and the
// ISO / canonical text form ("2024-01-02 03:04:05.123456 UTC") some servers and emulators send.
// The neutral form is an ISO 8601 UTC string with six fractional digits, so masking sees a
// readable, comparable value and the encoder can render either wire form from it losslessly.

const MICROS_PER_SECOND = 1_000_000n
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const INT64 = /^[+-]?\d+$/
const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?$/i
// BigQuery's TIMESTAMP range: 0001-01-01 00:00:00 to 9999-12-31 23:59:59.999999 UTC.
const MIN_MICROS = -62135596800000000n
const MAX_MICROS = 253402300799999999n

function floorDiv (a: bigint, b: bigint): bigint {
  const q = a / b
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q
}

function inRange (micros: bigint): bigint | undefined {
  return micros >= MIN_MICROS && micros <= MAX_MICROS ? micros : undefined
}

/** A decimal or scientific seconds string, exactly, rounded to the microsecond. */
export function secondsToMicros (text: string): bigint | undefined {
  const m = DECIMAL.exec(text.trim())
  if (m === null) return undefined
  const [, sign = '', whole = '', frac = '', exp = '0'] = m
  if (whole === '' && frac === '') return undefined
  const digits = BigInt(`${whole}${frac}` === '' ? '0' : `${whole}${frac}`)
  const shift = Number(exp) - frac.length + 6
  if (!Number.isSafeInteger(shift) || Math.abs(shift) > 40) return undefined
  let micros: bigint
  if (shift >= 0) {
    micros = digits * 10n ** BigInt(shift)
  } else {
    const div = 10n ** BigInt(-shift)
    micros = (digits + div / 2n) / div
  }
  return inRange(sign === '-' ? -micros : micros)
}

/** "2024-01-02T03:04:05.123456Z", "2024-01-02 03:04:05 UTC", "2024-01-02T03:04:05+02:00". */
export function isoToMicros (text: string): bigint | undefined {
  const m = ISO.exec(text.trim())
  if (m === null) return undefined
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m
  const date = new Date(Date.UTC(2000, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)))
  date.setUTCFullYear(Number(y))
  if (Number.isNaN(date.getTime()) || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d)) return undefined
  let micros = BigInt(date.getTime()) * 1000n + BigInt((frac + '000000').slice(0, 6))
  const offset = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)
  if (offset !== null) {
    const minutes = BigInt(Number(offset[2]) * 60 + Number(offset[3] ?? '0'))
    micros += (offset[1] === '+' ? -1n : 1n) * minutes * 60_000_000n
  }
  return inRange(micros)
}

export function microsToIso (micros: bigint): string {
  const seconds = floorDiv(micros, MICROS_PER_SECOND)
  const fraction = micros - seconds * MICROS_PER_SECOND
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19)
  return `${base}.${fraction.toString().padStart(6, '0')}Z`
}

/** The float-seconds wire form, written as plain decimal (every client parses it as a float). */
export function microsToSeconds (micros: bigint): string {
  const negative = micros < 0n
  const abs = negative ? -micros : micros
  const whole = abs / MICROS_PER_SECOND
  const frac = (abs % MICROS_PER_SECOND).toString().padStart(6, '0').replace(/0+$/, '')
  return `${negative ? '-' : ''}${whole}${frac === '' ? '' : `.${frac}`}`
}

/**
 * Any wire form to microseconds. `int64` says the request asked for int64 microseconds, which
 * is what an integer string then means; otherwise an integer string is whole seconds.
 */
export function wireTimestampToMicros (value: string, int64: boolean): bigint | undefined {
  if (INT64.test(value)) return int64 ? inRange(BigInt(value)) : secondsToMicros(value)
  if (DECIMAL.test(value)) return secondsToMicros(value)
  return isoToMicros(value)
}

/** A neutral (or masked) value to microseconds; undefined when it is not a timestamp. */
export function neutralTimestampToMicros (value: unknown): bigint | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : inRange(BigInt(value.getTime()) * 1000n)
  if (typeof value === 'bigint') return inRange(value)
  if (typeof value !== 'string') return undefined
  return isoToMicros(value)
}
