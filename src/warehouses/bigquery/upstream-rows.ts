// An upstream answer that carries result rows (jobs.query, getQueryResults, tabledata.list),
// read without parsing its rows: a page is up to 20,000 rows, tens of MB as objects, and parsed
// whole they all live until the page is encoded. The top-level `rows` array is found with one
// byte pass (../json-rows.ts), the rest of the answer is parsed as usual, and the rows stay
// bytes, cut between rows into slices that are parsed one at a time as the page is released.
// What is not well-formed is refused here, before any row is released.
import { OPEN, OPEN_OBJECT, SLICE_BYTES, SlicedRows, answerStart, parseAround, scanRows, skipSpace, valueEnd, walkObject, type Malformed, type RowRange } from '../json-rows.js'
import type { ResultPage } from '../../pipeline/types.js'
import { decodeRows } from './codec.js'
import type { TableFieldSchema, TableRow } from './wire.js'

/** A page's rows as the upstream sent them: bytes, in slices, parsed when pulled. */
export class UpstreamRows {
  readonly #rows: SlicedRows<TableRow>
  readonly #limit: number
  /** Rows in the page (before any cut). */
  readonly total: number

  constructor (rows: SlicedRows<TableRow>, limit = Infinity) {
    this.#rows = rows
    this.#limit = limit
    this.total = rows.total
  }

  /** Rows handed out: the page's, or fewer when it was cut. */
  get length (): number {
    return Math.min(this.total, this.#limit)
  }

  /** The first `n` rows only (a page cut at the row cap). */
  first (n: number): UpstreamRows {
    return new UpstreamRows(this.#rows, Math.min(this.#limit, Math.max(0, n)))
  }

  /** The rows, a slice at a time; a slice that does not parse fails the page. */
  slices (): Generator<TableRow[]> {
    return this.#rows.slices(0, this.#limit)
  }
}

// Sluice always asks the upstream for int64 timestamps, so integer strings are microseconds.
const DECODE = { int64Timestamps: true }

/**
 * A page's rows decoded to neutral rows, one pipeline page per slice. A page of no rows is still
 * one (empty) page: the pipeline releases it and counts it as none.
 */
export function * neutralPages (fields: TableFieldSchema[], rows: UpstreamRows | undefined): Generator<ResultPage> {
  let any = false
  for (const slice of rows?.slices() ?? []) {
    any = true
    yield { rows: decodeRows(fields, slice, DECODE) }
  }
  if (!any) yield { rows: [] }
}

/**
 * The answer in `body` with its `rows` as UpstreamRows (in the member's own place, so the keys
 * keep their order). `rows: null` reads as no rows, as it always did; `fail` refuses the rest.
 */
export function readRowsAnswer<T extends { rows?: UpstreamRows }> (body: Buffer, fail: Malformed, sliceBytes = SLICE_BYTES): T {
  const start = answerStart(body)
  if (skipSpace(body, start, body.length) === body.length) return {} as T
  const rowsOf = (ranges: RowRange[]): UpstreamRows => new UpstreamRows(new SlicedRows(body, ranges, fail, (rows) => rows as TableRow[]))
  let found: { from: number, to: number, rows: UpstreamRows } | undefined
  const end = walkObject(body, start, fail, (name, at) => {
    if (name !== 'rows') return undefined
    if (found !== undefined) throw fail('two rows members')
    if (body[at] === OPEN) {
      const scan = scanRows(body, at + 1, body.length, { rowOpen: OPEN_OBJECT, sliceBytes, fail, closed: true })
      found = { from: at, to: scan.end + 1, rows: rowsOf(scan.ranges) }
      return found.to
    }
    const to = valueEnd(body, at, fail)
    if (body.toString('latin1', at, to) !== 'null') throw fail('rows that are not an array')
    found = { from: at, to, rows: rowsOf([]) }
    return to
  })
  if (skipSpace(body, end, body.length) !== body.length) throw fail('text after the answer')
  const answer = parseAround<T>(body, start, found, fail)
  if (found !== undefined) answer.rows = found.rows
  return answer
}
