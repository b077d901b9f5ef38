// @google-cloud/bigquery through Sluice: the README's Node example (apiEndpoint + an OAuth2Client
// carrying the agent's OIDC token) against bqemulator, and against a loopback stub for the
// jobComplete:false polling bqemulator never exercises (it finishes every query at once).
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startSluice, type Sluice } from './harness.js'
import { startStubUpstream, type StubUpstream } from './stub-upstream.js'

const STUB_PROJECT = 'stub-project'
let emulator: BqEmulator
let stub: StubUpstream
let queryIdStub: StubUpstream
let sluice: Sluice
let csvFile: string

/** The README's Node setup: the agent's OIDC token is the client's access token. */
function client (token: string, projectId = SEED_PROJECT): BigQuery {
  const authClient = new OAuth2Client()
  authClient.setCredentials({ access_token: token })
  return new BigQuery({ projectId, apiEndpoint: sluice.url, authClient })
}

beforeAll(async () => {
  csvFile = join(await mkdtemp(join(tmpdir(), 'sluice-bq-')), 'rows.csv')
  await writeFile(csvFile, 'id,email\n9,new@example.com\n')
  emulator = await startBqEmulator()
  stub = await startStubUpstream(STUB_PROJECT, { pendingPolls: 2 })
  queryIdStub = await startStubUpstream('stub-queryid', { queryIdOnly: true })
  sluice = await startSluice({
    connections: {
      'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true },
      'bq-slow': { kind: 'bigquery', url: stub.url, project: STUB_PROJECT },
      'bq-optional': { kind: 'bigquery', url: queryIdStub.url, project: 'stub-queryid' }
    }
  })
})

afterAll(async () => {
  await sluice?.close()
  await stub?.close()
  await queryIdStub?.close()
  await emulator?.close()
})

