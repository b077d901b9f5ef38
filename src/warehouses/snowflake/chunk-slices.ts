// A JSON result chunk read a slice of rows at a time (../json-rows.ts says why and how): a
// chunk is tens of thousands of rows, cut between rows into slices of ~64 KB, each parsed,
// masked and encoded alone. Anything that is not a well-formed sequence of rows fails here,
// before any row is released.
import { ERR_UPSTREAM_FAILED } from '../../errors.js'
import { CLOSE, OPEN, SLICE_BYTES, SlicedRows, isSpace, scanRows, type Malformed, type RowRange } from '../json-rows.js'
import { rowsFromRowset } from './rowset.js'

function malformed (connection: string): Malformed {
  return (what) => new ERR_UPSTREAM_FAILED(connection, `the upstream sent a result chunk that is not JSON rows: ${what}`)
}

/**
 * The byte ranges of `body`'s rows, grouped into slices of about `sliceBytes`.
 * A chunk is rows separated by commas without enclosing brackets (`["1","a"],["2","b"]`);
 * one whole array of rows (`[["1","a"]]`, `[]`) is read the same way inside its brackets.
 */
export function chunkSliceRanges (body: Buffer, connection: string, sliceBytes = SLICE_BYTES): RowRange[] {
  let start = 0
  let end = body.length
  while (start < end && isSpace(body[start] as number)) start++
  while (end > start && isSpace(body[end - 1] as number)) end--
  // The same test as before the chunk was sliced: `[[` or `[]` opens one array of rows.
  if (end - start >= 2 && body[start] === OPEN && (body[start + 1] === OPEN || body[start + 1] === CLOSE) && body[end - 1] === CLOSE) {
    start++
    end--
  }
  return scanRows(body, start, end, { rowOpen: OPEN, sliceBytes, fail: malformed(connection) }).ranges
}

/**
 * A chunk's rows, a slice at a time (at most `limit` rows in all: a page cut at the row cap).
 * A slice that does not parse (a token the cut does not read, `[tru]`) fails as the upstream's,
 * the same as on the inline and BigQuery paths, before any of its rows is handed on.
 */
export function chunkSlices (body: Buffer, connection: string, limit = Infinity, sliceBytes = SLICE_BYTES): Generator<unknown[][]> {
  const rows = new SlicedRows(body, chunkSliceRanges(body, connection, sliceBytes), malformed(connection), (parsed) => rowsFromRowset(parsed as unknown[][]))
  return rows.slices(0, limit)
}

/** Rows of a page already in memory (Arrow, inline rows parsed whole) are released in slices this size. */
export const ROWS_PER_SLICE = 500

/** Rows already in memory (an Arrow chunk, re-read inline rows) handed on in slices of `size`. */
export function * rowSlices (rows: unknown[][], size: number): Generator<unknown[][]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size)
}
