// A replica claims an approved statement and stops before starting it (killed between the claim
// and the release, or its admitted-event write failed): simulated by claiming in the store
// through an approvals service of a replica that never does anything after, its claim then aged
// past the lease. Snowflake: running it again could run it twice, so the client's poll ends its
// statement with the error saying so, and nothing reaches the warehouse. BigQuery: the job id is
// fixed and BigQuery refuses a second job under it, so the poll takes the claim over and runs
// the job — once, even when the claimer did insert it before it stopped.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ApprovalService } from '../../src/approvals/service.js'
import type { Store } from '../../src/store/store.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { spySnowflakeStatements } from '../support/upstream-spy.js'
import { HELD_CUSTOMER_READS_POLICY, startHeldGateway, type HeldGateway } from './held-gateway.js'
import { HOLD_POLICY, adminOf, pendingApproval, type Admin } from './snowflake-fixtures.js'

type Json = Record<string, any>
const DEAD = 'replica-that-died'

/** The dead replica's claim: leased, as a poll of the held statement takes it, then never followed up. */
async function claimAndDie (store: Store, id: string): Promise<void> {
  const claimed = await new ApprovalService({ store, replica: DEAD }).approvals.claim(id, DEAD, { lease: true })
  expect(claimed).toMatchObject({ status: 'executed', claimedBy: DEAD })
}

/** Its lease has run out: the claim is older than any lease (the store's clock, as the check reads it). */
async function ageClaim (store: Store, id: string): Promise<void> {
  await store.query("update approvals set claimed_at = now() - interval '1 hour' where id = $1::uuid", [id])
}

describe('Snowflake: a claim whose replica stopped before running the statement', { timeout: 240_000 }, () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let dir: string
  let agent: string
  let admin: Admin
  let sdk: SdkConnection
  let sent: string[]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-claim-lost-'))
    await writeFile(join(dir, 'policy.yaml'), HOLD_POLICY)
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, syncWaitSeconds: 1 } },
      stages: 'configured',
      policiesDirectory: dir,
      groupRoles: { approvers: ['approver'] },
      approvals: {}
    })
    agent = await gw.idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    admin = adminOf(gw.url, await gw.idp.userToken({ subject: 'carol', groups: ['approvers'] }))
    sdk = await connectSdk({ accessUrl: gw.url, token: agent, database: SEED_DATABASE, schema: SEED_SCHEMA })
  }, 600_000)
  afterAll(async () => {
    if (sdk !== undefined) await destroySdk(sdk)
    await gw?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  }, 120_000) // the emulators are Python processes: their start alone can take most of a minute on a busy machine
  beforeEach(() => { sent = spySnowflakeStatements() })

  const api = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
    const res = await request(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
    return { status: res.statusCode, body: await res.body.json() as Json }
  }

  it('polls as running while the claim is within its lease, then ends with the claim-lost error and never runs it', async () => {
    const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 1'
    const held = await api('POST', '/api/v2/statements', { statement: sql, database: SEED_DATABASE, schema: SEED_SCHEMA })
    expect(held.status).toBe(202)
    const url = held.body.statementStatusUrl as string
    const approval = await pendingApproval(admin, sql)
    const id = approval.id as string
    expect((await admin.post(`/approvals/${id}/approve`, {})).status).toBe(200)
    await claimAndDie(gw.store, id)
    // Just claimed (the lease is 10 s): the claimer may be starting it, so the client waits on.
    expect((await api('GET', url)).status).toBe(202)
    await ageClaim(gw.store, id)
    const message = `approval ${id} was approved, but gateway ${DEAD}, which took the statement to run it, stopped before running it; the statement was not run: send it again`
    expect(await api('GET', url)).toMatchObject({ status: 422, body: { message, statementHandle: held.body.statementHandle } })
    // The handle ended: every later poll answers the same, and the warehouse never saw it.
    expect(await api('GET', url)).toMatchObject({ status: 422, body: { message } })
    expect(sent.filter((s) => s === sql)).toEqual([])
    expect((await admin.get(`/approvals/${id}`)).body).toMatchObject({ status: 'executed', claimedBy: DEAD })
  })

  it('snowflake-sdk: the waiting execute() raises the claim-lost error once the lease lapsed', async () => {
    const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 2'
    const running = runSdk(sdk, sql).then(() => undefined, (e: Error) => e)
    const approval = await pendingApproval(admin, sql)
    const id = approval.id as string
    expect((await admin.post(`/approvals/${id}/approve`, {})).status).toBe(200)
    await claimAndDie(gw.store, id)
    await ageClaim(gw.store, id)
    const err = await running
    expect(err?.message).toBe(`approval ${id} was approved, but gateway ${DEAD}, which took the statement to run it, stopped before running it; the statement was not run: send it again`)
    expect(sent.filter((s) => s === sql)).toEqual([])
  })

  it('a resend after the approval claims and runs it in its own request: the held handle serves that run, and never reads as lost', async () => {
    const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 3'
    const submit = async (): Promise<{ status: number, body: Json }> => await api('POST', '/api/v2/statements', { statement: sql, database: SEED_DATABASE, schema: SEED_SCHEMA })
    const held = await submit()
    expect(held.status).toBe(202)
    const approval = await pendingApproval(admin, sql)
    const id = approval.id as string
    expect((await admin.post(`/approvals/${id}/approve`, {})).status).toBe(200)
    const resent = await submit()
    expect(resent).toMatchObject({ status: 200, body: { data: [['3', '****']] } })
    // However old that claim grows, it was no lease: the held handle answers with the resend's run.
    await ageClaim(gw.store, id)
    expect(await api('GET', held.body.statementStatusUrl as string)).toMatchObject({ status: 200, body: { data: [['3', '****']], statementHandle: resent.body.statementHandle } })
    expect(sent.filter((s) => s === sql)).toHaveLength(1)
  })
})

