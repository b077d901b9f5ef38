// Two gateways on one Postgres database (the replicas of one deployment): a query held through
// one is approved through the other's admin API and its result polled through that other
// replica; with both replicas polling the same approved job at once, the approval is claimed
// once and the statement admitted (so run upstream) once, and both pollers get its masked rows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'
import { HELD_CUSTOMER_READS_POLICY, startHeldGateway, type HeldGateway } from './held-gateway.js'

describe('a held BigQuery job across two replicas on one store', { timeout: 240_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let db: ThrowawayDatabase
  let a: HeldGateway
  let b: HeldGateway
  let dir: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-replicas-'))
    await writeFile(join(dir, 'policy.yaml'), HELD_CUSTOMER_READS_POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    db = await createThrowawayDatabase()
    const options = { idp, policiesDirectory: dir, databaseUrl: db.url, connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } }
    a = await startHeldGateway(options)
    b = await startHeldGateway(options)
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  }, 120_000) // the emulators are Python processes: their start alone can take most of a minute on a busy machine
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await idp?.close()
    await emulator?.close()
    await db?.drop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const client = (gateway: HeldGateway): BigQuery => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: agent })
    return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: gateway.url, authClient })
  }
  const pendingFor = async (sql: string): Promise<string> => {
    for (;;) {
      const list = await a.admin(carol, 'GET', '/approvals?status=pending')
      const found = (list.json.items as Array<{ id: string, sql: string }>).find((x) => x.sql === sql)
      if (found !== undefined) return found.id
      await sleep(100)
    }
  }
  /** Admitted events under the approval: each precedes the one upstream run it admits. */
  const admittedUnder = async (id: string): Promise<number> =>
    Number((await a.store.query<{ n: string }>("select count(*) as n from session_events where approval_id = $1 and phase = 'admitted'", [id]))[0]?.n)

  it('held through A, approved through B, its result polled through B', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const [job] = await client(a).createQueryJob({ query: sql })
    const id = await pendingFor(sql)
    expect((await b.admin(carol, 'POST', `/approvals/${id}/approve`, {})).json.result).toBe('approved')
    const [rows] = await client(b).job(job.id as string, { location: job.location }).getQueryResults()
    expect(rows).toEqual([{ id: 1, email: '****' }])
    const approval = (await a.admin(carol, 'GET', `/approvals/${id}`)).json
    expect(approval).toMatchObject({ status: 'executed', claimedBy: b.replica })
    expect(await admittedUnder(id)).toBe(1)
  })

  it('both replicas polling the approved job at once: claimed once, run once, both get the rows', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 2`
    const [job] = await client(a).createQueryJob({ query: sql })
    const id = await pendingFor(sql)
    await a.admin(carol, 'POST', `/approvals/${id}/approve`, {})
    const poll = async (gateway: HeldGateway): Promise<unknown> => (await client(gateway).job(job.id as string, { location: job.location }).getQueryResults())[0]
    const [onA, onB, againA, againB] = await Promise.all([poll(a), poll(b), poll(a), poll(b)])
    for (const rows of [onA, onB, againA, againB]) expect(rows).toEqual([{ id: 2, email: '****' }])
    const approval = (await a.admin(carol, 'GET', `/approvals/${id}`)).json
    expect(approval.status).toBe('executed')
    expect([a.replica, b.replica]).toContain(approval.claimedBy)
    expect(await admittedUnder(id)).toBe(1)
  })
})
