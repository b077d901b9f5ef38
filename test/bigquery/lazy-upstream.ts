// A loopback BigQuery REST upstream whose result has as many rows as a test asks for (a million)
// and is never held: every page (jobs.query's first, getQueryResults, tabledata.list on the
// job's anonymous result table) is generated when it is asked for, from its start row, by the
// row's index. Page tokens name the next start. Shapes follow the v2 discovery document; what
// bqemulator lacks (rows in anonymous result tables) is served here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'

export const LAZY_PROJECT = 'lazy-project'
/** The statement a test sends: a policy masks `email` through lineage to this table. */
export const LAZY_SQL = 'SELECT id, email, note FROM `lazy-project.shop.people`'
export const LAZY_SCHEMA = {
  fields: [
    { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
    { name: 'email', type: 'STRING', mode: 'NULLABLE' },
    { name: 'note', type: 'STRING', mode: 'NULLABLE' }
  ]
}

/** Row `i` of the result, as the upstream holds it (before masking). */
export function lazyRow (i: number): { id: string, email: string, note: string } {
  return { id: String(i), email: `user${i}@example.com`, note: `row ${i} of the lazy result` }
}

export interface LazyUpstream {
  url: string
  /** Requests served, by kind. */
  counts: { query: number, insert: number, getJob: number, results: number, tableData: number }
  close: () => Promise<void>
}

export interface LazyOptions {
  rows: number
  /** The most rows one page carries when the client sets no smaller maxResults. */
  pageRows?: number
}

const token = (start: number): string => Buffer.from(`start:${start}`).toString('base64url')
function startOf (pageToken: string | null, startIndex: string | null): number {
  if (startIndex !== null && startIndex !== '') return Number(startIndex)
  if (pageToken === null || pageToken === '') return 0
  const text = Buffer.from(pageToken, 'base64url').toString('utf8')
  return text.startsWith('start:') ? Number(text.slice(6)) : 0
}

async function bodyOf (req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = ''
  for await (const chunk of req) text += String(chunk)
  return text === '' ? {} : JSON.parse(text) as Record<string, unknown>
}

export async function startLazyUpstream (options: LazyOptions): Promise<LazyUpstream> {
  const project = LAZY_PROJECT
  const pageRows = options.pageRows ?? 10_000
  const jobs = new Set<string>()
  const counts = { query: 0, insert: 0, getJob: 0, results: 0, tableData: 0 }
  let next = 0
  const base = `/bigquery/v2/projects/${project}`
  const destination = (jobId: string) => ({ projectId: project, datasetId: '_lazy_anon', tableId: `anon_${jobId}` })
  const jobResource = (jobId: string) => ({
    kind: 'bigquery#job',
    jobReference: { projectId: project, jobId, location: 'US' },
    configuration: { query: { query: LAZY_SQL, useLegacySql: false, destinationTable: destination(jobId) } },
    status: { state: 'DONE' },
    statistics: { query: { statementType: 'SELECT', totalBytesProcessed: '0' } }
  })

  /** One page as JSON text, built row by row: nothing beyond the page exists at any time. */
  function page (head: Record<string, unknown>, start: number, maxResults: string | null): string {
    const wanted = maxResults === null ? pageRows : Math.min(pageRows, Number(maxResults))
    const end = Math.min(options.rows, start + Math.max(0, wanted))
    const parts: string[] = []
    for (let i = start; i < end; i++) {
      const r = lazyRow(i)
      parts.push(`{"f":[{"v":"${r.id}"},{"v":"${r.email}"},{"v":"${r.note}"}]}`)
    }
    const body: Record<string, unknown> = { ...head, totalRows: String(options.rows) }
    if (end < options.rows && wanted > 0) body.pageToken = token(end)
    const json = JSON.stringify(body)
    return wanted === 0 ? json : `${json.slice(0, -1)},"rows":[${parts.join(',')}]}`
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await bodyOf(req)
      const url = new URL(req.url ?? '/', 'http://lazy')
      const q = url.searchParams
      const send = (status: number, json: unknown): void => {
        const text = typeof json === 'string' ? json : JSON.stringify(json)
        res.writeHead(status, { 'content-type': 'application/json' }).end(text)
      }
      const notFound = (what: string): void => {
        send(404, { error: { code: 404, message: `Not found: ${what}`, errors: [{ reason: 'notFound', message: `Not found: ${what}` }], status: 'NOT_FOUND' } })
      }
      if (req.method === 'POST' && url.pathname === `${base}/queries`) {
        counts.query++
        const jobId = `lazy_q${++next}`
        jobs.add(jobId)
        const head = { kind: 'bigquery#queryResponse', jobReference: { projectId: project, jobId, location: 'US' }, jobComplete: true, schema: LAZY_SCHEMA }
        const max = body.maxResults === undefined ? null : String(body.maxResults as number)
        return send(200, page(head, 0, max))
      }
      if (req.method === 'POST' && url.pathname === `${base}/jobs`) {
        counts.insert++
        const reference = (body.jobReference ?? {}) as { jobId?: string }
        const jobId = reference.jobId ?? `lazy_j${++next}`
        jobs.add(jobId)
        return send(200, jobResource(jobId))
      }
      const job = new RegExp(`^${base}/jobs/([^/]+)$`).exec(url.pathname)
      if (req.method === 'GET' && job !== null) {
        counts.getJob++
        const jobId = decodeURIComponent(job[1] as string)
        return jobs.has(jobId) ? send(200, jobResource(jobId)) : notFound(`Job ${project}:${jobId}`)
      }
      const results = new RegExp(`^${base}/queries/([^/]+)$`).exec(url.pathname)
      if (req.method === 'GET' && results !== null) {
        counts.results++
        const jobId = decodeURIComponent(results[1] as string)
        if (!jobs.has(jobId)) return notFound(`Job ${project}:${jobId}`)
        const head = { kind: 'bigquery#getQueryResultsResponse', jobReference: { projectId: project, jobId, location: 'US' }, jobComplete: true, schema: LAZY_SCHEMA }
        return send(200, page(head, startOf(q.get('pageToken'), q.get('startIndex')), q.get('maxResults')))
      }
      const anon = new RegExp(`^${base}/datasets/_lazy_anon/tables/anon_([^/]+?)(/data)?$`).exec(url.pathname)
      if (req.method === 'GET' && anon !== null && jobs.has(decodeURIComponent(anon[1] as string))) {
        const jobId = decodeURIComponent(anon[1] as string)
        if (anon[2] === undefined) {
          return send(200, { kind: 'bigquery#table', tableReference: destination(jobId), schema: LAZY_SCHEMA, numRows: String(options.rows), type: 'TABLE' })
        }
        counts.tableData++
        return send(200, page({ kind: 'bigquery#tableDataList' }, startOf(q.get('pageToken'), q.get('startIndex')), q.get('maxResults')))
      }
      notFound(`${req.method ?? ''} ${url.pathname}`)
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 500, message: String(err) } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
