// A loopback Snowflake upstream serving one large result the way Snowflake does: a small inline
// rowset and the rest as gzip-compressed JSON chunks in "cloud storage" behind SSE-C headers
// (qrmk), re-listed by GET /queries/{id}/result. Rows are generated when a chunk is downloaded,
// never held, so the test process stays small while the gateway serves hundreds of megabytes.
// Speaks only what Sluice's upstream client sends (login, query-request, result by id, chunk
// download, abort, heartbeat, logout); connections using it set `secondaryRoles: keep`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, pipeline } from 'node:stream'
import { createGzip } from 'node:zlib'

export interface LargeUpstreamOptions {
  rows: number
  /** Rows in the inline rowset (default 1000). */
  inlineRows?: number
  /** Rows per chunk (default 10,000). */
  chunkRows?: number
}

export interface LargeUpstream {
  url: string
  /** The statement text that returns the result (any text containing LARGE_DB.PUBLIC.PEOPLE). */
  sql: string
  rows: number
  /** Bytes of the whole result as JSON rows (inline + chunks, uncompressed). */
  resultBytes: number
  /** Chunk downloads served, by chunk index. */
  downloads: number[]
  close: () => Promise<void>
}

const QRMK = 'bGFyZ2UtcmVzdWx0LW1hc3Rlci1rZXktZm9yLXRlc3Rz'
const PAD = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis'

/** Row `i` (1-based) of the result: ID, EMAIL (masked by the test's policy), NOTE. */
/**
 * What reading a large result needs from policy: agents read with no row cap a million rows
 * would run into, and emails are redacted wherever they come from.
 */
export const LARGE_RESULT_POLICY = `version: 1
description: large results
rules:
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
    limits: { maxRows: 2000000, statementTimeoutSeconds: 600 }
masking:
  - id: mask-email
    columns: ["*.*.*.email"]
    function: redact
`

export function largeRow (i: number): [string, string, string] {
  return [String(i), `user${i}@example.com`, `note ${i}: ${PAD}`]
}

/** Throws unless `row`, as snowflake-sdk reads it, is row `i` with its email masked ('****'). */
export function checkMaskedSdkRow (i: number, row: Record<string, unknown>): void {
  const want = largeRow(i)
  if (String(row.ID) !== want[0] || row.EMAIL !== '****' || row.NOTE !== want[2]) throw new Error(`row ${i}: ${JSON.stringify(row)}`)
}

export const LARGE_ROWTYPE = ['ID', 'EMAIL', 'NOTE'].map((name) => ({
  name,
  type: name === 'ID' ? 'fixed' : 'text',
  nullable: name !== 'ID',
  scale: name === 'ID' ? 0 : null,
  precision: name === 'ID' ? 38 : null,
  length: name === 'ID' ? null : 16777216,
  byteLength: name === 'ID' ? null : 16777216,
  database: 'LARGE_DB',
  schema: 'PUBLIC',
  table: 'PEOPLE'
}))

function * rowsText (from: number, to: number): Generator<string> {
  // 1000 rows per piece: large enough to be cheap, small enough to stay bounded.
  for (let start = from; start <= to; start += 1000) {
    const end = Math.min(to, start + 999)
    const parts: string[] = []
    for (let i = start; i <= end; i++) parts.push(JSON.stringify(largeRow(i)))
    yield (start === from ? '' : ',') + parts.join(',')
  }
}

export async function startLargeUpstream (options: LargeUpstreamOptions): Promise<LargeUpstream> {
  const inline = Math.min(options.inlineRows ?? 1000, options.rows)
  const per = options.chunkRows ?? 10_000
  const chunks: Array<{ from: number, to: number, bytes: number }> = []
  for (let from = inline + 1; from <= options.rows; from += per) {
    const to = Math.min(options.rows, from + per - 1)
    let bytes = 0
    for (const piece of rowsText(from, to)) bytes += Buffer.byteLength(piece)
    chunks.push({ from, to, bytes })
  }
  const inlineRowset = Array.from({ length: inline }, (_, i) => largeRow(i + 1))
  const resultBytes = chunks.reduce((n, c) => n + c.bytes, Buffer.byteLength(JSON.stringify(inlineRowset)))
  const downloads: number[] = []
  const queries = new Set<string>()
  let seq = 0

  const json = (res: ServerResponse, payload: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
  }
  const drain = async (req: IncomingMessage): Promise<string> => {
    const parts: Buffer[] = []
    for await (const part of req) parts.push(part as Buffer)
    return Buffer.concat(parts).toString('utf8')
  }
  const base = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const resultData = (id: string): Record<string, unknown> => ({
    queryId: id,
    rowtype: LARGE_ROWTYPE,
    rowset: inlineRowset,
    total: options.rows,
    returned: options.rows,
    statementTypeId: 4096,
    queryResultFormat: 'json',
    parameters: [{ name: 'TIMEZONE', value: 'UTC' }],
    finalDatabaseName: 'LARGE_DB',
    finalSchemaName: 'PUBLIC',
    qrmk: QRMK,
    chunks: chunks.map((c, n) => ({ url: `${base()}/stage/large/${id}/chunk_${n}`, rowCount: c.to - c.from + 1, uncompressedSize: c.bytes }))
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://large')
    const chunk = /^\/stage\/large\/([^/]+)\/chunk_(\d+)$/.exec(url.pathname)
    if (chunk !== null) {
      const c = chunks[Number(chunk[2])]
      if (req.headers['x-amz-server-side-encryption-customer-key'] !== QRMK || !queries.has(chunk[1] ?? '') || c === undefined) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>')
        return
      }
      downloads.push(Number(chunk[2]))
      res.writeHead(200, { 'content-type': 'binary/octet-stream', 'content-encoding': 'gzip' })
      pipeline(Readable.from(rowsText(c.from, c.to)), createGzip({ level: 1 }), res, () => {})
      return
    }
    const body = await drain(req)
    if (url.pathname === '/session/v1/login-request') {
      const n = ++seq
      json(res, { success: true, data: { token: `large-st-${n}`, masterToken: `large-mt-${n}`, sessionId: n, parameters: [{ name: 'TIMEZONE', value: 'UTC' }] } })
      return
    }
    if (url.pathname === '/queries/v1/query-request') {
      const sql = String((JSON.parse(body === '' ? '{}' : body) as { sqlText?: unknown }).sqlText ?? '')
      if (!sql.toUpperCase().includes('LARGE_DB.PUBLIC.PEOPLE')) {
        json(res, { success: false, code: '002003', message: 'SQL compilation error: Object does not exist.', data: { sqlState: '42S02' } })
        return
      }
      const id = `01b1-large-${++seq}`
      queries.add(id)
      json(res, { success: true, data: resultData(id) })
      return
    }
    const result = /^\/queries\/([^/]+)\/result$/.exec(url.pathname)
    if (result !== null) {
      if (!queries.has(result[1] ?? '')) json(res, { success: false, code: '000709', message: 'Statement not found', data: null })
      else json(res, { success: true, data: resultData(result[1] ?? '') })
      return
    }
    json(res, { success: true, data: null })
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => { res.writeHead(500).end(String(err)) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: base(),
    sql: 'SELECT ID, EMAIL, NOTE FROM LARGE_DB.PUBLIC.PEOPLE',
    rows: options.rows,
    resultBytes,
    downloads,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
