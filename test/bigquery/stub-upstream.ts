// A loopback BigQuery REST stub for what bqemulator never does: a query that is still running.
// bqemulator completes every query inside jobs.query, so `jobComplete: false` polling is driven
// here: jobs.query answers "not complete", and getQueryResults answers "not complete" for the
// first `pendingPolls` calls, then the rows. Shapes follow the v2 discovery document.
import { createServer, type IncomingMessage, type Server } from 'node:http'

export interface StubUpstream {
  url: string
  /** Paths the stub was called with, in order (query strings included). */
  calls: string[]
  close: () => Promise<void>
}

const SCHEMA = { fields: [{ name: 'id', type: 'INTEGER', mode: 'NULLABLE' }, { name: 'email', type: 'STRING', mode: 'NULLABLE' }, { name: 'at', type: 'TIMESTAMP', mode: 'NULLABLE' }] }
/** Only the anonymous result table holds it; masking must keep it from clients. */
export const STUB_CANARY = 'stubcanary-51d2'
export const STUB_ROWS = [
  { f: [{ v: '1' }, { v: 'slow@example.com' }, { v: '1704164645123456' }] },
  { f: [{ v: '2' }, { v: 'slower@example.com' }, { v: null }] }
]

async function bodyOf (req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = ''
  for await (const chunk of req) text += String(chunk)
  return text === '' ? {} : JSON.parse(text) as Record<string, unknown>
}

export async function startStubUpstream (project: string, options: { pendingPolls?: number, queryIdOnly?: boolean } = {}): Promise<StubUpstream> {
  const calls: string[] = []
  const polls = new Map<string, number>()
  let next = 0
  const server: Server = createServer((req, res) => {
    void (async () => {
      calls.push(`${req.method ?? ''} ${req.url ?? ''}`)
      const body = await bodyOf(req)
      const url = new URL(req.url ?? '/', 'http://stub')
      const base = `/bigquery/v2/projects/${project}`
      const send = (status: number, json: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json))
      }
      if (req.method === 'POST' && url.pathname === `${base}/queries`) {
        if (options.queryIdOnly === true) {
          // JOB_CREATION_OPTIONAL: a short query answered without a job, identified by queryId.
          send(200, { kind: 'bigquery#queryResponse', queryId: `stubq_${++next}`, jobComplete: true, schema: SCHEMA, rows: STUB_ROWS, totalRows: '2', echo: body.jobCreationMode })
          return
        }
        const jobId = `stub_job_${++next}`
        polls.set(jobId, 0)
        send(200, { kind: 'bigquery#queryResponse', jobReference: { projectId: project, jobId, location: 'US' }, jobComplete: false })
        return
      }
      if (req.method === 'POST' && url.pathname === `${base}/jobs`) {
        // Any job (transfers included): accepted and done at once, echoing its configuration.
        const reference = (body.jobReference ?? {}) as Record<string, unknown>
        return send(200, { kind: 'bigquery#job', jobReference: { ...reference, location: 'US' }, configuration: body.configuration, status: { state: 'DONE' } })
      }
      const results = new RegExp(`^${base}/queries/([^/]+)$`).exec(url.pathname)
      if (req.method === 'GET' && results !== null) {
        const jobId = results[1] as string
        const seen = polls.get(jobId)
        if (seen === undefined) return send(404, { error: { code: 404, message: `Not found: Job ${project}:${jobId}`, errors: [{ reason: 'notFound', message: 'not found' }], status: 'NOT_FOUND' } })
        polls.set(jobId, seen + 1)
        const jobReference = { projectId: project, jobId, location: 'US' }
        if (seen < (options.pendingPolls ?? 2)) return send(200, { kind: 'bigquery#getQueryResultsResponse', jobReference, jobComplete: false })
        // Like BigQuery, maxResults=0 (the Python client's "is it done?" poll) returns no rows.
        const rows = url.searchParams.get('maxResults') === '0' ? undefined : STUB_ROWS
        return send(200, { kind: 'bigquery#getQueryResultsResponse', jobReference, jobComplete: true, schema: SCHEMA, rows, totalRows: '2' })
      }
      const job = new RegExp(`^${base}/jobs/([^/]+)$`).exec(url.pathname)
      if (req.method === 'GET' && job !== null) {
        const jobId = job[1] as string
        const done = (polls.get(jobId) ?? 0) > (options.pendingPolls ?? 2)
        return send(200, {
          kind: 'bigquery#job',
          jobReference: { projectId: project, jobId, location: 'US' },
          configuration: { query: { query: 'SELECT slow', destinationTable: { projectId: project, datasetId: '_stub_anon', tableId: `anon_${jobId}` } } },
          status: { state: done ? 'DONE' : 'RUNNING' },
          statistics: { query: { statementType: 'SELECT' } }
        })
      }
      // The anonymous result table of a job (bqemulator answers 404 for these).
      const anon = new RegExp(`^${base}/datasets/_stub_anon/tables/anon_([^/]+?)(/data)?$`).exec(url.pathname)
      if (req.method === 'GET' && anon !== null && polls.has(anon[1] as string)) {
        if (anon[2] === undefined) return send(200, { kind: 'bigquery#table', tableReference: { projectId: project, datasetId: '_stub_anon', tableId: `anon_${anon[1] as string}` }, schema: SCHEMA })
        return send(200, { kind: 'bigquery#tableDataList', totalRows: '1', rows: [{ f: [{ v: '7' }, { v: `anon.${STUB_CANARY}@example.com` }, { v: '0' }] }] })
      }
      send(404, { error: { code: 404, message: `stub has no ${req.method ?? ''} ${url.pathname}`, errors: [{ reason: 'notFound', message: 'no route' }], status: 'NOT_FOUND' } })
    })()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
