// Rows of a JSON result read a slice at a time, for every warehouse whose upstream sends rows
// as JSON text (Snowflake's result chunks, BigQuery's `rows` array). Parsed whole, a page of
// tens of thousands of rows stays alive while it is masked and encoded, long enough for V8 to
// move it to the old generation, which then grows by hundreds of MB over a large result before
// a full collection returns it. Cut at row boundaries into slices of ~64 KB, each slice is
// parsed, masked and encoded while the one before is already garbage, and dies young.
//
// The cut needs no parse: one pass over the bytes tracks strings (and their escapes) and
// bracket depth, and cuts after a row whose closing bracket brings the depth back to zero.
// Anything that is not a well-formed sequence of rows fails here, before any row is released.

/** Bytes of row text per slice, about: a few hundred rows of a typical result. */
export const SLICE_BYTES = 64 * 1024

export const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
export const OPEN = 0x5b
export const CLOSE = 0x5d
export const OPEN_OBJECT = 0x7b
export const CLOSE_OBJECT = 0x7d
const COLON = 0x3a

/** One slice: the byte range [from, to) of `rows` whole rows (a leading comma may be in it). */
export type RowRange = [from: number, to: number, rows: number]

/** Refuses what is not rows, in the caller's own error (an upstream failure, fail closed). */
export type Malformed = (what: string) => Error

