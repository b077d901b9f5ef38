// The one statement path both Snowflake front ends share: admit the request through the
// pipeline, refusing on the way what Sluice never forwards (PUT/GET) and a declared statement
// count that does not match, run each statement upstream, and let the pipeline release (mask,
// count) the inline first page before the result's manifest is kept for the client. Protocol
// encoding happens in the front ends.
//
// One splitter: the statements run upstream, one at a time, are exactly the statements of the
// admission's analysis (the parser's own split, src/sql/split.ts), so the policy decided on
// exactly what runs. A text the parser did not delimit is never cut here: it runs whole, as one
// statement the warehouse itself refuses if it holds more (MULTI_STATEMENT_COUNT = 1), or not at all.
import { ERR_BAD_REQUEST, ERR_SNOWFLAKE_FILE_TRANSFER, ERR_SNOWFLAKE_STATEMENT_COUNT, ERR_SNOWFLAKE_UNSUPPORTED } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { Pipeline, RoundTrip } from '../../pipeline.js'
import type { Admission, ClientInfo, Statement } from '../../pipeline/types.js'
import type { Analysis } from '../../sql/types.js'
import type { SnowflakeSettings } from './config.js'
import { admittedRecord } from '../../pipeline/admitted.js'
import { pageList, syntheticResult, upstreamChunks, upstreamTotal, type ResultManifest, type StoredResult } from './manifest.js'
import { schemaFromRowtype } from './rowset.js'
import { inlineOf, isArrow } from './inline-rowset.js'
import type { SnowflakeStatements } from './statements.js'
import type { FormatChoices } from './result-format.js'
import { leadingKeyword } from './leading-keyword.js'
import { explainEstimator, type SessionLease } from './estimate.js'
import type { SnowflakeUpstream, UpstreamSession } from './upstream.js'
import type { QueryData, QueryRequest, SessionContext } from './query-data.js'
import { statementFailed, type StatementFailedError } from './statement-failed.js'

export interface ExecuteRequest {
  frontEnd: string
  requestId: string
  principal: Principal
  settings: SnowflakeSettings
  upstream: SnowflakeUpstream
  session: UpstreamSession
  /** The session context the statement runs in (the session's own), for the policy's defaults. */
  context: SessionContext
  sql: string
  bindings?: Record<string, unknown>
  /** Statement parameters to forward: allowed by parameters.ts, MULTI_STATEMENT_COUNT taken out. */
  parameters?: Record<string, unknown>
  /** The result format the statement parameters ask for; kept with the result, never forwarded. */
  formats?: FormatChoices
  /** Describe the result without running the statement (the drivers' cursor.describe()). */
  describeOnly?: boolean
  /** What the client declared: 1 by default, 0 for "any number". */
  statementCount: number
  client: ClientInfo
  sessionId?: string
  signal?: AbortSignal
  /** An upstream session to ask EXPLAIN on, for the statement's estimate (estimate.ts). */
  estimateOn?: SessionLease
  /** A poll of the approval this statement is held under (pipeline/held.ts). */
  approvalId?: string
  /** A front end's own refusals (the SQL API's unsupported statements), by leading keyword. */
  refuse?: (keyword: string, text: string) => string | undefined
}

export interface ExecuteDeps {
  pipeline: Pipeline
  statements: SnowflakeStatements
}

const FILE_TRANSFER = new Set(['PUT', 'GET'])

export const MULTI_STATEMENT_TEXT = 'Multiple statements executed successfully.'
export const MULTI_STATEMENT_TYPE = 0xA000

/** A request that passed the checks and the pipeline's admission, ready to run upstream. */
export interface Prepared {
  statement: Statement
  /** Its analysis' statements are what runs (upstreamTexts). */
  admission: Admission
}

/** What admission needs: everything but the upstream session, which is leased only once admitted. */
export type PrepareInput = Omit<ExecuteRequest, 'session'>

/**
 * Checks and admission, before anything reaches the upstream. Front ends call this inside the
 * client's request even for async execution, so a refusal is answered (and recorded) at once.
 */
