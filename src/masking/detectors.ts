// Value detectors: the safety net on result columns no masking rule covers. They look for
// well-known sensitive shapes inside text and replace (or only report) what they find.
//
// Precision over recall where the two conflict: check digits (Luhn for cards, mod-97 for
// IBANs), reserved-range exclusions (SSN) and anchored token shapes (AWS key ids, JWTs) keep
// ordinary numbers, dates and versions from being flagged. A cheap pre-check skips values that
// cannot contain any of the shapes, which is most text, so the net costs little per value.

export const DETECTOR_KINDS = ['email', 'phone', 'ssn', 'credit_card', 'iban', 'ip', 'aws_key', 'private_key', 'gcp_service_account', 'jwt'] as const
export type DetectorKind = typeof DETECTOR_KINDS[number]

interface Detector {
  kind: DetectorKind
  re: RegExp
  /** Further check of a match (check digits); absent = the pattern is enough. */
  valid?: (match: string) => boolean
  /** Replace the whole value, not only the match (a key file's other fields are secrets too). */
  whole?: boolean
  /** The replacement text, `[redacted:<kind>]`. */
  label: string
}

/** True when the digits pass the Luhn check (credit and debit card numbers). */
export function luhn (digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) { d *= 2; if (d > 9) d -= 9 }
    sum += d
    double = !double
  }
  return digits.length > 0 && sum % 10 === 0
}

/** ISO 13616 IBAN check: country, check digits, mod 97 = 1 over the rearranged number. */
export function ibanValid (text: string): boolean {
  const s = text.replace(/ /g, '').toUpperCase()
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false
  const rearranged = s.slice(4) + s.slice(0, 4)
  let rem = 0
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0)
    const part = code >= 65 ? String(code - 55) : ch
    for (const d of part) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97
  }
  return rem === 1
}

function cardValid (match: string): boolean {
  const digits = match.replace(/[ -]/g, '')
  return digits.length >= 13 && digits.length <= 19 && /^[3-6]/.test(digits) && luhn(digits)
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const H = '[0-9A-Fa-f]{1,4}'

const DETECTORS: Detector[] = [
  { kind: 'private_key', label: '[redacted:private_key]', re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)/g },
  { kind: 'gcp_service_account', label: '[redacted:gcp_service_account]', re: /\\?"type\\?"\s*:\s*\\?"service_account\\?"/g, whole: true },
  { kind: 'jwt', label: '[redacted:jwt]', re: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/g },
  { kind: 'aws_key', label: '[redacted:aws_key]', re: /(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])/g },
  { kind: 'email', label: '[redacted:email]', re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  { kind: 'iban', label: '[redacted:iban]', re: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b/g, valid: ibanValid },
  { kind: 'credit_card', label: '[redacted:credit_card]', re: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g, valid: cardValid },
  { kind: 'ssn', label: '[redacted:ssn]', re: /(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])/g },
  { kind: 'phone', label: '[redacted:phone]', re: /(?<![\w+.-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{2,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w.-])/g },
  { kind: 'ip', label: '[redacted:ip]', re: new RegExp(`(?<![\\d.])(?:${OCTET}\\.){3}${OCTET}(?![\\d.])|(?<![:\\w])(?:(?:${H}:){7}${H}|(?:${H}:){1,6}:(?:${H}(?::${H}){0,5})?)(?![:\\w])`, 'g') }
]

/**
 * Character counts of a value: one pass decides which detectors could possibly match.
 * `cardRun` / `phoneRun` are the longest chains of digits that a card number / a phone number
 * could be made of: digits with at most one space or dash between them (the card pattern), or
 * at most two of space . - ( ) (the phone patterns: `+1 (415) 555-0100`). Digits scattered
 * through other text (hashes, ids, prose) never form one, so those values skip both patterns.
 */
interface Shape { digits: number, at: boolean, dots: number, colons: number, dashes: number, upper: number, cardRun: number, phoneRun: number }

// One shape object reused by every scan (scans are synchronous): no allocation per value.
const SHAPE: Shape = { digits: 0, at: false, dots: 0, colons: 0, dashes: 0, upper: 0, cardRun: 0, phoneRun: 0 }

const BROKEN = 1 << 30

function shapeOf (text: string): Shape {
  const s = SHAPE
  s.digits = 0; s.at = false; s.dots = 0; s.colons = 0; s.dashes = 0; s.upper = 0; s.cardRun = 0; s.phoneRun = 0
  let card = 0
  let cardGap = BROKEN
  let phone = 0
  let phoneGap = BROKEN
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      s.digits++
      card = cardGap <= 1 ? card + 1 : 1
      phone = phoneGap <= 2 ? phone + 1 : 1
      cardGap = 0
      phoneGap = 0
      if (card > s.cardRun) s.cardRun = card
      if (phone > s.phoneRun) s.phoneRun = phone
      continue
    }
    if (c >= 65 && c <= 90) s.upper++
    else if (c === 64) s.at = true
    else if (c === 46) s.dots++
    else if (c === 58) s.colons++
    else if (c === 45) s.dashes++
    // space and dash may sit inside a card number; those and . ( ) inside a phone number.
    cardGap = c === 32 || c === 45 ? cardGap + 1 : BROKEN
    phoneGap = c === 32 || c === 45 || c === 46 || c === 40 || c === 41 ? phoneGap + 1 : BROKEN
  }
  return s
}

