// Encoding for the connector protocol: catalogue errors → `success:false` bodies with Snowflake
// codes the drivers act on, and stored (masked) results → query response `data`.
import { isSluiceError, UpstreamError } from '../../errors.js'
import type { Handle } from './handles.js'
import { JsonElements } from '../json-rows.js'
import type { PageEncoder } from './pages.js'
import { sliceOf, type ResultManifest, type StoredResult } from './manifest.js'
import { arrowFromRows, type ArrowEncodeOptions } from './arrow-encode.js'
import type { ResultFormat } from './result-format.js'
import { rowsetFromRows } from './rowset.js'

export interface SnowflakeErrorInfo {
  code: string
  sqlState: string
  message: string
}

/** Snowflake's own codes for what each catalogue error means, so drivers react as they would. */
const CODES: Record<string, [string, string]> = {
  SLUICE_POLICY_DENIED: ['003001', '42501'],
  // Snowflake's own "SQL compilation error: syntax error …", which drivers raise as a ProgrammingError.
  SLUICE_SQL_SYNTAX: ['001003', '42000'],
  // Refused before parsing or over the parser's budget: the SQL standard's program-limit states
  // (54000 program limit exceeded, 54001 statement too complex), as compilation errors.
  SLUICE_STATEMENT_TOO_LARGE: ['001003', '54000'],
  SLUICE_STATEMENT_TOO_COMPLEX: ['001003', '54001'],
  SLUICE_APPROVAL_REQUIRED: ['003001', '42501'],
  // A held statement that will not run: refused as a privilege error, as the hold itself is;
  // withdrawn by the client's own cancel, it reads as Snowflake's cancelled statement.
  SLUICE_APPROVAL_DENIED: ['003001', '42501'],
  SLUICE_APPROVAL_EXPIRED: ['003001', '42501'],
  SLUICE_APPROVAL_MISMATCH: ['003001', '42501'],
  SLUICE_APPROVAL_WITHDRAWN: ['000604', '57014'],
  SLUICE_SNOWFLAKE_CONTEXT_REFUSED: ['390189', '08004'],
  SLUICE_SNOWFLAKE_FILE_TRANSFER: ['000002', '0A000'],
  SLUICE_SNOWFLAKE_STATEMENT_COUNT: ['000008', '0A000'],
  SLUICE_SNOWFLAKE_UNSUPPORTED: ['000002', '0A000'],
  // A refused statement parameter: "not supported", as Snowflake words a feature it lacks.
  SLUICE_SNOWFLAKE_PARAMETER_REFUSED: ['000002', '0A000'],
  SLUICE_SNOWFLAKE_CANCELLED: ['000604', '57014'],
  SLUICE_AUTH_MISSING: ['390303', '08001'],
  SLUICE_AUTH_INVALID: ['390303', '08001'],
  SLUICE_AUTH_ISSUER_UNAVAILABLE: ['390303', '08001'],
  SLUICE_FORBIDDEN: ['390303', '08001'],
  SLUICE_SNOWFLAKE_SESSION: ['390104', '08001'],
  SLUICE_SNOWFLAKE_SESSION_EXPIRED: ['390112', '08001'],
  SLUICE_SNOWFLAKE_MASTER_EXPIRED: ['390114', '08001'],
  SLUICE_UNKNOWN_CONNECTION: ['390201', '08004'],
  SLUICE_NOT_FOUND: ['000709', '02000'],
  SLUICE_BAD_REQUEST: ['000900', '42601'],
  SLUICE_METHOD_NOT_ALLOWED: ['000002', '0A000'],
  // A requestId reused for another request: a unique key already taken (23505).
  SLUICE_IDEMPOTENCY_CONFLICT: ['000900', '23505'],
  SLUICE_IDEMPOTENCY_UNAVAILABLE: ['000900', '55000'],
  SLUICE_UPSTREAM_UNAVAILABLE: ['000603', 'XX000'],
  // Snowflake's own "Statement reached its statement or warehouse timeout … and was canceled."
  SLUICE_STATEMENT_TIMEOUT: ['000630', '57014'],
  SLUICE_ROWS_LIMIT: ['003001', '42501'],
  SLUICE_UPSTREAM_FAILED: ['000603', 'XX000'],
  SLUICE_STORE_UNAVAILABLE: ['000603', 'XX000'],
  // Ran, but withheld: an internal error the drivers do not retry.
  SLUICE_RESULT_UNRECORDED: ['000603', 'XX000']
}

