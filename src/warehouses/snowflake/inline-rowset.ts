// An upstream answer's inline rowset read without parsing its rows (../json-rows.ts says why).
// A large result's first answer inlines thousands of rows, megabytes of JSON, of which the
// first answer to the client needs only `firstPageRows`: parsed whole, the first byte waited on
// parsing and decoding all of them, and they all lived until the answer was built. Here the
// envelope is read with one byte pass that finds `data.rowset` and cuts it between rows; the
// rest of the envelope is parsed as usual, and the rows stay bytes, parsed a slice at a time
// when a page of them is released. What is not well-formed fails here, as JSON.parse would.
import { OPEN, OPEN_OBJECT, SLICE_BYTES, SlicedRows, answerStart, parseAround, scanRows, skipSpace, walkObject, type Malformed } from '../json-rows.js'
import { rowsFromArrow } from './arrow.js'
import { ROWS_PER_SLICE, rowSlices } from './chunk-slices.js'
import { rowsFromRowset } from './rowset.js'
import type { QueryData } from './query-data.js'

/** The rows an upstream answer carries inline, however it encoded them. */
export interface InlineRows {
  readonly total: number
  /** Rows [from, to), decoded, a slice at a time. */
  slices: (from: number, to: number) => Iterable<unknown[][]>
}

/** The upstream answered in Arrow (`rowsetBase64` and chunks), not JSON. */
export function isArrow (data: QueryData): boolean {
  return (data.queryResultFormat ?? '').toLowerCase() === 'arrow'
}

/**
 * The JSON envelope in `body` (`{success, code, message, data}`), with `data.rowset`, when it
 * is an array, as `data.inline` instead. `fail` refuses what is not JSON (a rowset that is
 * not rows included), where JSON.parse would have thrown.
 */
export function readEnvelope<T extends { data?: unknown }> (body: Buffer, fail: Malformed, sliceBytes = SLICE_BYTES): T {
  const start = answerStart(body)
  let found: { from: number, to: number, rowset: InlineRows } | undefined
  const rowsetIn = (name: string, at: number): number | undefined => {
    if (name !== 'rowset') return undefined
    if (found !== undefined) throw fail('two rowset members')
    // Anything but an array (null, say) is left to the parse, as before.
    if (body[at] !== OPEN) return undefined
    const scan = scanRows(body, at + 1, body.length, { rowOpen: OPEN, sliceBytes, fail, closed: true })
    // Snowflake's cells as Sluice reads them (rowset.ts), once the slice is cut to the rows asked for.
    found = { from: at, to: scan.end + 1, rowset: new SlicedRows(body, scan.ranges, fail, (rows) => rowsFromRowset(rows as unknown[][])) }
    return found.to
  }
  let datas = 0
  const end = walkObject(body, start, fail, (name, at) => {
    if (name !== 'data') return undefined
    // JSON.parse keeps the last of two `data` members; which rowset was cut must not be a guess.
    if (++datas > 1) throw fail('two data members')
    return body[at] === OPEN_OBJECT ? walkObject(body, at, fail, rowsetIn) : undefined
  })
  if (skipSpace(body, end, body.length) !== body.length) throw fail('text after the answer')
  const envelope = parseAround<T>(body, start, found, fail)
  if (found !== undefined) {
    const data = envelope.data as QueryData
    delete data.rowset
    data.inline = found.rowset
  }
  return envelope
}

/**
 * The rows `data` carries inline. An envelope read by readEnvelope has them as bytes; an Arrow
 * rowset, or a rowset parsed whole (a stub's, a small answer's), is decoded once and kept.
 */
export function inlineOf (data: QueryData): InlineRows {
  if (data.inline === undefined) {
    const rows = isArrow(data)
      ? rowsFromArrow(Buffer.from(data.rowsetBase64 ?? '', 'base64'), data.rowtype ?? [])
      : rowsFromRowset(data.rowset ?? [])
    data.inline = { total: rows.length, slices: (from, to) => rowSlices(rows.slice(from, to), ROWS_PER_SLICE) }
  }
  return data.inline
}

/** Inline rows [from, to) of an upstream answer, decoded, in one array. */
export function inlineRows (data: QueryData, from = 0, to = Infinity): unknown[][] {
  const rows: unknown[][] = []
  for (const slice of inlineOf(data).slices(from, to)) {
    for (const row of slice) rows.push(row)
  }
  return rows
}