export async function prepareRequest (deps: ExecuteDeps, req: PrepareInput, trip: RoundTrip): Promise<Prepared> {
  trip.sql = req.sql
  const statement = statementOf(req, req.sql)
  // The checks need the parser's split, so they run inside admission, on its analysis: before
  // the decision, any hold or admitted record, and long before anything reaches the upstream.
  const admission = await deps.pipeline.admit(statement, trip, { analysed: (analysis) => { checkStatements(req, analysis) } })
  return { statement, admission }
}

/**
 * The front ends' own refusals, on the statements the parser found, which are the ones that
 * would run: an empty request, PUT/GET, what the front end does not run (`req.refuse`), a
 * declared count other than the parser's, bind variables across several statements.
 */
function checkStatements (req: PrepareInput, analysis: Analysis): void {
  if (analysis.undelimited === 'empty') throw new ERR_BAD_REQUEST('the request carries no SQL statement')
  const statements = analysis.statements
  for (const s of statements) {
    const keyword = leadingKeyword(s.text)
    if (FILE_TRANSFER.has(keyword)) throw new ERR_SNOWFLAKE_FILE_TRANSFER(`${keyword} was sent`)
    const refusal = req.refuse?.(keyword, s.text)
    if (refusal !== undefined) throw new ERR_SNOWFLAKE_UNSUPPORTED(refusal)
  }
  if (analysis.undelimited === 'unattributed') {
    throw new ERR_SNOWFLAKE_UNSUPPORTED('a multi-statement request whose statements Sluice could not tell apart in the text; send the statements one at a time')
  }
  const declared = req.statementCount
  if (analysis.undelimited === 'unread') {
    // How many statements an unread text holds nobody knows: it can only run whole, as one. A
    // syntax error is left to the policy, which answers it as one (never run either).
    const only = statements[0]
    if (declared > 1 && only?.unparsed === undefined) {
      throw new ERR_SNOWFLAKE_UNSUPPORTED(`${only?.parseError ?? 'the request could not be read'}, so Sluice cannot tell the ${declared} statements of this request apart; send them one at a time`)
    }
  } else if (declared !== 0 && declared !== statements.length) {
    throw new ERR_SNOWFLAKE_STATEMENT_COUNT(statements.length, declared)
  }
  if (statements.length > 1 && req.bindings !== undefined && Object.keys(req.bindings).length > 0) {
    throw new ERR_SNOWFLAKE_UNSUPPORTED('bind variables in a multi-statement request; send the statements one at a time')
  }
}

/**
 * The texts to run upstream, one request each: the analysis' statements, or for a text the
 * parser could not read, the whole of it as one statement (`whole`), which the warehouse is
 * told to refuse if it holds more than one. Never anything the analysis did not delimit.
 */
function upstreamTexts (analysis: Analysis): { texts: string[], whole: boolean } {
  const texts = analysis.statements.map((s) => s.text)
  if (analysis.undelimited === undefined && texts.length > 0) return { texts, whole: false }
  if (analysis.undelimited === 'unread' && texts.length === 1) return { texts, whole: true }
  // checkStatements refused these before admission; kept closed here all the same.
  throw new ERR_SNOWFLAKE_UNSUPPORTED('a request whose statements Sluice could not delimit; send the statements one at a time')
}

/**
 * Runs an admitted request upstream. The pipeline releases (masks, counts) the inline first
 * page here; every later page stays upstream and is masked when a client asks for it
 * (pages.ts). `handleId` names the handle the result is kept under, for the page cache.
 */