/** Releases upstream error text (the pipeline's releaseError, without a statement). */
export type ReleaseText = (message: string, codes: { code: string, sqlState: string }) => string

/**
 * What a client may see of an error; anything outside the catalogue is an internal error.
 * Errors that carry upstream wording pass through `release` as a safety net: statement
 * failures were already released under their statement (execute.ts), but a login refusal or a
 * failure raised elsewhere was not, and the detectors must see it before any client does.
 */
export function errorInfo (err: unknown, requestId: string, release?: ReleaseText): SnowflakeErrorInfo & { catalogueCode: string } {
  if (isSluiceError(err)) {
    const e = err as unknown as Record<string, unknown> & { code: string, message: string }
    const safe = (code: string, sqlState: string): string => release === undefined || !(err instanceof UpstreamError) ? e.message : release(e.message, { code, sqlState })
    if (e.code === 'SLUICE_SNOWFLAKE_STATEMENT_FAILED') {
      const code = typeof e.snowflakeCode === 'string' ? e.snowflakeCode : '000603'
      const sqlState = typeof e.sqlState === 'string' ? e.sqlState : 'XX000'
      return { catalogueCode: e.code, code, sqlState, message: safe(code, sqlState) }
    }
    const [code, sqlState] = CODES[e.code] ?? ['000603', 'XX000']
    return { catalogueCode: e.code, code, sqlState, message: safe(code, sqlState) }
  }
  return { catalogueCode: 'SLUICE_INTERNAL', code: '000603', sqlState: 'XX000', message: `internal error; quote request id ${requestId}` }
}

export function connectorErrorBody (info: SnowflakeErrorInfo, queryId?: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const data: Record<string, unknown> = { ...extra, errorCode: info.code, sqlState: info.sqlState, internalError: false, age: 0 }
  if (queryId !== undefined) data.queryId = queryId
  return { data, code: info.code, message: info.message, success: false, headers: null }
}

export function connectorOk (data: unknown = null): Record<string, unknown> {
  return { data, code: null, message: null, success: true }
}

/** Parameters every Sluice session announces, whatever the upstream said. */
export const SESSION_PARAMETER_OVERRIDES: Record<string, unknown> = {
  // Array binds above this size would be staged with PUT, which Sluice refuses; keep them inline.
  CLIENT_STAGE_ARRAY_BINDING_THRESHOLD: 65280,
  CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY: 3600
}

export function sessionParameters (upstream: Array<{ name: string, value: unknown }>): Array<{ name: string, value: unknown }> {
  const merged = new Map<string, unknown>()
  for (const p of upstream) merged.set(p.name, p.value)
  for (const [name, value] of Object.entries(SESSION_PARAMETER_OVERRIDES)) merged.set(name, value)
  return [...merged].map(([name, value]) => ({ name, value }))
}

export interface ChunkLinks {
  /** Absolute base for chunk URLs (the URL the client reached Sluice at). */
  baseUrl: string
  token: string
  /** The format the client is served (result-format.ts), where the result allows it. */
  format: ResultFormat
}

/** Snowflake's DML statement types (0x3000…0x3FFF): the drivers read their counts from the rowset. */
function isDml (statementTypeId: number | undefined): boolean {
  return statementTypeId !== undefined && (statementTypeId & 0xF000) === 0x3000
}

/**
 * Arrow for a client that reads it, as Snowflake serves it: every query result, empty ones
 * included (an empty rowsetBase64, which fetch_pandas_all reads as an empty frame where a JSON
 * answer would raise NotSupportedError). JSON for DML counts, multi-statement parents (the
 * drivers read both from the rowset) and a result a mask left unfit for its column's Arrow type,
 * as its masked first page shows (every page is masked by the same plan).
 */
function useArrow (result: StoredResult, links: ChunkLinks): boolean {
  const m = result.manifest
  if (links.format !== 'arrow' || m.children !== undefined || isDml(m.statementTypeId)) return false
  return result.firstPage.length === 0 || arrowFromRows(m.rowtype, rowsetFromRows(result.firstPage), arrowOptions(m)) !== undefined
}

/**
 * A result in several pieces is encoded so they all share one Arrow schema: the Python
 * connector's core reads the inline rowset and every chunk as one stream (arrow-encode.ts).
 */
