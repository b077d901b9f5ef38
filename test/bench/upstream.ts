// An instant loopback warehouse for the gateway benchmark, in its own process: Snowflake's
// connector protocol (what Sluice calls upstream), Snowflake's SQL API v2 (what a client calls
// when it talks to Snowflake directly) and BigQuery's jobs.query / getQueryResults, in the wire
// shapes the test stubs follow (test/support/snowflake-upstream-stub.ts, test/bigquery/stub-upstream.ts).
// Those stubs keep per-request logs and state for assertions and answer BigQuery queries "not
// done yet"; this one keeps nothing, so it costs the same on the millionth request as on the first.
//
// Any statement naming a table ROWS_<n> (any case, any qualifier) answers n generated rows
// (ID, NAME, EMAIL, AMOUNT, NOTE; about 200 bytes of JSON a row). Large results page the way the
// warehouses do: the connector inlines the first INLINE_ROWS rows and lists the rest as chunks
// to download; the SQL API answers partition 0 inline and the others on GET ?partition=n; BigQuery
// answers the first page with a pageToken. Everything is computed from the request alone
// (handles, chunk URLs and page tokens carry the row range), and bodies of the same range are
// cached so the upstream's own cost stays near zero.
//
// Run alone: node --import tsx test/bench/upstream.ts <port>
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'

export const BENCH_PROJECT = 'bench-project'
/** Rows a connector answer carries inline; the rest are chunks of CHUNK_ROWS. */
export const INLINE_ROWS = 10_000
export const CHUNK_ROWS = 20_000
/** SQL API partition size (Sluice's own partitionRows default is the same). */
export const PARTITION_ROWS = 10_000
/** BigQuery page size when the client sets no maxResults. */
export const PAGE_ROWS = 20_000

const NOTE = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.'

export function benchRow (i: number): string[] {
  return [String(i), `Customer ${i}`, `user${i}@example.com`, `${Math.floor(i / 4)}.${String((i % 4) * 25).padStart(2, '0')}`, NOTE]
}

const COLUMNS = [
  { name: 'ID', type: 'fixed', scale: 0, precision: 38, nullable: false, bq: 'INTEGER' },
  { name: 'NAME', type: 'text', length: 256, nullable: true, bq: 'STRING' },
  { name: 'EMAIL', type: 'text', length: 256, nullable: true, bq: 'STRING' },
  { name: 'AMOUNT', type: 'fixed', scale: 2, precision: 12, nullable: true, bq: 'NUMERIC' },
  { name: 'NOTE', type: 'text', length: 1024, nullable: true, bq: 'STRING' }
]
const ROWTYPE = COLUMNS.map(({ bq: _bq, ...c }) => ({ ...c, database: 'BENCH', schema: 'PUBLIC', table: 'ROWS', byteLength: null }))
const BQ_SCHEMA = { fields: COLUMNS.map((c) => ({ name: c.name.toLowerCase(), type: c.bq, mode: c.nullable ? 'NULLABLE' : 'REQUIRED' })) }

/** Rows [start, start + count) as JSON array rows without the enclosing brackets (a connector chunk). */
const jsonRowsCache = new Map<string, string>()
function jsonRows (start: number, count: number): string {
  const key = `${start}:${count}`
  let text = jsonRowsCache.get(key)
  if (text === undefined) {
    const parts: string[] = []
    for (let i = start; i < start + count; i++) parts.push(JSON.stringify(benchRow(i)))
    text = parts.join(',')
    jsonRowsCache.set(key, text)
  }
  return text
}

const bqRowsCache = new Map<string, string>()
function bqRows (start: number, count: number): string {
  const key = `${start}:${count}`
  let text = bqRowsCache.get(key)
  if (text === undefined) {
    const parts: string[] = []
    for (let i = start; i < start + count; i++) parts.push(JSON.stringify({ f: benchRow(i).map((v) => ({ v })) }))
    text = parts.join(',')
    bqRowsCache.set(key, text)
  }
  return text
}

