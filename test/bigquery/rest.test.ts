// The BigQuery REST v2 surface through Sluice against bqemulator, over plain HTTP: what the
// client libraries hide (error bodies, ownership 404s, refusals, recording) is checked here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANARY, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { allowAll, api, startSluice, type Sluice } from './harness.js'
import { startStubUpstream, type StubUpstream } from './stub-upstream.js'

let emulator: BqEmulator
let sluice: Sluice
let alice: string
let bob: string
const P = `/bigquery/v2/projects/${SEED_PROJECT}`

beforeAll(async () => {
  emulator = await startBqEmulator()
  sluice = await startSluice({ connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
  alice = await sluice.token('alice')
  bob = await sluice.token('bob')
})

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
})

function errorOf (json: any): { code: number, reason: string, status: string, message: string, sluiceCode: string } {
  return {
    code: json.error?.code,
    reason: json.error?.errors?.[0]?.reason,
    status: json.error?.status,
    message: json.error?.message,
    sluiceCode: json.error?.details?.[0]?.reason
  }
}

describe('bigquery REST through Sluice', () => {
  it('serves the discovery document with its own base URL', async () => {
    for (const path of ['/$discovery/rest?version=v2', '/discovery/v1/apis/bigquery/v2/rest']) {
      const { status, json } = await api(sluice, undefined, 'GET', path)
      expect(status).toBe(200)
      expect(json.rootUrl).toBe(`${sluice.url}/`)
      expect(json.baseUrl).toBe(`${sluice.url}/bigquery/v2/`)
      expect(json.resources.jobs.methods.query.path).toBe('projects/{+projectId}/queries')
      expect(JSON.stringify(json.endpoints)).toBe('[]')
    }
  })

  it('answers jobs.query with the rows the warehouse returned, nested and repeated included', async () => {
    const direct = await emulator.api('POST', `projects/${SEED_PROJECT}/queries`, { query: `SELECT * FROM ${SEED_DATASET}.profiles ORDER BY id`, useLegacySql: false, formatOptions: { useInt64Timestamp: true } })
    const { status, json } = await api(sluice, alice, 'POST', `${P}/queries`, { query: `SELECT * FROM ${SEED_DATASET}.profiles ORDER BY id`, useLegacySql: false, formatOptions: { useInt64Timestamp: true } })
    expect(status).toBe(200)
    expect(json.jobComplete).toBe(true)
    expect(json.schema).toEqual(direct.json.schema)
    expect(json.rows).toEqual(direct.json.rows)
  })

  it('renders timestamps as float seconds unless int64 is asked for', async () => {
    const sql = `SELECT last_seen FROM ${SEED_DATASET}.customers WHERE id IN (1, 4) ORDER BY id`
    const asFloat = await api(sluice, alice, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
    expect(asFloat.json.rows.map((r: any) => r.f[0].v)).toEqual(['1704103200.123456', '-14182940'])
    const asInt = await api(sluice, alice, 'POST', `${P}/queries`, { query: sql, useLegacySql: false, formatOptions: { useInt64Timestamp: true } })
    expect(asInt.json.rows.map((r: any) => r.f[0].v)).toEqual(['1704103200123456', '-14182940000000'])
  })

  it('pages getQueryResults with maxResults, pageToken and startIndex', async () => {
    const inserted = await api(sluice, alice, 'POST', `${P}/jobs`, {
      jobReference: { projectId: SEED_PROJECT, jobId: 'alice_paging_1' },
      configuration: { query: { query: `SELECT id, email FROM ${SEED_DATASET}.customers ORDER BY id`, useLegacySql: false } }
    })
    expect(inserted.status).toBe(200)
    expect(inserted.json.jobReference.jobId).toBe('alice_paging_1')
    const ids: string[] = []
    let pageToken: string | undefined
    do {
      const { status, json } = await api(sluice, alice, 'GET', `${P}/queries/alice_paging_1?maxResults=2${pageToken === undefined ? '' : `&pageToken=${pageToken}`}`)
      expect(status).toBe(200)
      ids.push(...json.rows.map((r: any) => r.f[0].v))
      pageToken = json.pageToken
    } while (pageToken !== undefined)
    expect(ids).toEqual(['1', '2', '3', '4', '5'])
    const third = await api(sluice, alice, 'GET', `${P}/queries/alice_paging_1?maxResults=1&startIndex=2`)
    expect(third.json.rows.map((r: any) => r.f[0].v)).toEqual(['3'])
  })

  it('applies a policy\'s maxRows across jobs.query and getQueryResults pages', async () => {
    const sql = `SELECT id FROM ${SEED_DATASET}.customers ORDER BY id -- cap:3`
    const first = await api(sluice, alice, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
    expect(first.json.rows.map((r: any) => r.f[0].v)).toEqual(['1', '2', '3'])
    // The true count stays; the cut is announced as a warning.
    expect(first.json.totalRows).toBe('5')
    expect(first.json.errors?.[0]?.reason).toBe('rowsLimited')
    expect(first.json.pageToken).toBeUndefined()
    await api(sluice, alice, 'POST', `${P}/jobs`, { jobReference: { projectId: SEED_PROJECT, jobId: 'alice_capped_1' }, configuration: { query: { query: sql, useLegacySql: false } } })
    const page1 = await api(sluice, alice, 'GET', `${P}/queries/alice_capped_1?maxResults=2`)
    expect(page1.json.rows.map((r: any) => r.f[0].v)).toEqual(['1', '2'])
    const page2 = await api(sluice, alice, 'GET', `${P}/queries/alice_capped_1?maxResults=2&pageToken=${page1.json.pageToken as string}`)
    expect(page2.json.rows.map((r: any) => r.f[0].v)).toEqual(['3'])
    expect(page2.json.pageToken).toBeUndefined()
    expect((await api(sluice, alice, 'GET', `${P}/queries/alice_capped_1?startIndex=3`)).json.rows).toEqual([])
    const forged = await api(sluice, alice, 'GET', `${P}/queries/alice_capped_1?pageToken=4`)
    expect(forged.status).toBe(400)
    expect(forged.json.error.message).toMatch(/pageToken was not issued to you/)
  })

  it('binds job ids to their principal: another caller gets 404 everywhere', async () => {
    await api(sluice, alice, 'POST', `${P}/jobs`, {
      jobReference: { projectId: SEED_PROJECT, jobId: 'alice_private_1' },
      configuration: { query: { query: `SELECT email FROM ${SEED_DATASET}.customers`, useLegacySql: false } }
    })
    const own = await api(sluice, alice, 'GET', `${P}/jobs/alice_private_1`)
    expect(own.status).toBe(200)
    const destination = own.json.configuration.query.destinationTable
    for (const [method, path] of [
      ['GET', `${P}/jobs/alice_private_1`],
      ['GET', `${P}/queries/alice_private_1`],
      ['POST', `${P}/jobs/alice_private_1/cancel`],
      ['GET', `${P}/datasets/${destination.datasetId}/tables/${destination.tableId}/data`],
      ['GET', `${P}/datasets/${destination.datasetId}/tables/${destination.tableId}`]
    ] as const) {
      const { status, json } = await api(sluice, bob, method, path)
      expect(status, `${method} ${path}`).toBe(404)
      expect(errorOf(json)).toMatchObject({ code: 404, reason: 'notFound', status: 'NOT_FOUND', sluiceCode: 'SLUICE_NOT_FOUND' })
      expect(JSON.stringify(json)).not.toContain(CANARY)
    }
    const listed = await api(sluice, bob, 'GET', `${P}/jobs`)
    expect(listed.status).toBe(200)
    expect((listed.json.jobs ?? []).map((j: any) => j.jobReference.jobId)).not.toContain('alice_private_1')
    const mine = await api(sluice, alice, 'GET', `${P}/jobs?maxResults=1000`)
    const ids = mine.json.jobs.map((j: any) => j.jobReference.jobId)
    expect(ids).toContain('alice_private_1')
    expect(ids).toContain('alice_paging_1')
  })

  it('never lets a second principal take over a job id', async () => {
    const body = { jobReference: { projectId: SEED_PROJECT, jobId: 'contested_1' }, configuration: { query: { query: 'SELECT 1 AS x', useLegacySql: false } } }
    expect((await api(sluice, alice, 'POST', `${P}/jobs`, body)).status).toBe(200)
    const again = await api(sluice, bob, 'POST', `${P}/jobs`, body)
    expect(again.status).not.toBe(200)
    expect((await api(sluice, bob, 'GET', `${P}/jobs/contested_1`)).status).toBe(404)
  })

  it('lists tabledata with the table schema and selectedFields', async () => {
    const all = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables/customers/data?maxResults=2`)
    expect(all.status).toBe(200)
    expect(all.json.rows).toHaveLength(2)
    expect(all.json.rows[0].f).toHaveLength(9)
    const some = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables/customers/data?selectedFields=id,last_seen&formatOptions.useInt64Timestamp=true`)
    expect(some.status).toBe(200)
    expect(some.json.rows.map((r: any) => r.f.map((c: any) => c.v))).toContainEqual(['1', '1704103200123456'])
  })

  it('hides anonymous result datasets and tables from catalog reads', async () => {
    const datasets = await api(sluice, alice, 'GET', `${P}/datasets`)
    expect(datasets.status).toBe(200)
    const ids = datasets.json.datasets.map((d: any) => d.datasetReference.datasetId)
    expect(ids).toContain(SEED_DATASET)
    expect(ids.filter((id: string) => id.startsWith('_'))).toEqual([])
    expect((await api(sluice, alice, 'GET', `${P}/datasets/_bqemu_anonymous/tables`)).status).toBe(404)
    expect((await api(sluice, alice, 'GET', `${P}/datasets/_bqemu_anonymous/tables/anonunknown/data`)).status).toBe(404)
    const tables = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables`)
    expect(tables.json.tables.map((t: any) => t.tableReference.tableId).sort()).toEqual(['customers', 'profiles'])
    const table = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables/profiles`)
    expect(table.json.schema.fields.map((f: any) => f.name)).toContain('cards')
    expect((await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}`)).status).toBe(200)
  })

  it('renders a policy denial in Google\'s error shape with the rule and reason', async () => {
    const { status, json } = await api(sluice, alice, 'POST', `${P}/queries`, { query: `DELETE FROM ${SEED_DATASET}.customers WHERE true`, useLegacySql: false })
    expect(status).toBe(403)
    expect(errorOf(json)).toEqual({
      code: 403, reason: 'accessDenied', status: 'PERMISSION_DENIED', sluiceCode: 'SLUICE_POLICY_DENIED',
      message: 'denied by rule no-delete: agents may not delete rows'
    })
  })

  it.each([
    ['an extract job', { configuration: { extract: { sourceTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'customers' }, destinationUris: ['gs://b/x'] } } }, /extract jobs are refused/],
    ['a copy job', { configuration: { copy: { sourceTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'customers' }, destinationTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'c2' } } } }, /copy jobs are refused/],
    ['a load job', { configuration: { load: { sourceUris: ['gs://b/x.csv'], destinationTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'c3' } } } }, /load jobs are refused/],
    ['EXPORT DATA', { configuration: { query: { query: "EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT * FROM crm.customers", useLegacySql: false } } }, /EXPORT DATA is refused/],
    ['a destinationTable', { configuration: { query: { query: 'SELECT 1', useLegacySql: false, destinationTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'out' } } } }, /destinationTable on a query is refused/],
    ['a writeDisposition', { configuration: { query: { query: 'SELECT 1', useLegacySql: false, writeDisposition: 'WRITE_TRUNCATE' } } }, /writeDisposition on a query is refused/],
    ['legacy SQL', { configuration: { query: { query: 'SELECT 1', useLegacySql: true } } }, /legacy SQL is refused/],
    ['an unknown job type', { configuration: { frobnicate: {} } }, /not a job type or option Sluice forwards/]
  ])('refuses %s with a clear 403', async (_name, body, message) => {
    const { status, json } = await api(sluice, alice, 'POST', `${P}/jobs`, body)
    expect(status).toBe(403)
    expect(errorOf(json)).toMatchObject({ reason: 'accessDenied', sluiceCode: 'SLUICE_BIGQUERY_REFUSED' })
    expect(errorOf(json).message).toMatch(message)
  })

  it('refuses EXPORT DATA on jobs.query too, even behind a comment-free script', async () => {
    const { status, json } = await api(sluice, alice, 'POST', `${P}/queries`, { query: "SELECT 1; -- EXPORT DATA in a comment is fine\nEXPORT  DATA OPTIONS(uri='gs://b/*') AS SELECT 1", useLegacySql: false })
    expect(status).toBe(403)
    expect(errorOf(json).message).toMatch(/EXPORT DATA is refused/)
  })

  it('refuses media uploads (load jobs), batch calls and methods it does not serve', async () => {
    const upload = await fetch(`${sluice.url}/upload/bigquery/v2/projects/${SEED_PROJECT}/jobs?uploadType=multipart`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'multipart/related; boundary=xx' },
      body: '--xx\r\ncontent-type: application/json\r\n\r\n{"configuration":{"load":{}}}\r\n--xx\r\ncontent-type: text/csv\r\n\r\na,b\r\n--xx--'
    })
    expect(upload.status).toBe(403)
    expect(errorOf(await upload.json()).message).toMatch(/load jobs are refused.*job types: load/)
    const insertAll = await api(sluice, alice, 'POST', `${P}/datasets/${SEED_DATASET}/tables/customers/insertAll`, { rows: [] })
    expect(insertAll.status).toBe(403)
    expect(errorOf(insertAll.json)).toMatchObject({ sluiceCode: 'SLUICE_BIGQUERY_UNSUPPORTED' })
    expect((await api(sluice, alice, 'DELETE', `${P}/datasets/${SEED_DATASET}`)).status).toBe(403)
  })

  it('refuses a bad token in Google\'s error shape and records the attempt', async () => {
    const { status, json } = await api(sluice, 'not-a-token', 'POST', `${P}/queries`, { query: 'SELECT 1', useLegacySql: false })
    expect(status).toBe(401)
    expect(errorOf(json)).toMatchObject({ code: 401, reason: 'authError', status: 'UNAUTHENTICATED', sluiceCode: 'SLUICE_AUTH_INVALID' })
    const missing = await api(sluice, undefined, 'GET', `${P}/datasets`)
    expect(missing.status).toBe(401)
    expect(errorOf(missing.json).sluiceCode).toBe('SLUICE_AUTH_MISSING')
  })

  it('passes a query error through with BigQuery\'s own reason', async () => {
    const { json } = await api(sluice, alice, 'POST', `${P}/queries`, { query: 'SELEC 1', useLegacySql: false })
    // bqemulator answers 200 with `errors` where BigQuery answers 400 invalidQuery; either way
    // the client sees the warehouse's reason, not a gateway error.
    const reason = json.errors?.[0]?.reason ?? json.error?.errors?.[0]?.reason
    expect(reason).toBe('invalidQuery')
  })

  it('records every round trip as a session event with its connection', async () => {
    const res = await fetch(`${sluice.url}${P}/queries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 42 AS answer', useLegacySql: false })
    })
    expect(res.status).toBe(200)
    const requestId = res.headers.get('x-request-id')
    const events = await sluice.app.recorder.listEvents({ limit: 500 })
    const event = events.find((e) => e.requestId === requestId && e.outcome !== 'admitted')
    expect(event).toMatchObject({ frontEnd: 'bigquery', connection: 'bq-test', principalSubject: 'alice', outcome: 'ok', sqlText: 'SELECT 42 AS answer', rowsReturned: 1 })
    const denied = events.find((e) => e.sqlText?.startsWith('DELETE'))
    expect(denied).toMatchObject({ outcome: 'denied', ruleId: 'no-delete' })
  })
})

