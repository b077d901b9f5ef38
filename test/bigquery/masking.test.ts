// Masking on every BigQuery result path, with the gateway's own stages (SQL analyzer, policy
// engine, masking) over a policy that masks the seeded sensitive columns. The canary seeded in
// each of them (flat, RECORD, REPEATED, repeated RECORD) must never reach a client.
// The policy tests beside them prove the real analyzer and policy engine decide for BigQuery
// requests, tabledata.list included.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { validateConfig } from '../../src/config/load.js'
import { createStages } from '../../src/pipeline/compose.js'
import { CANARY, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { getEvent, searchEvents } from '../../src/recording/search.js'
import { canaryLeak } from '../support/canary.js'
import { api, startSluice, type Sluice } from './harness.js'
import { STUB_CANARY, startStubUpstream, type StubUpstream } from './stub-upstream.js'

const P = `/bigquery/v2/projects/${SEED_PROJECT}`
const T = `${SEED_PROJECT}.${SEED_DATASET}`

const POLICY = `
version: 1
description: BigQuery masking tests - agents read, sensitive columns masked.
rules:
  - id: deny-ddl-dcl
    effect: deny
    match: { kinds: [ddl, dcl] }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-contact
    columns: ['${T}.customers.email', '${T}.customers.ssn', '${T}.customers.phone', '${T}.profiles.email']
    function: redact
    exemptRoles: [data-steward]
  - id: mask-nested
    columns: ['${T}.profiles.address.ssn', '${T}.profiles.phones', '${T}.profiles.cards.holder', '${T}.profiles.cards.number']
    function: redact
`


let emulator: BqEmulator
let stub: StubUpstream
let sluice: Sluice
let dir: string
let alice: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bq-policies-'))
  await writeFile(join(dir, 'bigquery-masking.yaml'), POLICY)
  emulator = await startBqEmulator()
  stub = await startStubUpstream('stub-project', { pendingPolls: 0 })
  sluice = await startSluice({
    connections: {
      'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true },
      // bqemulator keeps no rows for anonymous result tables; the stub serves one.
      'bq-stub': { kind: 'bigquery', url: stub.url, project: 'stub-project' }
    },
    policiesDirectory: dir
  })
  alice = await sluice.token('alice')
})

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
  await stub?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** Fails with the path when a canary shows up in a response in any form (case, reversed, hex, base64). */
function expectNoCanary (what: string, body: unknown): void {
  expectNoCanaryBytes(what, JSON.stringify(body))
}

/** A masked row still has a valid shape: REPEATED stays an array, RECORD stays a record. */
function expectValidProfiles (rows: any[]): void {
  for (const row of rows) {
    expect(Array.isArray(row.f[3].v), 'phones (REPEATED) stays an array').toBe(true)
    expect(Array.isArray(row.f[4].v), 'cards (repeated RECORD) stays an array').toBe(true)
    for (const card of row.f[4].v) expect(Array.isArray(card.v.f)).toBe(true)
  }
}