/** n of the ROWS_<n> table a statement names; 0 for anything else (session statements). */
function rowsOf (sql: string): number {
  const match = /\brows_(\d+)\b/i.exec(sql)
  return match === null ? 0 : Number(match[1])
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = []
  for await (const part of req) parts.push(part as Buffer)
  const text = Buffer.concat(parts).toString('utf8')
  return text === '' ? {} : JSON.parse(text) as Record<string, unknown>
}

function send (res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}

let seq = 0

function connectorResult (sql: string, base: string): string {
  const n = rowsOf(sql)
  return connectorResultOf(n, `01bench-${++seq}-rows-${Math.max(n, 0)}`, base)
}

/** The answer for a query id, the same again when asked by GET /queries/{id}/result. */
function connectorResultOf (n: number, queryId: string, base: string): string {
  if (n <= 0) {
    return `{"success":true,"code":null,"message":null,"data":{"queryId":"${queryId}","rowtype":[{"name":"status","type":"text","nullable":true}],"rowset":[["Statement executed successfully."]],"total":1,"returned":1,"statementTypeId":20480,"queryResultFormat":"json","parameters":[]}}`
  }
  const inline = Math.min(n, INLINE_ROWS)
  const chunks: Array<{ url: string, rowCount: number }> = []
  for (let start = inline; start < n; start += CHUNK_ROWS) {
    const count = Math.min(CHUNK_ROWS, n - start)
    chunks.push({ url: `${base}/stage/results/${queryId}/chunk?start=${start}&count=${count}`, rowCount: count })
  }
  const extra = chunks.length === 0 ? '' : `,"chunks":${JSON.stringify(chunks)},"qrmk":"YmVuY2gtcXVlcnktcmVzdWx0LWtleQ=="`
  return `{"success":true,"code":null,"message":null,"data":{"queryId":"${queryId}","rowtype":${JSON.stringify(ROWTYPE)},"rowset":[${jsonRows(0, inline)}],"total":${n},"returned":${inline},"statementTypeId":4096,"queryResultFormat":"json","parameters":[{"name":"TIMEZONE","value":"UTC"}]${extra}}}`
}

function sqlApiResult (sql: string): string {
  const n = Math.max(rowsOf(sql), 0)
  const handle = `01bench-${++seq}-rows-${n}`
  const partitions: Array<{ rowCount: number, uncompressedSize: number }> = []
  for (let start = 0; start < Math.max(n, 1); start += PARTITION_ROWS) {
    const count = Math.min(PARTITION_ROWS, n - start)
    partitions.push({ rowCount: count, uncompressedSize: count * 200 })
  }
  const meta = { numRows: n, format: 'jsonv2', partitionInfo: partitions, rowType: ROWTYPE.map((c) => ({ ...c, name: c.name })) }
  return `{"resultSetMetaData":${JSON.stringify(meta)},"data":[${jsonRows(0, Math.min(n, PARTITION_ROWS))}],"code":"090001","statementStatusUrl":"/api/v2/statements/${handle}","requestId":"${handle}","sqlState":"00000","statementHandle":"${handle}","message":"Statement executed successfully.","createdOn":${Date.now()}}`
}

function bigQueryPage (kind: string, jobId: string, n: number, start: number, maxResults: number | undefined): string {
  const count = Math.max(0, Math.min(maxResults ?? PAGE_ROWS, n - start))
  const next = start + count < n ? `,"pageToken":"p${start + count}"` : ''
  const rows = count === 0 ? '' : `,"rows":[${bqRows(start, count)}]`
  return `{"kind":"${kind}","jobReference":{"projectId":"${BENCH_PROJECT}","jobId":"${jobId}","location":"US"},"schema":${JSON.stringify(BQ_SCHEMA)},"totalRows":"${n}","jobComplete":true,"cacheHit":false,"totalBytesProcessed":"0"${rows}${next}}`
}