export function isSpace (c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

export function skipSpace (body: Buffer, i: number, end: number): number {
  while (i < end && isSpace(body[i] as number)) i++
  return i
}

/** The index of the quote closing the string opened at `i`: one after an odd run of backslashes is escaped. */
export function stringEnd (body: Buffer, i: number, end: number, fail: Malformed): number {
  for (let j = i + 1; j < end; j++) {
    const d = body[j] as number
    if (d === BACKSLASH) j++
    else if (d === QUOTE) return j
  }
  throw fail('a string never ends')
}

export interface RowScan {
  /** The bytes that open a row: `[` (Snowflake's arrays) or `{` (BigQuery's `{"f":[…]}`). */
  rowOpen: number
  sliceBytes: number
  fail: Malformed
  /** Rows inside an array: a `]` between rows ends them (else it is refused, as is the end of input). */
  closed?: boolean
}

/**
 * The slices of the rows from `start`: rows separated by commas, each opened by `rowOpen`.
 * Reads to `end`, or, `closed`, to the `]` that ends the array; answers that index (or `end`).
 */
export function scanRows (body: Buffer, start: number, end: number, scan: RowScan): { ranges: RowRange[], end: number } {
  const { rowOpen, sliceBytes, fail } = scan
  const ranges: RowRange[] = []
  let depth = 0
  let sliceStart = start
  let sliceCount = 0
  let expectRow = true
  let sawRow = false
  let i = start
  for (; i < end; i++) {
    const c = body[i] as number
    if (c === QUOTE) {
      if (depth === 0) throw fail('a value outside any row')
      i = stringEnd(body, i, end, fail)
      continue
    }
    if (depth === 0) {
      if (isSpace(c)) continue
      if (c === COMMA && !expectRow) { expectRow = true; continue }
      if (c === CLOSE && scan.closed === true && (!expectRow || !sawRow)) break
      if (c !== rowOpen || !expectRow) throw fail(`unexpected ${JSON.stringify(String.fromCharCode(c))} between rows`)
      expectRow = false
      sawRow = true
      depth = 1
      continue
    }
    if (c === OPEN || c === OPEN_OBJECT) depth++
    else if (c === CLOSE || c === CLOSE_OBJECT) {
      depth--
      if (depth === 0) {
        sliceCount++
        if (i + 1 - sliceStart >= sliceBytes) {
          ranges.push([sliceStart, i + 1, sliceCount])
          sliceStart = i + 1
          sliceCount = 0
        }
      }
    }
  }
  if (depth !== 0) throw fail('a row never ends')
  if (expectRow && sawRow) throw fail('a comma after the last row')
  if (scan.closed === true && i >= end) throw fail('the rows never end')
  if (sliceCount > 0) ranges.push([sliceStart, i, sliceCount])
  return { ranges, end: i }
}

/** The rows of one slice, parsed alone (its leading comma, if any, skipped). */
export function parseSlice (body: Buffer, [from, to]: RowRange): unknown[] {
  let start = from
  while (start < to && (isSpace(body[start] as number) || body[start] === COMMA)) start++
  return JSON.parse(`[${body.toString('utf8', start, to)}]`) as unknown[]
}

/**
 * Rows of an answer kept as the upstream sent them: its bytes and the slices cut in them, each
 * slice parsed only when rows in it are pulled, and `decode`d (the warehouse's own cell forms)
 * after it is trimmed to the rows asked for. A slice that does not parse, or parses into another
 * number of rows than were cut, fails before any of its rows is handed on.
 */
export class SlicedRows<R> {
  readonly #body: Buffer
  readonly #ranges: RowRange[]
  readonly #fail: Malformed
  readonly #decode: (rows: unknown[]) => R[]
  /** Rows in all the slices. */
  readonly total: number

  constructor (body: Buffer, ranges: RowRange[], fail: Malformed, decode: (rows: unknown[]) => R[]) {
    this.#body = body
    this.#ranges = ranges
    this.#fail = fail
    this.#decode = decode
    this.total = ranges.reduce((sum, [, , rows]) => sum + rows, 0)
  }

  /** Rows [from, to), a slice at a time; only the slices holding them are parsed. */
  * slices (from = 0, to = Infinity): Generator<R[]> {
    let first = 0
    for (const range of this.#ranges) {
      const next = first + range[2]
      if (next > from && first < to) {
        let rows: unknown[]
        try {
          rows = parseSlice(this.#body, range)
        } catch {
          // JSON.parse's message quotes the text, cell values included: not handed on.
          throw this.#fail('a row that is not JSON')
        }
        if (rows.length !== range[2]) throw this.#fail('rows that do not parse as they were cut')
        yield this.#decode(from > first || to < next ? rows.slice(Math.max(0, from - first), to - first) : rows)
      }
      if (next >= to) return
      first = next
    }
  }
}

const BOM = [0xef, 0xbb, 0xbf]

/** Where a JSON answer's text starts: after a byte order mark, which reading it as text drops too. */
export function answerStart (body: Buffer): number {
  return BOM.every((b, i) => body[i] === b) ? 3 : 0
}

/**
 * The answer in `body` (from `start`) parsed, with the member value at `cut` (the rows a reader
 * keeps as bytes) read as `[]`; what does not parse is refused with `fail`.
 */
export function parseAround<T> (body: Buffer, start: number, cut: { from: number, to: number } | undefined, fail: Malformed): T {
  const text = cut === undefined ? body.toString('utf8', start) : `${body.toString('utf8', start, cut.from)}[]${body.toString('utf8', cut.to)}`
  try {
    return JSON.parse(text) as T
  } catch {
    throw fail('the answer around the rows is not JSON')
  }
}

/** Where the value of a top-level member of a JSON object lies: [start, end) of its text. */
export interface Member { name: string, start: number, end: number }

/**
 * Walks the members of the JSON object in `body` (from `start`), calling `visit` at each value:
 * it answers where that value ends, or undefined to have it skipped. Keys are decoded (an
 * escaped key names the same member JSON.parse sees). Only the structure is checked here: the
 * caller parses what it keeps.
 */
export function walkObject (body: Buffer, start: number, fail: Malformed, visit: (name: string, at: number) => number | undefined): number {
  const end = body.length
  let i = skipSpace(body, start, end)
  if (body[i] !== OPEN_OBJECT) throw fail('not an object')
  i = skipSpace(body, i + 1, end)
  if (body[i] === CLOSE_OBJECT) return i + 1
  for (;;) {
    if (body[i] !== QUOTE) throw fail('a member without a name')
    const close = stringEnd(body, i, end, fail)
    const name = decodeKey(body, i, close, fail)
    i = skipSpace(body, close + 1, end)
    if (body[i] !== COLON) throw fail(`member ${JSON.stringify(name)} without a value`)
    i = skipSpace(body, i + 1, end)
    i = skipSpace(body, visit(name, i) ?? valueEnd(body, i, fail), end)
    if (body[i] === COMMA) { i = skipSpace(body, i + 1, end); continue }
    if (body[i] === CLOSE_OBJECT) return i + 1
    throw fail(`unexpected ${i < end ? JSON.stringify(String.fromCharCode(body[i] as number)) : 'end'} after member ${JSON.stringify(name)}`)
  }
}

function decodeKey (body: Buffer, open: number, close: number, fail: Malformed): string {
  const raw = body.toString('utf8', open + 1, close)
  if (!raw.includes('\\')) return raw
  try {
    return JSON.parse(`"${raw}"`) as string
  } catch {
    throw fail('a member name that is not a JSON string')
  }
}

/** Where the JSON value at `i` ends (strings and nesting tracked; scalars to the next delimiter). */
export function valueEnd (body: Buffer, i: number, fail: Malformed): number {
  const end = body.length
  const c = body[i]
  if (c === QUOTE) return stringEnd(body, i, end, fail) + 1
  if (c === OPEN || c === OPEN_OBJECT) {
    let depth = 0
    for (let j = i; j < end; j++) {
      const d = body[j] as number
      if (d === QUOTE) j = stringEnd(body, j, end, fail)
      else if (d === OPEN || d === OPEN_OBJECT) depth++
      else if ((d === CLOSE || d === CLOSE_OBJECT) && --depth === 0) return j + 1
    }
    throw fail('a value never ends')
  }
  let j = i
  while (j < end && !isSpace(body[j] as number) && body[j] !== COMMA && body[j] !== CLOSE_OBJECT && body[j] !== CLOSE) j++
  if (j === i) throw fail('a member without a value')
  return j
}

const COMMA_BYTES = Buffer.from(',')

/**
 * JSON values encoded a slice at a time into the bytes between an array's brackets (commas
 * between them), so a page keeps its encoded text, not its rows.
 */
export class JsonElements {
  readonly #parts: Buffer[] = []

  /** The values of `items`, after those added before. */
  add (items: unknown[]): void {
    if (items.length === 0) return
    const text = Buffer.from(JSON.stringify(items))
    if (this.#parts.length > 0) this.#parts.push(COMMA_BYTES)
    this.#parts.push(text.subarray(1, text.length - 1))
  }

  /** Every value added, comma-separated, without the brackets. */
  parts (): Buffer[] {
    return this.#parts
  }
}
