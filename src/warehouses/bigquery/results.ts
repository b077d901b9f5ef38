// The one way rows leave the BigQuery front end: upstream f/v rows are decoded to the neutral
// result, released through the pipeline (masked and counted), and encoded back in the form the
// client asked for, a slice of ~64 KB at a time (upstream-rows.ts, encoded-rows.ts). jobs.query,
// getQueryResults pages and tabledata.list all come through here.
import type { StatementRun } from '../../pipeline.js'
import type { ResultPage } from '../../pipeline/types.js'
import { columnsOf, encodeRows, type TimestampForm } from './codec.js'
import { ERR_BAD_REQUEST } from '../../errors.js'
import type { RowCap } from '../../pipeline/limits.js'
import type { JobRegistry } from './registry.js'
import type { PageCursor } from '../../state/bigquery-jobs.js'
import type { TableFieldSchema } from './wire.js'
import { EncodedRows } from './encoded-rows.js'
import { neutralPages, type UpstreamRows } from './upstream-rows.js'

export interface ReleaseInput {
  fields: TableFieldSchema[]
  rows: UpstreamRows
  upstreamId?: string
  /** The TIMESTAMP form the client asked for (see timestampForm). */
  timestamps: TimestampForm
}

/**
 * The page's rows released a slice at a time (one pipeline page per slice) and each slice
 * encoded at once, so the page holds its encoded text, not its rows. Nothing of it is sent
 * before the whole page is encoded: the round trip's event, written before the response leaves,
 * covers every row, and a page that fails part way is sent and recorded as no rows.
 */
export async function releaseRows (run: StatementRun, input: ReleaseInput): Promise<EncodedRows> {
  const { fields, rows } = input
  async function * pages (): AsyncIterable<ResultPage> {
    yield * neutralPages(fields, rows)
  }
  const released = run.release({ schema: { columns: columnsOf(fields) }, pages: pages(), upstreamId: input.upstreamId })
  const encoded = new EncodedRows()
  try {
    for await (const page of released.pages) encoded.add(encodeRows(fields, page.rows, { timestamps: input.timestamps }))
  } catch (err) {
    run.unsent()
    throw err
  }
  return encoded
}

/**
 * The schema tabledata.list rows follow when `selectedFields` is given: the table's own field
 * order, nested records pruned to the selected subfields ("address.city").
 */
export function projectFields (fields: TableFieldSchema[], selectedFields: string | undefined): TableFieldSchema[] {
  if (selectedFields === undefined || selectedFields.trim() === '') return fields
  const paths = selectedFields.split(',').map((p) => p.trim().toLowerCase().split('.')).filter((p) => p[0] !== '')
  return prune(fields, paths)
}

function prune (fields: TableFieldSchema[], paths: string[][]): TableFieldSchema[] {
  const out: TableFieldSchema[] = []
  for (const field of fields) {
    const name = field.name.toLowerCase()
    const matching = paths.filter((p) => p[0] === name)
    if (matching.length === 0) continue
    const nested = matching.filter((p) => p.length > 1).map((p) => p.slice(1))
    if (matching.some((p) => p.length === 1) || field.fields === undefined || nested.length === 0) {
      out.push(field)
    } else {
      out.push({ ...field, fields: prune(field.fields, nested) })
    }
  }
  return out
}

/** A boolean as clients spell it: true (JSON), `true` (Node, bq) or `True` (Python). */
function flag (value: unknown): boolean {
  return value === true || (typeof value === 'string' && /^(true|1)$/i.test(value.trim()))
}

/**
 * The TIMESTAMP form a client asked for, from a QueryRequest's `formatOptions` object or the
 * `formatOptions.*` query parameters of getQueryResults and tabledata.list.
 */
export function timestampForm (useInt64Timestamp: unknown, timestampOutputFormat: unknown): TimestampForm {
  if (timestampOutputFormat === 'ISO8601_STRING') return 'iso'
  if (timestampOutputFormat === 'INT64' || flag(useInt64Timestamp)) return 'int64'
  return 'float'
}

/** A page of rows with the paging fields a policy's maxRows may cut. */
export interface Paged {
  rows?: UpstreamRows
  pageToken?: string
  totalRows?: string
}

/**
 * Where the requested page starts, counted from the first row of the result: `startIndex`, or
 * the start Sluice remembered for a page token it handed out. With a row limit in force an
 * unknown token cannot be placed, so the read is refused rather than let past the limit.
 */
export async function pageStartOf (registry: JobRegistry, scope: PageScope, query: Record<string, string | undefined>, maxRows: number | undefined): Promise<number> {
  if (query.startIndex !== undefined && query.startIndex !== '') {
    if (!/^\d+$/.test(query.startIndex)) throw new ERR_BAD_REQUEST(`startIndex must be a non-negative integer, got ${query.startIndex}`)
    return Number(query.startIndex)
  }
  if (query.pageToken === undefined || query.pageToken === '') return 0
  // Placed only while a row cap is in force: without one, where a page starts changes nothing.
  if (maxRows === undefined) return 0
  const start = await registry.pageStart({ ...scope, pageToken: query.pageToken })
  if (start === undefined) {
    throw new ERR_BAD_REQUEST('this pageToken was not issued to you by this gateway (or has expired); read the result again from its first page')
  }
  return start
}

/** Page tokens are placed per caller and per result: a job (its result table included) or a table. */
export type PageScope = Omit<PageCursor, 'pageToken'>

/** A page cut at the run's row cap: what the client is told, and which limit cut it. */
export interface Limited {
  notice: string
  by: RowCap['by']
}

/**
 * Applies the run's row cap to one page that starts at row `start`: the run decides (a result
 * longer than the cap is refused whole under maxRowsAction refuse, or cut and announced); the
 * page keeps its paging in BigQuery's terms: rows past the cap are dropped, and at the cap the
 * page token goes so clients stop paging; `totalRows` stays the true count. Remembers where
 * the next page starts for the token that stays.
 */
export async function capPage<T extends Paged> (registry: JobRegistry, scope: PageScope, page: T, start: number, run: StatementRun): Promise<{ page: T, limited: Limited | undefined }> {
  const count = page.rows?.length ?? 0
  const cap = run.cap
  if (cap === undefined) return { page, limited: undefined }
  const cut = run.checkTotal(Math.max(Number(page.totalRows ?? 0), start + count))
  const room = Math.max(0, cap.rows - start)
  const capped: T = { ...page }
  if (page.rows !== undefined) capped.rows = page.rows.first(room)
  if (start + count >= cap.rows) {
    delete capped.pageToken
  } else if (page.pageToken !== undefined) {
    await registry.rememberPageStart({ ...scope, pageToken: page.pageToken }, start + count)
  }
  const notice = cut ? run.limited() : undefined
  return { page: capped, limited: notice === undefined ? undefined : { notice, by: cap.by } }
}

/**
 * A query result cut at its row cap says so as a warning in `errors`, which BigQuery documents
 * as "errors or warnings" that do not fail the job.
 */
export function warnLimited<T extends object> (page: T, limited: Limited): T {
  const warning = { reason: 'rowsLimited', location: limited.by, message: limited.notice, domain: 'sluice' }
  return { ...page, errors: [...((page as { errors?: unknown[] }).errors ?? []), warning] }
}