describe('BigQuery: a claim whose replica stopped before inserting the job', { timeout: 240_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let gw: HeldGateway
  let dir: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-claim-lost-bq-'))
    await writeFile(join(dir, 'policy.yaml'), HELD_CUSTOMER_READS_POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    gw = await startHeldGateway({ idp, policiesDirectory: dir, connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  })
  afterAll(async () => {
    await gw?.close()
    await idp?.close()
    await emulator?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const client = (): BigQuery => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: agent })
    return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: gw.url, authClient })
  }
  const approvedAndDead = async (sql: string): Promise<{ jobId: string, location?: string, id: string }> => {
    const [job] = await client().createQueryJob({ query: sql })
    let id: string | undefined
    while (id === undefined) {
      const list = await gw.admin(carol, 'GET', '/approvals?status=pending')
      id = (list.json.items as Array<{ id: string, sql: string }>).find((x) => x.sql === sql)?.id
      if (id === undefined) await sleep(100)
    }
    expect((await gw.admin(carol, 'POST', `/approvals/${id}/approve`, {})).json.result).toBe('approved')
    await claimAndDie(gw.store, id)
    return { jobId: job.id as string, ...(job.location !== undefined && { location: job.location }), id }
  }
  const admittedUnder = async (id: string): Promise<number> =>
    Number((await gw.store.query<{ n: string }>("select count(*) as n from session_events where approval_id = $1 and phase = 'admitted'", [id]))[0]?.n)
  const state = async (jobId: string, location?: string): Promise<string> =>
    ((await client().job(jobId, { location }).getMetadata())[0] as { status: { state: string } }).status.state

  it('reads RUNNING within the lease; after it, the next poll takes the claim over and runs the job once', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const { jobId, location, id } = await approvedAndDead(sql)
    expect(await state(jobId, location)).toBe('RUNNING')
    await ageClaim(gw.store, id)
    const [rows] = await client().job(jobId, { location }).getQueryResults()
    expect(rows).toEqual([{ id: 1, email: '****' }])
    expect((await gw.admin(carol, 'GET', `/approvals/${id}`)).json).toMatchObject({ status: 'executed', claimedBy: gw.replica })
    expect(await admittedUnder(id)).toBe(1)
  })

  it('when the claimer did insert the job before it stopped, the takeover serves that job and runs nothing again', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 2`
    const { jobId, location, id } = await approvedAndDead(sql)
    // The dead replica's insert reached the warehouse: the job exists upstream under its id.
    const upstream = await fetch(`${emulator.url}/bigquery/v2/projects/${SEED_PROJECT}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobReference: { projectId: SEED_PROJECT, jobId, ...(location !== undefined && { location }) }, configuration: { query: { query: sql, useLegacySql: false } } })
    })
    expect(upstream.status).toBe(200)
    await ageClaim(gw.store, id)
    const [rows] = await client().job(jobId, { location }).getQueryResults()
    expect(rows).toEqual([{ id: 2, email: '****' }])
    // BigQuery refused the second insert of the id: still exactly one job under it upstream.
    const listed = await fetch(`${emulator.url}/bigquery/v2/projects/${SEED_PROJECT}/jobs?allUsers=true`)
    const jobs = ((await listed.json()) as { jobs?: Array<{ jobReference: { jobId: string } }> }).jobs ?? []
    expect(jobs.filter((j) => j.jobReference.jobId === jobId)).toHaveLength(1)
  })
})