describe('@google-cloud/bigquery through Sluice', () => {
  it('runs a query and returns typed rows, nested and repeated included', async () => {
    const bq = client(await sluice.token())
    const [rows] = await bq.query({ query: `SELECT id, email, balance, last_seen, active FROM ${SEED_DATASET}.customers ORDER BY id` })
    expect(rows).toHaveLength(CUSTOMERS.length)
    expect(rows[0].email).toBe(CUSTOMERS[0]?.email)
    expect(rows[0].active).toBe(true)
    // The client renders TIMESTAMP as a PreciseDate, nanosecond digits included.
    expect(rows[0].last_seen.value).toBe('2024-01-01T10:00:00.123456000Z')
    expect(rows[2].last_seen).toBeNull()
    const [nested] = await bq.query({ query: `SELECT * FROM ${SEED_DATASET}.profiles ORDER BY id` })
    expect(nested[0].address.city).toBe('London')
    expect(nested[0].phones).toHaveLength(2)
    expect(nested[0].cards[0].number).toBe('4111111111111111')
    expect(nested[1].phones).toEqual([])
    expect(nested[1].address).toBeNull()
  })

  it('pages a query job with maxResults', async () => {
    const bq = client(await sluice.token())
    const [job] = await bq.createQueryJob({ query: `SELECT id FROM ${SEED_DATASET}.customers ORDER BY id` })
    const ids: number[] = []
    let options: Record<string, unknown> | null = { maxResults: 2, autoPaginate: false }
    let pages = 0
    while (options !== null) {
      const [rows, next]: [Array<{ id: number }>, Record<string, unknown> | null] = await job.getQueryResults(options) as never
      ids.push(...rows.map((r) => r.id))
      options = next
      pages++
    }
    expect(ids).toEqual([1, 2, 3, 4, 5])
    expect(pages).toBe(3)
  })

  it('reads table rows (tabledata.list) and lists datasets and tables', async () => {
    const bq = client(await sluice.token())
    const [rows] = await bq.dataset(SEED_DATASET).table('customers').getRows({ selectedFields: 'id,email' })
    expect(rows.map((r: { id: number }) => r.id).sort()).toEqual([1, 2, 3, 4, 5])
    const [datasets] = await bq.getDatasets()
    expect(datasets.map((d) => d.id)).toEqual([SEED_DATASET])
    const [tables] = await bq.dataset(SEED_DATASET).getTables()
    expect(tables.map((t) => t.id).sort()).toEqual(['customers', 'profiles'])
  })

  it('polls a job that is not complete yet (jobComplete:false) until its rows arrive', async () => {
    const bq = client(await sluice.token(), STUB_PROJECT)
    const before = stub.calls.length
    const [rows] = await bq.query({ query: 'SELECT slow' })
    expect(rows.map((r: { email: string }) => r.email)).toEqual(['slow@example.com', 'slower@example.com'])
    const polls = stub.calls.slice(before).filter((c) => c.startsWith('GET /bigquery/v2/projects/stub-project/queries/'))
    expect(polls.length).toBeGreaterThanOrEqual(3)
  })

  it('handles a JOB_CREATION_OPTIONAL answer that carries a queryId and no job', async () => {
    const token = await sluice.token()
    const bq = client(token, 'stub-queryid')
    const [rows] = await bq.query({ query: 'SELECT quick', jobCreationMode: 'JOB_CREATION_OPTIONAL' } as never)
    expect(rows).toHaveLength(2)
    const events = await sluice.app.recorder.listEvents({ limit: 500 })
    expect(events.some((e) => e.connection === 'bq-optional' && e.upstreamId?.startsWith('stubq_'))).toBe(true)
  })

  it('surfaces a policy denial as an ApiError with the rule', async () => {
    const bq = client(await sluice.token())
    await expect(bq.query({ query: `DELETE FROM ${SEED_DATASET}.customers WHERE true` }))
      .rejects.toMatchObject({ code: 403, message: expect.stringContaining('denied by rule no-delete') })
  })

  it('refuses a bad token', async () => {
    const bq = client('not-a-valid-token')
    await expect(bq.query({ query: 'SELECT 1' })).rejects.toMatchObject({ code: 401 })
  })

  it('answers 404 for another principal\'s job id', async () => {
    const [job] = await client(await sluice.token('alice')).createQueryJob({ query: 'SELECT 1 AS x' })
    const bob = client(await sluice.token('bob'))
    await expect(bob.job(job.id as string).getMetadata()).rejects.toMatchObject({ code: 404 })
    await expect(bob.job(job.id as string).getQueryResults()).rejects.toMatchObject({ code: 404 })
    const [bobsJobs] = await bob.getJobs()
    expect(bobsJobs.map((j) => j.id)).not.toContain(job.id)
    const [alicesJobs] = await client(await sluice.token('alice')).getJobs()
    expect(alicesJobs.map((j) => j.id)).toContain(job.id)
  })

  it.each([
    ['extract', async (bq: BigQuery) => await bq.createJob({
      configuration: { extract: { sourceTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'customers' }, destinationUris: ['gs://bucket/out.csv'] } }
    })],
    ['copy', async (bq: BigQuery) => await bq.dataset(SEED_DATASET).table('customers').createCopyJob(bq.dataset(SEED_DATASET).table('copied'))],
    ['load (a media upload)', async (bq: BigQuery) => await bq.dataset(SEED_DATASET).table('customers').createLoadJob(csvFile)],
    ['load (from storage)', async (bq: BigQuery) => await bq.createJob({
      configuration: { load: { sourceUris: ['gs://bucket/in.csv'], destinationTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'customers' } } }
    })],
    ['EXPORT DATA', async (bq: BigQuery) => await bq.query({ query: "EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1" })],
    ['a destination table', async (bq: BigQuery) => await bq.createQueryJob({ query: 'SELECT 1', destination: bq.dataset(SEED_DATASET).table('out') })]
  ])('refuses %s with 403', async (_name, run) => {
    const bq = client(await sluice.token())
    await expect(run(bq)).rejects.toMatchObject({ code: 403, message: expect.stringMatching(/refused/) })
  })
})