function arrowOptions (manifest: ResultManifest): ArrowEncodeOptions {
  return { stableWidths: manifest.pages.length > 1 }
}

/**
 * One chunk's body in the format its URL names, encoded as its rows are released. JSON rows are
 * encoded slice by slice into bytes (the page keeps its text, not its rows); an Arrow chunk is
 * one IPC stream of the page's rows, built when the last slice is in (and JSON when its types
 * cannot be written as Arrow).
 */
export function chunkEncoder (manifest: ResultManifest, format: string | undefined): PageEncoder<{ body: Buffer, arrow: boolean }> {
  if (format === 'arrow') {
    const rows: unknown[][] = []
    return {
      add: (slice) => { for (const row of slice) rows.push(row) },
      end: () => {
        const ipc = arrowFromRows(manifest.rowtype, rowsetFromRows(rows), arrowOptions(manifest))
        return ipc !== undefined ? { body: Buffer.from(ipc), arrow: true } : { body: Buffer.from(chunkBody(rows)), arrow: false }
      }
    }
  }
  const text = jsonRowsEncoder()
  return { add: text.add, end: () => ({ body: text.end(), arrow: false }) }
}

/**
 * Rows as JSON rowset text joined by commas (no enclosing brackets), encoded a slice at a time
 * into bytes, so the page's rows can go as soon as they are encoded.
 */
export function jsonRowsEncoder (map?: (rows: Array<Array<string | null>>) => unknown[][]): PageEncoder<Buffer> {
  const text = new JsonElements()
  return {
    add: (rows) => {
      const rowset = rowsetFromRows(rows)
      text.add(map === undefined ? rowset : map(rowset))
    },
    end: () => Buffer.concat(text.parts())
  }
}

/**
 * The query response `data` for a finished result: the first page inline, every later page as
 * a result chunk served by Sluice itself (never cloud storage), fetched with a Sluice chunk
 * token and produced when the driver downloads it. Counts and sizes come from the manifest.
 */
export function queryResponseData (handle: Handle, result: StoredResult, links: ChunkLinks, sessionParams: Array<{ name: string, value: unknown }>): Record<string, unknown> {
  const m = result.manifest
  const first = m.pages[0]
  const inline = first === undefined ? [] : sliceOf(result, first)
  const arrow = useArrow(result, links)
  const data: Record<string, unknown> = {
    parameters: sessionParameters([...sessionParams, ...m.parameters]),
    rowtype: m.rowtype,
    total: m.total,
    returned: m.total,
    queryId: handle.id,
    databaseProvider: null,
    finalDatabaseName: m.final.database ?? null,
    finalSchemaName: m.final.schema ?? null,
    finalWarehouseName: m.final.warehouse ?? null,
    finalRoleName: m.final.role ?? null,
    numberOfBinds: 0,
    arrayBindSupported: false,
    statementTypeId: m.statementTypeId ?? 4096,
    version: 1,
    sendResultTime: Date.now(),
    queryResultFormat: arrow ? 'arrow' : 'json'
  }
  if (arrow) data.rowsetBase64 = inline.length === 0 ? '' : Buffer.from(arrowFromRows(m.rowtype, rowsetFromRows(inline), arrowOptions(m)) ?? []).toString('base64')
  else data.rowset = rowsetFromRows(inline)
  if (m.children !== undefined) {
    data.resultIds = m.children.join(',')
    data.resultTypes = (m.childTypes ?? m.children.map(() => 4096)).join(',')
  }
  const chunks = m.pages.slice(1).map((page, n) => {
    const url = `${links.baseUrl}/sluice/snowflake/chunks/${handle.id}/${n}${arrow ? '?format=arrow' : ''}`
    return { url, rowCount: page.rows, uncompressedSize: page.bytes, compressedSize: page.bytes }
  })
  if (chunks.length > 0) {
    data.chunks = chunks
    data.chunkHeaders = { 'x-sluice-chunk-token': links.token }
  }
  return data
}

/** A JSON result chunk as Snowflake stores it: rows joined by commas, no enclosing brackets. */
export function chunkBody (rows: unknown[][]): string {
  // One string for the page (its brackets sliced off), not one per row to be joined.
  return JSON.stringify(rowsetFromRows(rows)).slice(1, -1)
}