export async function runPrepared (deps: ExecuteDeps, req: ExecuteRequest, prepared: Prepared, trip: RoundTrip, handleId?: string): Promise<StoredResult> {
  const { statement, admission } = prepared
  const { texts, whole } = upstreamTexts(admission.analysis)
  if (texts.length === 1) {
    const { result, data } = await runOne(deps, req, statement, texts[0] as string, admission, trip, whole)
    if (handleId !== undefined && data !== undefined) deps.statements.seed(handleId, data)
    return withFormats(result, req)
  }

  const children: string[] = []
  const childTypes: number[] = []
  let rows = 0
  const masked: NonNullable<RoundTrip['maskedColumns']> = []
  const record = admittedRecord(statement, admission)
  for (const part of texts) {
    const childTrip: RoundTrip = trip.traceContext === undefined ? {} : { traceContext: trip.traceContext }
    const { result, data } = await runOne(deps, { ...req, sql: part }, statementOf(req, part), part, admission, childTrip, false)
    rows += childTrip.rowsReturned ?? 0
    masked.push(...(childTrip.maskedColumns ?? []))
    // One capture per event: the first child's, which is what a client reads first.
    if (trip.capture === undefined && childTrip.capture !== undefined) trip.capture = childTrip.capture
    if (childTrip.upstreamId !== undefined) trip.upstreamId = childTrip.upstreamId
    if (childTrip.rowsLimited !== undefined) trip.rowsLimited ??= childTrip.rowsLimited
    // A child's later pages are masked under the request's decision, as its first page was.
    const child = await deps.statements.put(req.principal, req.settings.name, part, withFormats(result, req), { admitted: record, part, trip: childTrip })
    if (data !== undefined) deps.statements.seed(child.id, data)
    children.push(child.id)
    childTypes.push(result.manifest.statementTypeId ?? 4096)
  }
  trip.rowsReturned = rows
  trip.maskedColumns = masked
  const rowtype = [{ name: 'multiple statement execution', type: 'text', nullable: false, length: 16777216, byteLength: 16777216, precision: null, scale: null, database: '', schema: '', table: '' }]
  // The drivers recognise a multi-statement parent by this type id (0xA000) and its resultIds.
  return withFormats(syntheticResult(rowtype, { columns: [{ name: 'multiple statement execution', type: 'TEXT' }] }, [[MULTI_STATEMENT_TEXT]],
    { statementTypeId: MULTI_STATEMENT_TYPE, children, childTypes }), req)
}

/** Keeps the format the request asked for with its result, for every fetch that serves it. */
function withFormats (result: StoredResult, req: ExecuteRequest): StoredResult {
  if (req.formats !== undefined && Object.keys(req.formats).length > 0) result.manifest.formats = req.formats
  return result
}

/**
 * Runs one statement text of an admitted request. `whole`: a text the parser could not read,
 * run as one statement, which the warehouse refuses if it holds more (MULTI_STATEMENT_COUNT 1).
 */
