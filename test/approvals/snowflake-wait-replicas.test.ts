// A held Snowflake statement across two real gateway processes on one Postgres (test/support/
// replicas.ts), with fakesnow upstream: approved through one replica, the client's polls through
// the other get the result; polls racing on both replicas after the approval run the statement
// exactly once (an INSERT, counted upstream); snowflake-sdk through the round-robin proxy waits
// across replicas and gets its masked rows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'
import { connectSdk, destroySdk, runSdk } from '../support/snowflake-node-client.js'
import { HOLD_POLICY, adminOf, pendingApproval } from './snowflake-fixtures.js'

type Json = Record<string, any>

describe('a held Snowflake statement across two replicas on one Postgres', { timeout: 180_000 }, () => {
  let fakesnow: Fakesnow
  let idp: TestIdp
  let cluster: ReplicaCluster
  let dir: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-replicas-'))
    await writeFile(join(dir, 'policy.yaml'), HOLD_POLICY)
    fakesnow = await startFakesnow()
    idp = await startTestIdp()
    cluster = await startReplicas({
      policiesDir: dir,
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'] } },
        connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, syncWaitSeconds: 1 } },
        approvals: { enabled: true }
      }
    })
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  }, 600_000)

  afterAll(async () => {
    await cluster?.close()
    await idp?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const call = async (base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
    const res = await request(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
    return { status: res.statusCode, body: await res.body.json() as Json }
  }
  /** Polls one replica until the statement is no longer in progress. */
  const until = async (base: string, path: string): Promise<{ status: number, body: Json }> => {
    for (;;) {
      const res = await call(base, 'GET', path)
      if (res.status !== 202) return res
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const replica = (i: number): string => cluster.replicas[i]!.url

  it('approved through one replica, polled through the other: the result, from a statement run once while polls race', async () => {
    const sql = 'INSERT INTO ORDERS (ID, CUSTOMER_ID, AMOUNT) VALUES (?, 3, 9.99)'
    const held = await call(replica(0), 'POST', '/api/v2/statements', { statement: sql, bindings: { 1: { type: 'FIXED', value: '100' } }, database: SEED_DATABASE, schema: SEED_SCHEMA })
    expect(held.status).toBe(202)
    const url = held.body.statementStatusUrl as string
    // Still waiting, whichever replica is asked.
    for (const i of [0, 1]) expect(await call(replica(i), 'GET', url)).toMatchObject({ status: 202, body: { message: expect.stringMatching(/^waiting for approval .* \(rule hold-order-writes\)$/) } })

    const admin = adminOf(replica(1), carol)
    const approval = await pendingApproval(admin, sql)
    expect((await admin.post(`/approvals/${approval.id as string}/approve`, { reason: 'backfill' })).status).toBe(200)
    // Both replicas polled at once, twice each: one claims and runs it, the others serve that run.
    const answers = await Promise.all([0, 1, 0, 1].map(async (i) => await until(replica(i), url)))
    for (const a of answers) expect(a).toMatchObject({ status: 200, body: { statementHandle: held.body.statementHandle } })
    const count = await call(replica(0), 'POST', '/api/v2/statements', { statement: 'SELECT COUNT(*) AS N FROM ORDERS WHERE ID = 100', database: SEED_DATABASE, schema: SEED_SCHEMA })
    expect(count).toMatchObject({ status: 200, body: { data: [['1']] } })
    expect((await admin.get(`/approvals/${approval.id as string}`)).body.status).toBe('executed')
  })

  it('snowflake-sdk through the round-robin proxy waits across replicas and gets its masked rows', async () => {
    const sdk = await connectSdk({ accessUrl: cluster.url, token: agent, database: SEED_DATABASE, schema: SEED_SCHEMA })
    try {
      const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 1'
      const from = cluster.proxy.log.length
      const running = runSdk(sdk, sql)
      const admin = adminOf(replica(0), carol)
      const approval = await pendingApproval(admin, sql)
      // Let polls of the waiting statement reach both replicas before anyone decides.
      while (new Set(cluster.proxy.log.slice(from).filter((e) => e.path.startsWith('/queries/') && e.path.includes('/result')).map((e) => e.replica)).size < 2) {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await admin.post(`/approvals/${approval.id as string}/approve`, {})
      const { rows } = await running
      expect(rows).toEqual([{ ID: 1, EMAIL: '****' }])
    } finally {
      await destroySdk(sdk)
    }
  })
})