async function handle (req: IncomingMessage, res: ServerResponse, base: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://upstream')
  const path = url.pathname
  if (path === '/healthz') return send(res, 200, '{"status":"alive"}')
  // ── Snowflake connector protocol ──
  if (path === '/session/v1/login-request') {
    await readJson(req)
    const id = ++seq
    return send(res, 200, `{"success":true,"data":{"token":"st-${id}","masterToken":"mt-${id}","validityInSeconds":3600,"masterValidityInSeconds":14400,"sessionId":${id},"parameters":[{"name":"TIMEZONE","value":"UTC"}]}}`)
  }
  if (path === '/session/token-request') {
    await readJson(req)
    const id = ++seq
    return send(res, 200, `{"success":true,"data":{"sessionToken":"st-${id}","validityInSecondsST":3600,"masterToken":"mt-${id}","validityInSecondsMT":14400}}`)
  }
  if (path === '/queries/v1/query-request') {
    const body = await readJson(req)
    return send(res, 200, connectorResult(String(body.sqlText ?? ''), base))
  }
  const again = /^\/queries\/(01bench-\d+-rows-(\d+))\/result$/.exec(path)
  if (req.method === 'GET' && again !== null) return send(res, 200, connectorResultOf(Number(again[2]), again[1] as string, base))
  if (/^\/stage\/results\/[^/]+\/chunk$/.test(path)) {
    const text = jsonRows(Number(url.searchParams.get('start')), Number(url.searchParams.get('count')))
    res.writeHead(200, { 'content-type': 'binary/octet-stream', 'content-length': Buffer.byteLength(text) }).end(text)
    return
  }
  // ── Snowflake SQL API v2 (the direct baseline of Sluice's SQL API front end) ──
  if (req.method === 'POST' && path === '/api/v2/statements') {
    const body = await readJson(req)
    return send(res, 200, sqlApiResult(String(body.statement ?? '')))
  }
  const statement = /^\/api\/v2\/statements\/[^/]+-rows-(\d+)$/.exec(path)
  if (req.method === 'GET' && statement !== null) {
    const n = Number(statement[1])
    const start = Number(url.searchParams.get('partition') ?? 0) * PARTITION_ROWS
    return send(res, 200, `{"data":[${jsonRows(start, Math.max(0, Math.min(PARTITION_ROWS, n - start)))}]}`)
  }
  // ── BigQuery ──
  const bq = `/bigquery/v2/projects/${BENCH_PROJECT}`
  if (req.method === 'POST' && path === `${bq}/queries`) {
    const body = await readJson(req)
    const n = rowsOf(String(body.query ?? ''))
    const maxResults = typeof body.maxResults === 'number' ? body.maxResults : undefined
    return send(res, 200, bigQueryPage('bigquery#queryResponse', `job_rows_${n}_${++seq}`, n, 0, maxResults))
  }
  const results = new RegExp(`^${bq}/queries/(job_rows_(\\d+)_\\d+)$`).exec(path)
  if (req.method === 'GET' && results !== null) {
    const token = url.searchParams.get('pageToken')
    const start = token === null ? Number(url.searchParams.get('startIndex') ?? 0) : Number(token.slice(1))
    const max = url.searchParams.get('maxResults')
    return send(res, 200, bigQueryPage('bigquery#getQueryResultsResponse', results[1] as string, Number(results[2]), start, max === null ? undefined : Number(max)))
  }
  // Heartbeats, session deletes, aborts: acknowledged.
  await readJson(req).catch(() => ({}))
  if (path.startsWith('/bigquery/')) return send(res, 404, `{"error":{"code":404,"message":"bench upstream has no ${req.method ?? ''} ${path}","errors":[{"reason":"notFound"}],"status":"NOT_FOUND"}}`)
  return send(res, 200, '{"success":true,"data":null}')
}

export async function startBenchUpstream (port = 0): Promise<{ url: string, server: Server }> {
  let base = ''
  const server = createServer((req, res) => {
    handle(req, res, base).catch((err: unknown) => { send(res, 500, JSON.stringify({ message: String(err) })) })
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url: base, server }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await startBenchUpstream(Number(process.argv[2] ?? 0))
  process.stdout.write(`bench upstream listening on ${url}\n`)
}
