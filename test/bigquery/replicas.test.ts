// Two gateways on one Postgres database with the same secrets.key, as two replicas behind a
// load balancer: a job inserted through one is read, paged and listed through the other, masked
// identically (the same token and sha256 outputs), and another principal gets 404 on both.
// bqemulator runs the queries; the lazy upstream serves the rows of an anonymous result table,
// which bqemulator keeps none of.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'
import { api, startSluice, type Sluice } from './harness.js'
import { LAZY_PROJECT, LAZY_SQL, lazyRow, startLazyUpstream, type LazyUpstream } from './lazy-upstream.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const P = `/bigquery/v2/projects/${SEED_PROJECT}`
const L = `/bigquery/v2/projects/${LAZY_PROJECT}`
const SECRET = 'replicas-share-this-key-0123456789abcdef'
const POLICY = `
version: 1
description: two replicas - agents read, contact columns tokenised or hashed.
rules:
  - id: lazy-capped
    effect: allow
    match: { roles: [agent], kinds: [select], connections: [bq-lazy] }
    limits: { maxRows: 25 }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: tokenise-email
    columns: ['${T}.customers.email', '${LAZY_PROJECT}.shop.people.email']
    function: token
  - id: hash-ssn
    columns: ['${T}.customers.ssn']
    function: sha256
`
const SQL = `SELECT id, email, ssn FROM ${SEED_DATASET}.customers ORDER BY id`

let db: ThrowawayDatabase
let idp: TestIdp
let emulator: BqEmulator
let lazy: LazyUpstream
let dir: string
let a: Sluice
let b: Sluice
let alice: string
let bob: string

beforeAll(async () => {
  db = await createThrowawayDatabase()
  idp = await startTestIdp()
  dir = await mkdtemp(join(tmpdir(), 'sluice-bq-replicas-'))
  await writeFile(join(dir, 'policy.yaml'), POLICY)
  emulator = await startBqEmulator()
  lazy = await startLazyUpstream({ rows: 1000, pageRows: 10 })
  const options = {
    connections: {
      'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true },
      'bq-lazy': { kind: 'bigquery', url: lazy.url, project: LAZY_PROJECT }
    },
    policiesDirectory: dir,
    databaseUrl: db.url,
    secretsKey: SECRET,
    idp
  }
  a = await startSluice(options)
  b = await startSluice(options)
  alice = await a.token('alice')
  bob = await a.token('bob')
}, 180_000)