async function runOne (deps: ExecuteDeps, req: ExecuteRequest, statement: Statement, text: string, admission: Admission, trip: RoundTrip, whole: boolean): Promise<{ result: StoredResult, data?: QueryData }> {
  const query: QueryRequest = { sqlText: text }
  if (req.describeOnly === true) query.describeOnly = true
  if (req.bindings !== undefined && Object.keys(req.bindings).length > 0) query.bindings = req.bindings
  if (req.parameters !== undefined && Object.keys(req.parameters).length > 0) query.parameters = req.parameters
  if (whole) query.parameters = { ...query.parameters, MULTI_STATEMENT_COUNT: 1 }
  // The rule's timeout is sent upstream too (the tighter of the client's and the rule's); the
  // run keeps it itself as well, so an upstream that stalls (or ignores the parameter) is
  // cancelled when it runs out and the client gets Snowflake's own 000630.
  const run = deps.pipeline.run(statement, admission, trip, { ...(req.signal !== undefined && { signal: req.signal }) })
  const ruleTimeout = run.timeoutSeconds
  if (ruleTimeout !== undefined) {
    const asked = Number(query.parameters?.STATEMENT_TIMEOUT_IN_SECONDS ?? 0)
    query.parameters = { ...query.parameters, STATEMENT_TIMEOUT_IN_SECONDS: asked > 0 ? Math.min(asked, ruleTimeout) : ruleTimeout }
  }
  const cap = run.cap
  let data: QueryData
  let firstPage: unknown[][] = []
  let schema: StoredResult['manifest']['schema']
  let limited: boolean
  let unstored = 0
  // The failure is kept on the handle and read by both protocols (and monitoring): it is
  // released here, once, under the statement it belongs to.
  const failure = (err: unknown): unknown => releaseFailure(deps.pipeline, statement, admission, err)
  try {
    data = await run.upstream(async (signal) => await req.upstream.query(req.session, query, signal), failure)
    const inline = inlineOf(data)
    // Decided from the upstream's own count, before any row is released.
    limited = run.checkTotal(upstreamTotal(inline.total, data))
    const kept = cap !== undefined ? Math.min(inline.total, cap.rows) : inline.total
    // A result the upstream pages in chunks can be re-read by its query id: only its first rows
    // are parsed, masked and recorded before the first answer, the rest of the inline rows are
    // served as pages of their own (manifest.ts). A result that is all inline is kept whole, as
    // the upstream may not answer for it again (emulators do not).
    const stored = (data.chunks ?? []).length > 0 && data.queryId !== undefined ? Math.min(kept, req.settings.firstPageRows) : kept
    unstored = kept - stored
    const released = run.release({ schema: schemaFromRowtype(data.rowtype ?? []), pages: pagesOf(inline.slices(0, stored)), ...(data.queryId === undefined ? {} : { upstreamId: data.queryId }) })
    schema = released.schema
    for await (const page of released.pages) {
      for (const row of page.rows) firstPage.push(row)
    }
  } catch (err) {
    if (run.expired()) throw run.timedOut()
    throw err
  } finally {
    run.close()
  }
  const { pages, total: released } = pageList(firstPage, upstreamChunks(data), req.settings.partitionRows, cap?.rows, unstored)
  const manifest: ResultManifest = {
    rowtype: data.rowtype ?? [],
    schema,
    final: {
      database: data.finalDatabaseName,
      schema: data.finalSchemaName,
      warehouse: data.finalWarehouseName,
      role: data.finalRoleName
    },
    parameters: data.parameters ?? [],
    context: req.session.context,
    upstreamArrow: isArrow(data),
    total: released,
    pages
  }
  if (limited) {
    const notice = run.limited()
    if (notice !== undefined) manifest.notice = notice
  }
  if (data.statementTypeId !== undefined) manifest.statementTypeId = data.statementTypeId
  if (data.queryId !== undefined) manifest.upstreamQueryId = data.queryId
  return { result: { manifest, firstPage }, data }
}

/** Slices of rows as pipeline pages; none at all is still one (empty) page, a result of no rows. */
async function * pagesOf (slices: Iterable<unknown[][]>): AsyncIterable<{ rows: unknown[][] }> {
  let any = false
  for (const rows of slices) {
    any = true
    yield { rows }
  }
  if (!any) yield { rows: [] }
}

/**
 * A statement failure with the warehouse's text released through the pipeline (withheld when
 * the statement reads masked columns, detector-redacted otherwise); other errors as they are.
 */
export function releaseFailure (pipeline: Pipeline, statement: Statement | undefined, admission: Admission | undefined, err: unknown): unknown {
  const raw = (err as StatementFailedError | undefined)?.upstream
  if (raw === undefined) return err
  const failed = err as StatementFailedError
  const message = pipeline.releaseError(statement, admission, raw.message, { code: failed.snowflakeCode, sqlState: failed.sqlState })
  return statementFailed(raw.connection, message, failed, true)
}

function statementOf (req: PrepareInput, sql: string): Statement {
  const ctx: SessionContext = req.context
  const database = ctx.database ?? req.settings.database
  const schema = ctx.schema ?? req.settings.schema
  const statement: Statement = {
    requestId: req.requestId,
    frontEnd: req.frontEnd,
    principal: req.principal,
    connection: { name: req.settings.name, kind: 'snowflake', defaults: { ...(database === undefined ? {} : { database }), ...(schema === undefined ? {} : { schema }) } },
    sql,
    client: req.client
  }
  if (req.bindings !== undefined) statement.params = req.bindings
  if (req.sessionId !== undefined) statement.sessionId = req.sessionId
  if (req.approvalId !== undefined) statement.approvalId = req.approvalId
  if (req.estimateOn !== undefined) statement.estimate = explainEstimator(req.upstream, req.estimateOn, sql, req.bindings)
  return statement
}
