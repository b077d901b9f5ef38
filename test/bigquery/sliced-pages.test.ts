// Through the gateway, a BigQuery page read and released a slice at a time reaches the client
// as the very bytes the whole-page path sent (jobs.query, getQueryResults, tabledata.list with
// selectedFields, a page cut at a row cap), the warehouse port gets every page's rows, and a
// page torn part way through answers an upstream error that holds none of its rows, recorded
// as no rows sent.
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeRows, encodeRows, type TimestampForm } from '../../src/warehouses/bigquery/codec.js'
import { projectFields } from '../../src/warehouses/bigquery/results.js'
import type { TableFieldSchema, TableRow } from '../../src/warehouses/bigquery/wire.js'
import { startSluice, type Sluice } from './harness.js'
import { BigQueryPort } from '../../src/warehouses/bigquery/port.js'
import { BigQueryUpstream } from '../../src/warehouses/bigquery/upstream.js'
import { bigquerySettings } from '../../src/warehouses/bigquery/connections.js'
import { alice } from '../recording/helpers.js'
import { answerOf, bodyOf, random, rowOf } from './gen-answers.js'

const PROJECT = 'slices-project'
const BASE = `/bigquery/v2/projects/${PROJECT}`

/** Answers each `METHOD path` with the body the test set for it. */
async function startBodies (): Promise<{ url: string, bodies: Map<string, string>, close: () => Promise<void> }> {
  const bodies = new Map<string, string>()
  const server: Server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const body = bodies.get(`${req.method ?? ''} ${new URL(req.url ?? '/', 'http://stub').pathname}`)
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(body ?? '{"error":{"code":404,"message":"no body set"}}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`,
    bodies,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

/** What the whole-page path sent for this upstream answer (a pass-through mask). */
function wholePage (whole: Record<string, unknown>, fields: TableFieldSchema[], timestamps: TimestampForm, limit = Infinity): Record<string, unknown> {
  const rows = (whole.rows as TableRow[]).slice(0, limit)
  return { ...whole, rows: encodeRows(fields, decodeRows(fields, rows, { int64Timestamps: true }), { timestamps }) }
}

let stub: Awaited<ReturnType<typeof startBodies>>
let sluice: Sluice
let token: string

beforeAll(async () => {
  stub = await startBodies()
  sluice = await startSluice({ connections: { 'bq-slices': { kind: 'bigquery', url: stub.url, project: PROJECT, default: true } } })
  token = await sluice.token()
}, 120_000)

afterAll(async () => {
  await sluice?.close()
  await stub?.close()
})

async function send (method: string, path: string, body?: unknown): Promise<{ status: number, type: string | null, text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${sluice.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

/** A generated answer for `jobId`, as the upstream's text and as the object it means. */
function generated (seed: number, jobId: string, kind: string, maxRows = 60): { fields: TableFieldSchema[], body: string, whole: Record<string, unknown> } {
  const next = random(seed)
  const { fields, answer } = answerOf(next, maxRows)
  Object.assign(answer, { kind, jobReference: { projectId: PROJECT, jobId, location: 'US' } })
  const body = bodyOf(answer, next)
  return { fields, body, whole: JSON.parse(body) as Record<string, unknown> }
}

describe('BigQuery pages released a slice at a time, through the gateway', () => {
  it('answer jobs.query and getQueryResults with the bytes the whole page gave, for 20 generated answers', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const jobId = `job_slices_${seed}`
      const first = generated(seed, jobId, 'bigquery#queryResponse', 3000)
      stub.bodies.set(`POST ${BASE}/queries`, first.body)
      const query = await send('POST', `${BASE}/queries`, { query: `SELECT ${seed}` })
      expect(query.status, query.text.slice(0, 300)).toBe(200)
      expect(query.type).toBe('application/json; charset=utf-8')
      expect(query.text, `seed ${seed}`).toBe(JSON.stringify(wholePage(first.whole, first.fields, 'float')))

      const page = generated(seed + 1000, jobId, 'bigquery#getQueryResultsResponse', 3000)
      stub.bodies.set(`GET ${BASE}/queries/${jobId}`, page.body)
      const results = await send('GET', `${BASE}/queries/${jobId}?formatOptions.useInt64Timestamp=true`)
      expect(results.text, `seed ${seed}`).toBe(JSON.stringify(wholePage(page.whole, page.fields, 'int64')))
    }
  })

  it('answer tabledata.list with selectedFields with the bytes the whole page gave', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const data = generated(seed + 2000, 'unused', 'bigquery#tableDataList', 500)
      stub.bodies.set(`GET ${BASE}/datasets/d/tables/t${seed}`, JSON.stringify({ kind: 'bigquery#table', schema: { fields: data.fields } }))
      stub.bodies.set(`GET ${BASE}/datasets/d/tables/t${seed}/data`, data.body)
      const selected = (data.fields[0] as TableFieldSchema).name
      const res = await send('GET', `${BASE}/datasets/d/tables/t${seed}/data?selectedFields=${selected}&formatOptions.timestampOutputFormat=ISO8601_STRING`)
      expect(res.text, `seed ${seed}`).toBe(JSON.stringify(wholePage(data.whole, projectFields(data.fields, selected), 'iso')))
    }
  })

  it('cut a page at the row cap as the whole page was cut: rows past it dropped, no pageToken, the rowsLimited warning', async () => {
    const jobId = 'job_slices_capped'
    const { whole, fields } = generated(77, jobId, 'bigquery#queryResponse', 1)
    const next = random(78)
    const rows = Array.from({ length: 400 }, () => rowOf(next, fields))
    const answer = { ...whole, rows, totalRows: '400', pageToken: 'more' }
    stub.bodies.set(`POST ${BASE}/queries`, JSON.stringify(answer))
    const res = await send('POST', `${BASE}/queries`, { query: 'SELECT capped -- cap:3' })
    const got = JSON.parse(res.text) as { errors?: Array<{ reason?: string }> }
    expect(got.errors?.at(-1)?.reason).toBe('rowsLimited')
    const { pageToken: _gone, ...kept } = wholePage(answer, fields, 'float', 3)
    expect(res.text).toBe(JSON.stringify({ ...kept, errors: got.errors }))
  })

  it('hand the warehouse port (what MCP reads) every upstream page\'s rows, a slice at a time', async () => {
    const next = random(500)
    const { fields, answer } = answerOf(next)
    const rows = (n: number): TableRow[] => Array.from({ length: n }, () => rowOf(next, fields))
    const [first, second] = [rows(2500), rows(1200)]
    const jobReference = { projectId: PROJECT, jobId: 'job_port', location: 'US' }
    stub.bodies.set(`POST ${BASE}/queries`, bodyOf({ ...answer, jobReference, rows: first, pageToken: 'p2' }, next))
    stub.bodies.set(`GET ${BASE}/queries/job_port`, bodyOf({ ...answer, jobReference, rows: second, pageToken: undefined }, next))
    const port = new BigQueryPort(new BigQueryUpstream(bigquerySettings('bq-port', { kind: 'bigquery', default: false, project: PROJECT, url: stub.url })))
    const { result } = await port.execute({ sql: 'SELECT port', principal: alice, limits: {} })
    const pages: unknown[][][] = []
    for await (const page of result.pages) pages.push(page.rows)
    expect(pages.flat()).toEqual(decodeRows(fields, [...first, ...second], { int64Timestamps: true }))
    // Upstream pages of more than ~64 KB of rows arrive as several pipeline pages.
    expect(Buffer.byteLength(JSON.stringify(first))).toBeGreaterThan(2 * 64 * 1024)
    expect(pages.length).toBeGreaterThan(3)
  })

  it('answer a page torn part way, or an answer that is not well-formed, with an upstream error holding none of its rows, recorded as no rows sent', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ f: [{ v: `torn${i}@example.com` }] })).join(',')
    const torn = `{"kind":"bigquery#queryResponse","jobReference":{"projectId":"${PROJECT}","jobId":"job_torn"},"jobComplete":true,` +
      `"schema":{"fields":[{"name":"email","type":"STRING"}]},"rows":[${rows},{"f":[{"v":tru}]}],"totalRows":"3001"}`
    for (const [sql, body] of [['SELECT torn', torn], ['SELECT unended', torn.slice(0, -30)]] as const) {
      stub.bodies.set(`POST ${BASE}/queries`, body)
      const res = await send('POST', `${BASE}/queries`, { query: sql })
      expect(res.status, sql).toBe(502)
      expect(res.text).toContain('backendError')
      expect(res.text).not.toMatch(/torn\d+|tru\b/)
      const events = await sluice.app.recorder.listEvents({ limit: 1000 })
      const event = events.find((e) => e.sqlText === sql && e.statusCode === 502)
      expect(event, sql).toBeDefined()
      expect(event?.rowsReturned ?? 0, sql).toBe(0)
      expect(event?.errorCode, sql).toBeTruthy()
    }
  })
})
