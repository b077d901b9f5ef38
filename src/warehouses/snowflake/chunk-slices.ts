// A JSON result chunk read a slice of rows at a time. A chunk is tens of thousands of rows
// (megabytes of text); parsed whole, every row of it stays alive while the page is masked and
// encoded, long enough for V8 to move it to the old generation, which then grows by hundreds of
// MB over a large result before a full collection returns it. Cut at row boundaries into slices
// of ~64 KB, each slice is parsed, masked and encoded while the one before is already garbage,
// and dies young.
//
// The cut needs no parse: one pass over the bytes tracks strings (and their escapes) and
// bracket depth, and cuts after a row whose closing bracket brings the depth back to zero.
// Anything that is not a well-formed sequence of rows fails here, before any row is released.
import { ERR_UPSTREAM_FAILED } from '../../errors.js'
import { rowsFromRowset } from './rowset.js'

/** Bytes of chunk text per slice, about: a few hundred rows of a typical result. */
export const SLICE_BYTES = 64 * 1024

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const OPEN = 0x5b
const CLOSE = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

function isSpace (c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/**
 * The [start, end) byte ranges of `body`'s rows, grouped into slices of about `sliceBytes`.
 * A chunk is rows separated by commas without enclosing brackets (`["1","a"],["2","b"]`);
 * one whole array of rows (`[["1","a"]]`, `[]`) is read the same way inside its brackets.
 */
export function chunkSliceRanges (body: Buffer, connection: string, sliceBytes = SLICE_BYTES): Array<[number, number]> {
  let start = 0
  let end = body.length
  while (start < end && isSpace(body[start] as number)) start++
  while (end > start && isSpace(body[end - 1] as number)) end--
  // The same test as before the chunk was sliced: `[[` or `[]` opens one array of rows.
  if (end - start >= 2 && body[start] === OPEN && (body[start + 1] === OPEN || body[start + 1] === CLOSE) && body[end - 1] === CLOSE) {
    start++
    end--
    while (start < end && isSpace(body[start] as number)) start++
    while (end > start && isSpace(body[end - 1] as number)) end--
  }
  const ranges: Array<[number, number]> = []
  let depth = 0
  let sliceStart = start
  let expectRow = true
  let sawRow = false
  for (let i = start; i < end; i++) {
    const c = body[i] as number
    if (c === QUOTE) {
      // To the closing quote: a quote after an odd run of backslashes is escaped.
      let j = i + 1
      for (; j < end; j++) {
        const d = body[j] as number
        if (d === BACKSLASH) j++
        else if (d === QUOTE) break
      }
      if (j >= end) throw malformed(connection, 'a string never ends')
      if (depth === 0) throw malformed(connection, 'a value outside any row')
      i = j
      continue
    }
    if (depth === 0) {
      if (isSpace(c)) continue
      if (c === COMMA && !expectRow) { expectRow = true; continue }
      if (c !== OPEN || !expectRow) throw malformed(connection, `unexpected ${JSON.stringify(String.fromCharCode(c))} between rows`)
      expectRow = false
      sawRow = true
      depth = 1
      continue
    }
    if (c === OPEN || c === OPEN_OBJECT) depth++
    else if (c === CLOSE || c === CLOSE_OBJECT) {
      depth--
      if (depth === 0 && i + 1 - sliceStart >= sliceBytes) {
        ranges.push([sliceStart, i + 1])
        sliceStart = i + 1
      }
    }
  }
  if (depth !== 0) throw malformed(connection, 'a row never ends')
  if (expectRow && sawRow) throw malformed(connection, 'a comma after the last row')
  if (sawRow && sliceStart < end) ranges.push([sliceStart, end])
  return ranges
}

/** The rows of one slice (its leading comma, if any, skipped). */
export function sliceRows (body: Buffer, [from, to]: [number, number]): unknown[][] {
  let start = from
  while (start < to && (isSpace(body[start] as number) || body[start] === COMMA)) start++
  return rowsFromRowset(JSON.parse(`[${body.toString('utf8', start, to)}]`) as unknown[][])
}

/** A chunk's rows, a slice at a time (at most `limit` rows in all: a page cut at the row cap). */
export function * chunkSlices (body: Buffer, connection: string, limit = Infinity, sliceBytes = SLICE_BYTES): Generator<unknown[][]> {
  let left = limit
  for (const range of chunkSliceRanges(body, connection, sliceBytes)) {
    if (left <= 0) return
    const rows = sliceRows(body, range)
    if (rows.length > left) {
      yield rows.slice(0, left)
      return
    }
    left -= rows.length
    yield rows
  }
}

/** Rows already in memory (an Arrow chunk, re-read inline rows) handed on in slices of `size`. */
export function * rowSlices (rows: unknown[][], size: number): Generator<unknown[][]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size)
}

function malformed (connection: string, what: string): Error {
  return new ERR_UPSTREAM_FAILED(connection, `the upstream sent a result chunk that is not JSON rows: ${what}`)
}