afterAll(async () => {
  await a?.close()
  await b?.close()
  await emulator?.close()
  await lazy?.close()
  await idp?.close()
  await db?.drop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

function client (sluice: Sluice, token: string): BigQuery {
  const authClient = new OAuth2Client()
  authClient.setCredentials({ access_token: token })
  return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
}

/** Every row of a job's result through getQueryResults pages of `size`, each from the replica `via(page)`. */
async function pages (jobId: string, size: number, via: (page: number) => Sluice, token = alice, base = P): Promise<{ rows: any[], pages: number, last: any }> {
  const rows: any[] = []
  let pageToken: string | undefined
  let last: any
  let n = 0
  do {
    const res = await api(via(n), token, 'GET', `${base}/queries/${jobId}?maxResults=${size}${pageToken === undefined ? '' : `&pageToken=${encodeURIComponent(pageToken)}`}`)
    expect(res.status, JSON.stringify(res.json)).toBe(200)
    rows.push(...(res.json.rows ?? []))
    pageToken = res.json.pageToken
    last = res.json
    n++
  } while (pageToken !== undefined && n < 200)
  return { rows, pages: n, last }
}

describe('BigQuery on two replicas sharing one store', { timeout: 180_000 }, () => {
  it('serves jobs.get and getQueryResults pages on B for a job inserted on A, masked as A masks them', async () => {
    const jobId = `replica_${Date.now()}`
    const inserted = await api(a, alice, 'POST', `${P}/jobs`, { jobReference: { jobId }, configuration: { query: { query: SQL, useLegacySql: false } } })
    expect(inserted.status, JSON.stringify(inserted.json)).toBe(200)

    const got = await api(b, alice, 'GET', `${P}/jobs/${jobId}`)
    expect(got.status, JSON.stringify(got.json)).toBe(200)
    expect(got.json.status.state).toBe('DONE')

    // Pages of two, alternating replicas, starting on B; the same pages all on A.
    const alternating = await pages(jobId, 2, (n) => (n % 2 === 0 ? b : a))
    const onA = await pages(jobId, 2, () => a)
    expect(alternating.pages).toBe(3)
    expect(alternating.rows).toEqual(onA.rows)
    expect(alternating.rows.map((r) => r.f[0].v)).toEqual(CUSTOMERS.map((c) => String(c.id)))
    for (const [i, row] of alternating.rows.entries()) {
      expect(row.f[1].v).toMatch(/^tok_[0-9a-f]{32}$/)
      expect(row.f[1].v).not.toBe(CUSTOMERS[i]!.email)
      expect(row.f[2].v).toMatch(/^[0-9a-f]{64}$/)
    }
    // The same statement through jobs.query on B masks to the same tokens and hashes.
    const direct = await api(b, alice, 'POST', `${P}/queries`, { query: SQL, useLegacySql: false })
    expect(direct.json.rows).toEqual(onA.rows)
  })

  it('gives another principal 404 on both replicas and never lets it take the id over', async () => {
    const jobId = `owned_${Date.now()}`
    expect((await api(a, alice, 'POST', `${P}/jobs`, { jobReference: { jobId }, configuration: { query: { query: SQL, useLegacySql: false } } })).status).toBe(200)
    for (const replica of [a, b]) {
      expect((await api(replica, bob, 'GET', `${P}/jobs/${jobId}`)).status).toBe(404)
      expect((await api(replica, bob, 'GET', `${P}/queries/${jobId}`)).status).toBe(404)
      expect((await api(replica, bob, 'POST', `${P}/jobs/${jobId}/cancel`)).status).toBe(404)
      const reused = await api(replica, bob, 'POST', `${P}/jobs`, { jobReference: { jobId }, configuration: { query: { query: 'SELECT 1', useLegacySql: false } } })
      expect(reused.status).toBe(409)
      const listed = await api(replica, bob, 'GET', `${P}/jobs`)
      expect(JSON.stringify(listed.json)).not.toContain(jobId)
    }
    // Still alice's, on both.
    expect((await api(b, alice, 'GET', `${P}/queries/${jobId}`)).json.rows).toHaveLength(CUSTOMERS.length)
    expect(JSON.stringify((await api(b, alice, 'GET', `${P}/jobs`)).json)).toContain(jobId)
  })

  it('runs @google-cloud/bigquery across replicas: a job created through A, its results read through B', async () => {
    const [job] = await client(a, alice).createQueryJob({ query: SQL, useLegacySql: false })
    // Pages of two, each through the other replica, as the client's own paging hands them on.
    const rowsOnB: any[] = []
    let options: Record<string, unknown> | null = { maxResults: 2, autoPaginate: false }
    for (let n = 0; options !== null && n < 10; n++) {
      const [rows, nextQuery] = await client(n % 2 === 0 ? b : a, alice).job(job.id as string).getQueryResults(options) as unknown as [any[], Record<string, unknown> | null]
      rowsOnB.push(...rows)
      options = nextQuery === null || nextQuery === undefined ? null : { ...nextQuery, autoPaginate: false }
    }
    const [rowsOnA] = await client(a, alice).job(job.id as string).getQueryResults()
    expect(rowsOnB).toHaveLength(CUSTOMERS.length)
    expect(rowsOnB).toEqual(rowsOnA)
    for (const row of rowsOnB as any[]) {
      expect(row.email).toMatch(/^tok_[0-9a-f]{32}$/)
      expect(row.ssn).toMatch(/^[0-9a-f]{64}$/)
    }
    await expect(client(b, bob).job(job.id as string).getQueryResults()).rejects.toMatchObject({ code: 404 })
    await expect(client(a, bob).job(job.id as string).getMetadata()).rejects.toMatchObject({ code: 404 })
  })

  it('pages tabledata.list of the result table on B, for a job inserted on A, under its statement and row cap', async () => {
    const jobId = `anon_${Date.now()}`
    const inserted = await api(a, alice, 'POST', `${L}/jobs`, { jobReference: { jobId }, configuration: { query: { query: LAZY_SQL, useLegacySql: false } } })
    expect(inserted.status, JSON.stringify(inserted.json)).toBe(200)
    const table = `${L}/datasets/_lazy_anon/tables/anon_${jobId}/data`
    // Pages of 10 alternating replicas, B first; the rule caps the result at 25 rows.
    const rows: any[] = []
    let pageToken: string | undefined
    let last: any
    for (let n = 0; n < 10; n++) {
      const res = await api(n % 2 === 0 ? b : a, alice, 'GET', `${table}?maxResults=10${pageToken === undefined ? '' : `&pageToken=${pageToken}`}`)
      expect(res.status, JSON.stringify(res.json)).toBe(200)
      rows.push(...res.json.rows)
      last = res.json
      pageToken = res.json.pageToken
      if (pageToken === undefined) break
    }
    expect(rows.map((r) => r.f[0].v)).toEqual(Array.from({ length: 25 }, (_, i) => String(i)))
    expect(last.totalRows).toBe('1000')
    const viaResults = await pages(jobId, 10, () => a, alice, L)
    expect(viaResults.last.errors?.[0]).toMatchObject({ reason: 'rowsLimited' })
    expect(rows).toEqual(viaResults.rows)
    for (const row of rows) {
      expect(row.f[1].v).toMatch(/^tok_[0-9a-f]{32}$/)
      expect(row.f[1].v).not.toBe(lazyRow(Number(row.f[0].v)).email)
    }
    // startIndex on B, past the first page: placed by itself, masked alike.
    const mid = await api(b, alice, 'GET', `${table}?maxResults=5&startIndex=12`)
    expect(mid.json.rows).toEqual(rows.slice(12, 17))
    // A page token handed to alice is nobody else's, and the table is not bob's: 404 on both.
    for (const replica of [a, b]) {
      expect((await api(replica, bob, 'GET', `${table}?maxResults=10`)).status).toBe(404)
      expect((await api(replica, bob, 'GET', `${L}/datasets/_lazy_anon/tables/anon_${jobId}`)).status).toBe(404)
    }
  })
})