// The quick reject below: per ASCII character, what it counts towards (0: nothing).
const DIGIT = 1
const UPPER = 2
const DOT = 3
const DASH = 4
const AT_OR_COLON = 5
const CHAR_CLASS = new Uint8Array(128)
for (let c = 48; c <= 57; c++) CHAR_CLASS[c] = DIGIT
for (let c = 65; c <= 90; c++) CHAR_CLASS[c] = UPPER
CHAR_CLASS[46] = DOT
CHAR_CLASS[45] = DASH
CHAR_CLASS[64] = AT_OR_COLON
CHAR_CLASS[58] = AT_OR_COLON

/**
 * False only when `candidates` would find no detector for this text: every detector needs at
 * least one of an @ or a colon, two dots, two capitals, nine digits or ten dashes (see
 * `candidates`: email needs the @, gcp_service_account a colon, ip three dots or two colons,
 * jwt two dots, aws_key four capitals, iban two, credit_card 13 digits, phone 10, ssn 9,
 * private_key ten dashes). Most text (prose, names, statuses) has none of them and is
 * rejected by this loop, which is cheaper per character than `shapeOf` and stops early.
 */
export function mayMatch (text: string): boolean {
  let digits = 0
  let upper = 0
  let dots = 0
  let dashes = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 128) continue
    switch (CHAR_CLASS[c]) {
      case DIGIT: if (++digits >= 9) return true; break
      case UPPER: if (++upper >= 2) return true; break
      case DOT: if (++dots >= 2) return true; break
      case DASH: if (++dashes >= 10) return true; break
      case AT_OR_COLON: return true
    }
  }
  return false
}

/** The candidate bits of a text (exported for the tests of `mayMatch`). */
export function candidateBits (text: string): number {
  return candidates(shapeOf(text), text)
}

/** Each detector's bit, by its position in DETECTORS. */
const BIT = Object.fromEntries(DETECTORS.map((d, i) => [d.kind, 1 << i])) as Record<DetectorKind, number>

/**
 * The detectors that could match a value of this shape, as a bit set over DETECTORS' order
 * (never missing one that matches; one call, no per-detector dispatch).
 */
function candidates (s: Shape, t: string): number {
  let bits = 0
  if (s.dashes >= 10 && t.includes('PRIVATE KEY')) bits |= BIT.private_key
  if (s.colons >= 1 && t.length >= 30 && t.includes('service_account')) bits |= BIT.gcp_service_account
  if (s.dots >= 2 && t.includes('eyJ')) bits |= BIT.jwt
  if (s.upper >= 4 && t.length >= 20) bits |= BIT.aws_key
  if (s.at && s.dots >= 1) bits |= BIT.email
  if (s.digits >= 4 && s.upper >= 2 && t.length >= 15) bits |= BIT.iban
  if (s.cardRun >= 13) bits |= BIT.credit_card
  if (s.digits >= 9 && s.dashes >= 2) bits |= BIT.ssn
  // The shortest phone the patterns take has 8 digits (`+1 22 333 44`); 10 in all, as before.
  if (s.digits >= 10 && s.phoneRun >= 8) bits |= BIT.phone
  if ((s.dots >= 3 && s.digits >= 4) || s.colons >= 2) bits |= BIT.ip
  return bits
}

export interface ScanResult {
  /** The text with every finding replaced (equal to the input when nothing was found). */
  text: string
  findings: DetectorKind[]
}

export type Scanner = (text: string) => ScanResult | undefined

/** A scanner over the enabled kinds; returns undefined when the text holds nothing sensitive. */
export function createScanner (kinds: readonly DetectorKind[] = DETECTOR_KINDS): Scanner {
  let enabledBits = 0
  DETECTORS.forEach((d, i) => { if (kinds.includes(d.kind)) enabledBits |= 1 << i })
  return (text) => {
    if (text.length < 7 || !mayMatch(text)) return undefined
    let bits = candidates(shapeOf(text), text) & enabledBits
    if (bits === 0) return undefined // most text (names, statuses, prose) leaves here
    let out = text
    let findings: DetectorKind[] | undefined
    for (let i = 0; bits !== 0; i++, bits >>>= 1) {
      if ((bits & 1) === 0) continue
      const d = DETECTORS[i] as Detector
      d.re.lastIndex = 0
      const first = d.re.exec(out)
      if (first === null) continue
      // The common case of a column that *is* the value (a phone column): no string building.
      if (first.index === 0 && first[0].length === out.length && (d.valid === undefined || d.valid(first[0]))) {
        ;(findings ??= []).push(d.kind)
        out = d.label
        continue
      }
      d.re.lastIndex = 0
      let hit = false
      const replaced = out.replace(d.re, (m) => {
        if (d.valid !== undefined && !d.valid(m)) return m
        hit = true
        return d.label
      })
      if (!hit) continue
      ;(findings ??= []).push(d.kind)
      // A service-account key file is secret as a whole, not only its "type" field.
      out = d.whole === true ? d.label : replaced
    }
    return findings === undefined ? undefined : { text: out, findings }
  }
}