describe('bigquery transfers a policy allows', () => {
  let stub: StubUpstream
  let open: Sluice

  beforeAll(async () => {
    stub = await startStubUpstream('stub-project')
    open = await startSluice({ connections: { 'bq-stub': { kind: 'bigquery', url: stub.url, project: 'stub-project', default: true } }, decide: allowAll })
  })

  afterAll(async () => {
    await open?.close()
    await stub?.close()
  })

  it('forwards an extract job an enforcing policy allows, judged as EXPORT DATA', async () => {
    const token = await open.token('alice')
    const body = { configuration: { extract: { sourceTable: { projectId: 'stub-project', datasetId: 'crm', tableId: 'customers' }, destinationUris: ['gs://bucket/out.csv'] } } }
    const { status, json } = await api(open, token, 'POST', '/bigquery/v2/projects/stub-project/jobs', body)
    expect(status).toBe(200)
    expect(json.configuration.extract.destinationUris).toEqual(['gs://bucket/out.csv'])
    expect(stub.calls).toContain('POST /bigquery/v2/projects/stub-project/jobs')
    const events = await open.app.recorder.listEvents({ limit: 50 })
    expect(events.find((e) => e.route?.endsWith('/jobs'))?.sqlText).toBe("EXPORT DATA OPTIONS(uri='gs://bucket/out.csv', format='CSV') AS SELECT * FROM `stub-project.crm.customers`")
    // The job is the caller's like any other.
    expect((await api(open, await open.token('bob'), 'GET', `/bigquery/v2/projects/stub-project/jobs/${json.jobReference.jobId as string}`)).status).toBe(404)
  })
})