describe('BigQuery policy through the real analyzer and policy engine', () => {
  it('allows a select and denies DDL with the rule id', async () => {
    const allowed = await api(sluice, alice, 'POST', `${P}/queries`, { query: `SELECT id FROM ${SEED_DATASET}.customers`, useLegacySql: false })
    expect(allowed.status).toBe(200)
    const denied = await api(sluice, alice, 'POST', `${P}/queries`, { query: `DROP TABLE ${SEED_DATASET}.customers`, useLegacySql: false })
    expect(denied.status).toBe(403)
    expect(denied.json.error.message).toMatch(/^denied by rule deny-ddl-dcl/)
  })

  it('admits tabledata.list as a read of the table', async () => {
    const res = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables/customers/data?selectedFields=id`)
    expect(res.status).toBe(200)
    expect(res.json.rows).toHaveLength(5)
  })
})

/** Runs a stub job, learns its result table from jobs.get, reads it with tabledata.list. */
async function readAnonymousResult (token: string, reader = token): Promise<{ status: number, rows: unknown }> {
  const S = '/bigquery/v2/projects/stub-project'
  const query = await api(sluice, token, 'POST', `${S}/queries`, { query: 'SELECT email FROM crm.customers', useLegacySql: false })
  const jobId = query.json.jobReference.jobId as string
  const dest = (await api(sluice, token, 'GET', `${S}/jobs/${jobId}`)).json.configuration.query.destinationTable
  const res = await api(sluice, reader, 'GET', `${S}/datasets/${dest.datasetId as string}/tables/${dest.tableId as string}/data`)
  return { status: res.status, rows: res.json.rows }
}

describe('BigQuery anonymous result tables', () => {
  it('are readable by the job\'s owner only (tabledata.list)', async () => {
    const own = await readAnonymousResult(alice)
    expect(own.status).toBe(200)
    expect(own.rows).toHaveLength(1)
    const foreign = await readAnonymousResult(alice, await sluice.token('bob'))
    expect(foreign.status).toBe(404)
  })
})

describe('BigQuery masking on every result path', () => {
  it('shows an exempt role the values in clear', async () => {
    const steward = await sluice.token('steward', ['stewards'])
    const res = await api(sluice, steward, 'POST', `${P}/queries`, { query: `SELECT email FROM ${SEED_DATASET}.customers ORDER BY id`, useLegacySql: false })
    expect(res.status).toBe(200)
    expect(JSON.stringify(res.json.rows)).toContain(CUSTOMERS_CANARY_EMAIL)
  })

  it('masks jobs.query rows, flat and nested', async () => {
    for (const table of ['customers', 'profiles']) {
      const res = await api(sluice, alice, 'POST', `${P}/queries`, { query: `SELECT * FROM ${SEED_DATASET}.${table} ORDER BY id`, useLegacySql: false })
      expect(res.status).toBe(200)
      expect(res.json.rows.length).toBeGreaterThan(0)
      expectNoCanary(`jobs.query ${table}`, res.json)
      if (table === 'profiles') expectValidProfiles(res.json.rows)
    }
  })

  it('masks every getQueryResults page', async () => {
    const job = await api(sluice, alice, 'POST', `${P}/jobs`, { configuration: { query: { query: `SELECT * FROM ${SEED_DATASET}.customers ORDER BY id`, useLegacySql: false } } })
    const jobId = job.json.jobReference.jobId as string
    let pageToken: string | undefined
    let pages = 0
    do {
      const res = await api(sluice, alice, 'GET', `${P}/queries/${jobId}?maxResults=1${pageToken === undefined ? '' : `&pageToken=${pageToken}`}`)
      expect(res.status).toBe(200)
      expectNoCanary(`getQueryResults page ${pages}`, res.json)
      pageToken = res.json.pageToken
      pages++
    } while (pageToken !== undefined)
    expect(pages).toBe(5)
  })

  it('masks tabledata.list on a table, nested and repeated fields included', async () => {
    for (const table of ['customers', 'profiles']) {
      const res = await api(sluice, alice, 'GET', `${P}/datasets/${SEED_DATASET}/tables/${table}/data`)
      expect(res.status).toBe(200)
      expectNoCanary(`tabledata.list ${table}`, res.json)
      if (table === 'profiles') expectValidProfiles(res.json.rows)
    }
  })

  it('masks nested and repeated fields selected one by one', async () => {
    const res = await api(sluice, alice, 'POST', `${P}/queries`, {
      query: `SELECT address.ssn AS s, phones, (SELECT ARRAY_AGG(c.holder) FROM UNNEST(cards) c) AS holders FROM ${SEED_DATASET}.profiles`,
      useLegacySql: false
    })
    expect(res.status).toBe(200)
    expectNoCanary('nested selection', res.json)
  })

  it('hands @google-cloud/bigquery masked rows it can still parse, nested and repeated included', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: alice })
    const bq = new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
    const [customers] = await bq.query({ query: `SELECT * FROM ${SEED_DATASET}.customers ORDER BY id` })
    const [profiles] = await bq.query({ query: `SELECT * FROM ${SEED_DATASET}.profiles ORDER BY id` })
    expectNoCanary('@google-cloud/bigquery rows', [customers, profiles])
    expect(customers).toHaveLength(5)
    expect(customers[0].id).toBe(1)
    expect(Array.isArray(profiles[0].phones)).toBe(true)
    expect(Array.isArray(profiles[0].cards)).toBe(true)
    const [rows] = await bq.dataset(SEED_DATASET).table('profiles').getRows()
    expectNoCanary('@google-cloud/bigquery getRows', rows)
  })

  it('masks the job\'s anonymous result table read with tabledata.list', async () => {
    const { status, rows } = await readAnonymousResult(alice)
    expect(status).toBe(200)
    expect(rows).toHaveLength(1)
    expectNoCanary('anonymous result table', rows)
  })
})

/** Every form the canary could take in a body: as is, other case, base64 (of it and of the email). */
function expectNoCanaryBytes (what: string, text: string): void {
  const leak = canaryLeak(text, [CANARY, STUB_CANARY, CUSTOMERS_CANARY_EMAIL])
  expect(leak, `${what} leaked ${leak ?? ''}: ${text.slice(0, 400)}`).toBeUndefined()
}

const CUSTOMERS_CANARY_EMAIL = `ada.${CANARY}@example.com`

/** Raw HTTP, so the check sees every byte the client would (not a parsed, re-serialised body). */
async function raw (token: string, method: string, path: string, body?: unknown): Promise<{ status: number, text: string, requestId: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${sluice.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: res.status, text: await res.text(), requestId: res.headers.get('x-request-id') ?? '' }
}

async function recorded (requestId: string): Promise<string> {
  const store = (sluice.app as unknown as { store: Parameters<typeof searchEvents>[0] }).store
  // The completion (or the refusal): a statement that ran has its admitted event too.
  const items = (await searchEvents(store, { requestId })).items.filter((e) => e.phase !== 'admitted')
  expect(items).toHaveLength(1)
  return JSON.stringify(await getEvent(store, items[0]!.id))
}

// Warehouses quote the value that broke a statement in its error: bqemulator answers
// CAST(email AS INT64) with DuckDB's "Could not convert string '<email>'" and ERROR(email) with
// the value itself, on jobs.query (`errors`) and on the job (`status.errorResult`, `errors`).
describe('BigQuery upstream errors on masked columns', () => {
  for (const sql of [`SELECT CAST(email AS INT64) FROM ${SEED_DATASET}.customers`, `SELECT ERROR(email) FROM ${SEED_DATASET}.customers`]) {
    it(`withholds the message of ${sql.split(' FROM')[0] ?? sql} on every surface, and in the event`, async () => {
      // Sanity: the emulator really quotes the canary, so the checks below prove something.
      const direct = await emulator.api('POST', `projects/${SEED_PROJECT}/queries`, { query: sql, useLegacySql: false })
      expect(JSON.stringify(direct.json)).toContain(CANARY)

      const query = await raw(alice, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
      expectNoCanaryBytes('jobs.query', query.text)
      const answer = JSON.parse(query.text)
      const error = answer.errors?.[0] ?? answer.error?.errors?.[0]
      expect(error.reason, 'the warehouse\'s reason is kept').toBe('invalidQuery')
      expect(error.message).toMatch(/^the warehouse reported error invalidQuery; its message was withheld because the statement reads sluice-test\.crm\.customers/)
      const event = await recorded(query.requestId)
      expectNoCanaryBytes('jobs.query event', event)
      expect(JSON.parse(event).reason, 'the event records the text the client got').toBe(error.message)

      const inserted = await raw(alice, 'POST', `${P}/jobs`, { configuration: { query: { query: sql, useLegacySql: false } } })
      expectNoCanaryBytes('jobs.insert', inserted.text)
      const jobId = JSON.parse(inserted.text).jobReference.jobId as string
      const job = await raw(alice, 'GET', `${P}/jobs/${jobId}`)
      expectNoCanaryBytes('jobs.get', job.text)
      const status = JSON.parse(job.text).status
      expect(status.errorResult.reason).toBe('invalidQuery')
      expect(status.errorResult.message).toMatch(/withheld/)
      expect(status.errors[0].message).toMatch(/withheld/)
      expectNoCanaryBytes('jobs.get event', await recorded(job.requestId))
      const results = await raw(alice, 'GET', `${P}/queries/${jobId}`)
      expectNoCanaryBytes('getQueryResults', results.text)
      const failed = JSON.parse(await recorded(results.requestId))
      expectNoCanaryBytes('getQueryResults event', JSON.stringify(failed))
      expect(failed.reason).toBe(JSON.parse(results.text).error.message)
      const list = await raw(alice, 'GET', `${P}/jobs?projection=full`)
      expectNoCanaryBytes('jobs.list', list.text)
    })
  }

  it('releases the text of a statement reading no masked table, detector shapes redacted', async () => {
    const res = await raw(alice, 'POST', `${P}/queries`, { query: 'SELECT CAST(\'x@example.com\' AS INT64)', useLegacySql: false })
    const message = JSON.parse(res.text).errors[0].message as string
    expect(message).toContain("Could not convert string '[redacted:email]'")
    expect(res.text).not.toContain('x@example.com')
    expect(message).not.toMatch(/withheld/)
  })
})
