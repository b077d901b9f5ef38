// An upstream answer that carries result rows (jobs.query, getQueryResults, tabledata.list),
// read without parsing its rows: a page is up to 20,000 rows, tens of MB as objects, and parsed
// whole they all live until the page is encoded. The top-level `rows` array is found with one
// byte pass (../json-rows.ts), the rest of the answer is parsed as usual, and the rows stay
// bytes, cut between rows into slices that are parsed one at a time as the page is released.
// What is not well-formed is refused here, before any row is released.
import { OPEN, OPEN_OBJECT, SLICE_BYTES, parseSlice, scanRows, skipSpace, slicesUpTo, valueEnd, walkObject, type Malformed, type RowRange } from '../json-rows.js'
import type { ResultPage } from '../../pipeline/types.js'
import { decodeRows } from './codec.js'
import type { TableFieldSchema, TableRow } from './wire.js'

/** A page's rows as the upstream sent them: bytes, in slices, parsed when pulled. */
export class UpstreamRows {
  readonly #body: Buffer
  readonly #ranges: RowRange[]
  readonly #limit: number
  readonly #fail: Malformed
  /** Rows in the page (before any cut). */
  readonly total: number

  constructor (body: Buffer, ranges: RowRange[], fail: Malformed, limit = Infinity) {
    this.#body = body
    this.#ranges = ranges
    this.#fail = fail
    this.#limit = limit
    this.total = ranges.reduce((sum, [, , rows]) => sum + rows, 0)
  }

  /** Rows handed out: the page's, or fewer when it was cut. */
  get length (): number {
    return Math.min(this.total, this.#limit)
  }

  /** The first `n` rows only (a page cut at the row cap). */
  first (n: number): UpstreamRows {
    return new UpstreamRows(this.#body, this.#ranges, this.#fail, Math.min(this.#limit, Math.max(0, n)))
  }

  /** The rows, a slice at a time; a slice that does not parse fails the page. */
  slices (): Generator<TableRow[]> {
    const fail = this.#fail
    return slicesUpTo(this.#body, this.#ranges, this.#limit, (body, range) => {
      let rows: unknown[]
      try {
        rows = parseSlice(body, range)
      } catch {
        // JSON.parse's message quotes the text, cell values included: not handed on.
        throw fail('a row that is not JSON')
      }
      if (rows.length !== range[2]) throw fail('rows that do not parse as they were cut')
      return rows as TableRow[]
    })
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

const BOM = [0xef, 0xbb, 0xbf]

/**
 * The answer in `body` with its `rows` as UpstreamRows (in the member's own place, so the keys
 * keep their order). `rows: null` reads as no rows, as it always did; `fail` refuses the rest.
 */
export function readRowsAnswer<T extends { rows?: UpstreamRows }> (body: Buffer, fail: Malformed, sliceBytes = SLICE_BYTES): T {
  // A byte order mark is dropped, as reading the body as text does.
  const start = BOM.every((b, i) => body[i] === b) ? 3 : 0
  if (skipSpace(body, start, body.length) === body.length) return {} as T
  let found: { from: number, to: number, rows: UpstreamRows } | undefined
  const end = walkObject(body, start, fail, (name, at) => {
    if (name !== 'rows') return undefined
    if (found !== undefined) throw fail('two rows members')
    if (body[at] === OPEN) {
      const scan = scanRows(body, at + 1, body.length, { rowOpen: OPEN_OBJECT, sliceBytes, fail, closed: true })
      found = { from: at, to: scan.end + 1, rows: new UpstreamRows(body, scan.ranges, fail) }
      return found.to
    }
    const to = valueEnd(body, at, fail)
    if (body.toString('latin1', at, to) !== 'null') throw fail('rows that are not an array')
    found = { from: at, to, rows: new UpstreamRows(body, [], fail) }
    return to
  })
  if (skipSpace(body, end, body.length) !== body.length) throw fail('text after the answer')
  const text = found === undefined ? body.toString('utf8', start) : `${body.toString('utf8', start, found.from)}[]${body.toString('utf8', found.to)}`
  let answer: T
  try {
    answer = JSON.parse(text) as T
  } catch {
    throw fail('the answer around the rows is not JSON')
  }
  if (found !== undefined) answer.rows = found.rows
  return answer
}
