// A held BigQuery job across two real gateway processes on one Postgres (test/support/
// replicas.ts), with bqemulator upstream and the unchanged @google-cloud/bigquery client: held
// through replica A, approved through B's admin API, its result polled through B; polls racing
// on both processes after the approval run the job exactly once (an INSERT, its rows counted
// upstream, and one admitted event in the shared store).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'
import { adminOf, pendingApproval, type Admin } from './snowflake-fixtures.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const POLICY = `
version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.customers'] }
    approval: { approvers: { roles: [approver] } }
  - id: hold-customer-writes
    effect: require_approval
    match: { roles: [agent], kinds: [insert], tables: ['${T}.customers'] }
    approval: { approvers: { roles: [approver] } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

describe('a held BigQuery job across two gateway processes on one Postgres', { timeout: 300_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let cluster: ReplicaCluster
  let store: Store
  let dir: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-bq-processes-'))
    await writeFile(join(dir, 'policy.yaml'), POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    cluster = await startReplicas({
      policiesDir: dir,
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'] } },
        connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
        approvals: { enabled: true }
      }
    })
    store = openPostgresStore({ url: cluster.storeUrl as string, poolSize: 2 })
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  }, 600_000)
  afterAll(async () => {
    await store?.close()
    await cluster?.close()
    await idp?.close()
    await emulator?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  }, 120_000) // the emulators are Python processes: their start alone can take most of a minute on a busy machine

  const replica = (i: number): string => cluster.replicas[i]!.url
  const client = (i: number): BigQuery => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: agent })
    return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: replica(i), authClient })
  }
  const admin = (i: number): Admin => adminOf(replica(i), carol)
  const admittedUnder = async (id: string): Promise<number> =>
    Number((await store.query<{ n: string }>("select count(*) as n from session_events where approval_id = $1 and phase = 'admitted'", [id]))[0]?.n)
  /** Straight at the warehouse, past the gateway: what actually ran there. */
  const upstreamCount = async (where: string): Promise<number> => {
    const res = await fetch(`${emulator.url}/bigquery/v2/projects/${SEED_PROJECT}/queries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `SELECT COUNT(*) AS n FROM ${SEED_DATASET}.customers WHERE ${where}`, useLegacySql: false })
    })
    const body = await res.json() as { rows?: Array<{ f: Array<{ v: string }> }> }
    return Number(body.rows?.[0]?.f[0]?.v)
  }

  it('held through A, approved through B, its masked result polled through B', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const [job] = await client(0).createQueryJob({ query: sql })
    const approval = await pendingApproval(admin(0), sql)
    const id = approval.id as string
    // Still pending, whichever process is asked.
    for (const i of [0, 1]) expect((await client(i).job(job.id as string, { location: job.location }).getMetadata())[0].status.state).toBe('PENDING')
    expect((await admin(1).post(`/approvals/${id}/approve`, {})).body.result).toBe('approved')
    const [rows] = await client(1).job(job.id as string, { location: job.location }).getQueryResults()
    expect(rows).toEqual([{ id: 1, email: '****' }])
    const after = (await admin(0).get(`/approvals/${id}`)).body
    expect(after.status).toBe('executed')
    expect(await admittedUnder(id)).toBe(1)
  })

  it('polls racing on both processes after the approval run the job exactly once', async () => {
    const sql = `INSERT INTO ${SEED_DATASET}.customers (id, name) VALUES (100, 'Racing Poll')`
    expect(await upstreamCount('id = 100')).toBe(0)
    const [job] = await client(0).createQueryJob({ query: sql })
    const approval = await pendingApproval(admin(1), sql)
    const id = approval.id as string
    await admin(1).post(`/approvals/${id}/approve`, {})
    const poll = async (i: number): Promise<unknown> => (await client(i).job(job.id as string, { location: job.location }).getQueryResults())[0]
    const answers = await Promise.all([0, 1, 0, 1].map(poll))
    for (const rows of answers) expect(rows).toEqual([])
    expect(await upstreamCount('id = 100')).toBe(1)
    expect(await admittedUnder(id)).toBe(1)
    expect((await admin(0).get(`/approvals/${id}`)).body.status).toBe('executed')
  })
})
