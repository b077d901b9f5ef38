// Limits Sluice keeps itself on the BigQuery front end: an unreachable upstream answered as
// BigQuery's retryable 503 backendError naming the connection (nothing ran); the rule's
// statement timeout cancelling a job that never finishes; maxRows truncating (true totalRows,
// announced, recorded) or refusing; tabledata.list paging through a table of 1,500 rows.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { api, startSluice, type Sluice } from './harness.js'
import { startStubUpstream, type StubUpstream } from './stub-upstream.js'

/** A loopback port nothing listens on: connecting to it is refused at once. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

const BIG_ROWS = 1500
const POLICY = `version: 1
defaults:
  limits:
    statementTimeoutSeconds: 300
rules:
  - id: stalled-timeout
    effect: allow
    match: { roles: [agent], kinds: [select], connections: [bq-stalled] }
    limits: { statementTimeoutSeconds: 1 }
  - id: rows-truncated
    effect: allow
    match: { roles: [agent], kinds: [select], tables: ['*.${SEED_DATASET}.customers'] }
    limits: { maxRows: 2 }
  - id: rows-refused
    effect: allow
    match: { roles: [agent], kinds: [select], tables: ['*.${SEED_DATASET}.profiles'] }
    limits: { maxRows: 1, maxRowsAction: refuse }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
    limits: { maxRows: 10000, autoLimit: 1000 }
masking:
  - id: big-email
    columns: ['*.${SEED_DATASET}.big.email']
    function: redact
`

let sluice: Sluice
let emulator: BqEmulator
let stalled: StubUpstream

beforeAll(async () => {
  const down = await closedPort()
  const policies = await mkdtemp(join(tmpdir(), 'sluice-limits-'))
  await writeFile(join(policies, 'limits.yaml'), POLICY)
  emulator = await startBqEmulator()
  // A table longer than autoLimit (1,000) and a page of tabledata.list.
  const fields = [{ name: 'id', type: 'INTEGER', mode: 'REQUIRED' }, { name: 'email', type: 'STRING' }]
  const created = await emulator.api('POST', `projects/${SEED_PROJECT}/datasets/${SEED_DATASET}/tables`, { tableReference: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'big' }, schema: { fields } })
  expect(created.status).toBeLessThan(300)
  const rows = Array.from({ length: BIG_ROWS }, (_, i) => ({ json: { id: i, email: `user${i}@example.com` } }))
  const inserted = await emulator.api('POST', `projects/${SEED_PROJECT}/datasets/${SEED_DATASET}/tables/big/insertAll`, { rows })
  expect(inserted.status).toBeLessThan(300)
  // Stands in for a job that never finishes (and a warehouse that ignores jobTimeoutMs).
  stalled = await startStubUpstream('stalled-project', { pendingPolls: 1_000_000 })
  sluice = await startSluice({
    policiesDirectory: policies,
    connections: {
      'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true },
      'bq-stalled': { kind: 'bigquery', url: stalled.url, project: 'stalled-project' },
      'bq-down': { kind: 'bigquery', url: `http://127.0.0.1:${down}`, project: 'down-project' }
    }
  })
}, 120_000)

afterAll(async () => {
  await sluice?.close()
  await stalled?.close()
  await emulator?.close()
})

describe('an unreachable BigQuery upstream is retryable and named', () => {
  it('jobs.query answers 503 backendError naming the connection', async () => {
    const res = await api(sluice, await sluice.token(), 'POST', '/bigquery/v2/projects/down-project/queries', { query: 'SELECT 1', useLegacySql: false })
    expect(res.status).toBe(503)
    expect(res.json.error.errors[0].reason).toBe('backendError')
    expect(res.json.error.status).toBe('UNAVAILABLE')
    expect(res.json.error.message).toContain('bq-down')
    expect(res.json.error.message).toMatch(/nothing was executed; retry later/)
  })

  it('@google-cloud/bigquery (retries off) sees the 503 backendError', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: await sluice.token() })
    const bq = new BigQuery({ projectId: 'down-project', apiEndpoint: sluice.url, authClient, autoRetry: false })
    const err = await bq.query({ query: 'SELECT 1' }).then(() => undefined, (e: unknown) => e) as { code?: number, errors?: Array<{ reason?: string }>, message?: string }
    expect(err?.code).toBe(503)
    expect(err?.errors?.[0]?.reason).toBe('backendError')
    expect(err?.message).toContain('bq-down')
  })
})

describe('the rule\'s statement timeout, kept by Sluice', () => {
  it('jobs.query + getQueryResults polls end in a 400 timeout job error, and the job is cancelled upstream', async () => {
    const token = await sluice.token()
    const started = Date.now()
    const first = await api(sluice, token, 'POST', '/bigquery/v2/projects/stalled-project/queries', { query: 'SELECT 1 AS n', useLegacySql: false, timeoutMs: 10_000 })
    let res = first
    while (res.status === 200 && res.json.jobComplete === false && Date.now() - started < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      res = await api(sluice, token, 'GET', `/bigquery/v2/projects/stalled-project/queries/${String(first.json.jobReference.jobId)}?timeoutMs=10000`)
    }
    expect(res.status).toBe(400)
    expect(res.json.error.errors[0].reason).toBe('timeout')
    expect(res.json.error.message).toContain('timeout of 1 second(s) and was canceled')
    expect(Date.now() - started).toBeLessThan(25_000)
    expect(stalled.calls.some((c) => c.startsWith('POST') && c.includes('/cancel'))).toBe(true)
  }, 40_000)
})

describe('the rule\'s statement timeout on jobs.get', () => {
  it('a job still running past it is cancelled and reported DONE with errorResult reason timeout', async () => {
    const token = await sluice.token()
    const inserted = await api(sluice, token, 'POST', '/bigquery/v2/projects/stalled-project/jobs', { jobReference: { projectId: 'stalled-project', jobId: 'alice_stalled_1' }, configuration: { query: { query: 'SELECT 1 AS n', useLegacySql: false } } })
    expect(inserted.status).toBe(200)
    const started = Date.now()
    let job = await api(sluice, token, 'GET', '/bigquery/v2/projects/stalled-project/jobs/alice_stalled_1')
    expect(job.json.status.state).toBe('RUNNING')
    while (job.json.status?.state !== 'DONE' && Date.now() - started < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      job = await api(sluice, token, 'GET', '/bigquery/v2/projects/stalled-project/jobs/alice_stalled_1')
    }
    expect(job.json.status).toMatchObject({ state: 'DONE', errorResult: { reason: 'timeout' } })
    expect(job.json.status.errorResult.message).toContain('timeout of 1 second(s) and was canceled')
    expect(stalled.calls.some((c) => c.includes('/jobs/alice_stalled_1/cancel'))).toBe(true)
  }, 40_000)
})

describe('maxRows on BigQuery: truncate keeps the true totalRows and says so; refuse withholds all', () => {
  it('jobs.query truncated: two rows, totalRows 5, a rowsLimited warning in errors, recorded', async () => {
    const token = await sluice.token()
    const sql = `SELECT id FROM ${SEED_DATASET}.customers ORDER BY id`
    const res = await api(sluice, token, 'POST', `/bigquery/v2/projects/${SEED_PROJECT}/queries`, { query: sql, useLegacySql: false })
    expect(res.status).toBe(200)
    expect(res.json.rows.map((r: any) => r.f[0].v)).toEqual(['1', '2'])
    expect(res.json.totalRows).toBe('5')
    expect(res.json.pageToken).toBeUndefined()
    expect(res.json.errors).toEqual([expect.objectContaining({ reason: 'rowsLimited', message: expect.stringContaining('limited to its first 2 rows by rule rows-truncated') })])
    const events = await sluice.app.recorder.listEvents({ limit: 1000 })
    const event = events.find((e: { sqlText?: string | null, reason?: string | null }) => e.sqlText === sql && (e.reason ?? '').includes('result limited'))
    expect(event?.reason).toContain('result limited to 2 rows by rule rows-truncated (limits.maxRows)')
  })

  it('@google-cloud/bigquery reads the truncated rows', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: await sluice.token() })
    const bq = new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
    const [rows] = await bq.query({ query: `SELECT id FROM ${SEED_DATASET}.customers ORDER BY id` })
    expect(rows.map((r: { id: number }) => r.id)).toEqual([1, 2])
  })

  it('refuse: 403 responseTooLarge and no rows', async () => {
    const res = await api(sluice, await sluice.token(), 'POST', `/bigquery/v2/projects/${SEED_PROJECT}/queries`, { query: `SELECT id FROM ${SEED_DATASET}.profiles`, useLegacySql: false })
    expect(res.status).toBe(403)
    expect(res.json.error.errors[0].reason).toBe('responseTooLarge')
    expect(res.json.error.message).toContain('more than 1 rows, the most rule rows-refused allows')
    expect(res.json.rows).toBeUndefined()
  })
})

describe('tabledata.list pages through a whole table past autoLimit, masked', () => {
  const path = `/bigquery/v2/projects/${SEED_PROJECT}/datasets/${SEED_DATASET}/tables/big/data`

  it('startIndex past 1,000 returns rows, masked, with the true totalRows', async () => {
    const res = await api(sluice, await sluice.token(), 'GET', `${path}?startIndex=1200&maxResults=100`)
    expect(res.status).toBe(200)
    expect(res.json.totalRows).toBe(String(BIG_ROWS))
    expect(res.json.rows).toHaveLength(100)
    const ids = res.json.rows.map((r: any) => Number(r.f[0].v)).sort((a: number, b: number) => a - b)
    expect(ids[0]).toBeGreaterThanOrEqual(1000)
    for (const row of res.json.rows) expect(String(row.f[1].v)).not.toMatch(/@example\.com/)
  })

  it('pageToken paging reads all 1,500 rows exactly once, every email masked', async () => {
    const token = await sluice.token()
    const seen = new Set<number>()
    let pageToken: string | undefined
    for (let pages = 0; pages < 20; pages++) {
      const res = await api(sluice, token, 'GET', `${path}?maxResults=400${pageToken === undefined ? '' : `&pageToken=${encodeURIComponent(pageToken)}`}`)
      expect(res.status).toBe(200)
      for (const row of res.json.rows ?? []) {
        seen.add(Number(row.f[0].v))
        expect(String(row.f[1].v)).not.toMatch(/@example\.com/)
      }
      pageToken = res.json.pageToken
      if (pageToken === undefined) break
    }
    expect(seen.size).toBe(BIG_ROWS)
  })

  it('@google-cloud/bigquery table.getRows reads every row', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: await sluice.token() })
    const bq = new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
    const [rows] = await bq.dataset(SEED_DATASET).table('big').getRows({ maxResults: BIG_ROWS, autoPaginate: true } as never)
    expect(rows).toHaveLength(BIG_ROWS)
  })
})
