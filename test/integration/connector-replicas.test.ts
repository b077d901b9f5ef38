// snowflake-sdk through two real gateway processes on one Postgres behind the round-robin
// proxy (test/support/replicas.ts), fakesnow upstream: the login lands on one replica and the
// session's statements alternate between both, on the one upstream session the login opened
// (its temporary tables are there on either replica); an expired Sluice session token is
// renewed on one replica and the retried statement answered by the other; a logout on one is
// refused by the other.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { runPython } from '../support/snowflake-python.js'

// Session state is the point here: this client may keep a temporary table in its session.
const POLICY = `version: 1
rules:
  - id: agents-session-work
    effect: allow
    match:
      roles: [agent]
      kinds: [select, insert, ddl]
`

describe('snowflake-sdk through two gateway replicas behind a round-robin proxy', { timeout: 180_000 }, () => {
  let fakesnow: Fakesnow
  let idp: TestIdp
  let cluster: ReplicaCluster
  let sql: postgres.Sql
  let conn: SdkConnection
  let policies: string

  /** The replicas that answered requests to `path` since log entry `from`. */
  const servedBy = (from: number, path: string): number[] =>
    cluster.proxy.log.slice(from).filter((e) => e.path.split('?')[0] === path).map((e) => e.replica)

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    idp = await startTestIdp()
    policies = await mkdtemp(join(tmpdir(), 'sluice-replica-policies-'))
    await writeFile(join(policies, 'sessions.yaml'), POLICY)
    cluster = await startReplicas({
      policiesDir: policies,
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
        connections: {
          fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE, schema: SEED_SCHEMA }
        }
      }
    })
    if (cluster.storeUrl === undefined) throw new Error('the replicas run on a Postgres store')
    sql = postgres(cluster.storeUrl, { max: 1, onnotice: () => {} })
    cluster.proxy.setNext(0)
    conn = await connectSdk({ accessUrl: cluster.url, token: await idp.userToken({ subject: 'alice', groups: ['ai-agents'] }), database: SEED_DATABASE, schema: SEED_SCHEMA })
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    if (conn !== undefined) await destroySdk(conn)
    await sql?.end({ timeout: 5 })
    await cluster?.close()
    await idp?.close()
    await fakesnow?.close()
    if (policies !== undefined) await rm(policies, { recursive: true, force: true })
  })

  it('logs in on one replica and runs the session\'s statements on both, on the upstream session of the login', async () => {
    expect(servedBy(0, '/session/v1/login-request')).toEqual([0])
    const from = cluster.proxy.log.length
    await runSdk(conn, 'CREATE TEMPORARY TABLE SESSION_NOTES (N INTEGER)')
    await runSdk(conn, 'INSERT INTO SESSION_NOTES VALUES (1), (2)')
    const { rows } = await runSdk(conn, 'SELECT SUM(N) AS TOTAL FROM SESSION_NOTES')
    expect(rows).toEqual([{ TOTAL: 3 }])
    const { rows: customers } = await runSdk(conn, 'SELECT COUNT(*) AS N FROM CUSTOMERS')
    expect(customers).toEqual([{ N: 3 }])
    // Both replicas ran statements; the temporary table lives in one upstream session, so both
    // ran them on the login's.
    expect(new Set(servedBy(from, '/queries/v1/query-request'))).toEqual(new Set([0, 1]))
    const [row] = await sql<Array<{ n: string }>>`select count(*)::text as n from connector_sessions`
    expect(row?.n).toBe('1')
  })

  it('renews an expired Sluice session token on one replica and retries on the other, unnoticed by the script', async () => {
    await sql`update connector_sessions set token_expires_at = now() - interval '1 second'`
    const from = cluster.proxy.log.length
    const { rows } = await runSdk(conn, 'SELECT SUM(N) AS TOTAL FROM SESSION_NOTES')
    expect(rows).toEqual([{ TOTAL: 3 }])
    const renewals = servedBy(from, '/session/token-request')
    expect(renewals).toHaveLength(1)
    const queries = servedBy(from, '/queries/v1/query-request')
    // Refused (390112) on one replica, renewed on the other, retried on the first.
    expect(queries).toHaveLength(2)
    expect(queries[0]).toBe(queries[1])
    expect(renewals[0]).not.toBe(queries[0])
    // And the renewed token works on both replicas.
    const after = cluster.proxy.log.length
    for (let i = 0; i < 2; i++) expect((await runSdk(conn, 'SELECT 1 AS ONE')).rows).toEqual([{ ONE: 1 }])
    expect(new Set(servedBy(after, '/queries/v1/query-request'))).toEqual(new Set([0, 1]))
  })

  it('serves the Python connector the same way: one login, its statements on both replicas', async () => {
    const from = cluster.proxy.log.length
    const out = await runPython('test/snowflake/python/replicas_client.py', {
      port: cluster.proxy.port, token: await idp.userToken({ subject: 'carol', groups: ['ai-agents'] })
    })
    expect(out.rows).toEqual([['1', 'one'], ['2', 'two']])
    expect(Number(out.total)).toBe(3)
    expect(servedBy(from, '/session/v1/login-request')).toHaveLength(1)
    expect(new Set(servedBy(from, '/queries/v1/query-request'))).toEqual(new Set([0, 1]))
    // The client logged out on close: its session is gone for both replicas.
    const [row] = await sql<Array<{ n: string }>>`select count(*)::text as n from connector_sessions where principal->>'subject' = 'carol'`
    expect(row?.n).toBe('0')
  })

  it('refuses on one replica a session logged out on the other', async () => {
    const post = async (path: string, body: unknown, token?: string): Promise<Record<string, unknown>> => {
      const res = await request(`${cluster.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Snowflake Token="${token}"` }) },
        body: JSON.stringify(body)
      })
      return await res.body.json() as Record<string, unknown>
    }
    const login = await post('/session/v1/login-request', { data: { AUTHENTICATOR: 'OAUTH', TOKEN: await idp.userToken({ subject: 'bob', groups: ['ai-agents'] }) } })
    const token = String((login.data as Record<string, unknown>).token)
    const from = cluster.proxy.log.length
    expect(await post('/queries/v1/query-request', { sqlText: 'SELECT 1' }, token)).toMatchObject({ success: true })
    expect(await post('/session?delete=true', {}, token)).toMatchObject({ success: true })
    expect(await post('/queries/v1/query-request', { sqlText: 'SELECT 1' }, token)).toMatchObject({ success: false, code: '390104' })
    const served = cluster.proxy.log.slice(from).map((e) => e.replica)
    expect(served[1]).not.toBe(served[2])
  })
})
