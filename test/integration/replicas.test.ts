// The replica harness itself: two real gateway processes on one Postgres behind the round-robin
// proxy, with fakesnow upstream and a real OIDC provider. Proves what the multi-replica suites
// rely on: consecutive requests of one client alternate between replicas, both replicas share
// one audit trail, and killing one leaves the other answering (and a restart brings it back).
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { procMemory } from '../support/proc-stats.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'

interface Answer { status: number, requestId: string, body: Record<string, any> }

describe('two gateway replicas on one Postgres behind a round-robin proxy', { timeout: 120_000 }, () => {
  let fakesnow: Fakesnow
  let idp: TestIdp
  let cluster: ReplicaCluster
  let alice: string
  let auditor: string

  async function call (base: string, method: 'GET' | 'POST', path: string, token: string, body?: unknown): Promise<Answer> {
    const res = await request(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await res.body.text()
    return { status: res.statusCode, requestId: String(res.headers['x-request-id']), body: text === '' ? {} : JSON.parse(text) as Record<string, any> }
  }

  const statement = async (sql: string, base = cluster.url): Promise<Answer> =>
    await call(base, 'POST', '/api/v2/statements', alice, { statement: sql, database: SEED_DATABASE, schema: SEED_SCHEMA })

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    idp = await startTestIdp()
    cluster = await startReplicas({
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], security: ['auditor'] } },
        connections: {
          fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE, schema: SEED_SCHEMA }
        }
      }
    })
    alice = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    auditor = await idp.userToken({ subject: 'carol', groups: ['security'] })
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    await cluster?.close()
    await idp?.close()
    await fakesnow?.close()
  })

  it('runs two separate gateway processes, each ready on its own port', async () => {
    expect(cluster.replicas).toHaveLength(2)
    const [a, b] = cluster.replicas
    expect(a?.pid).not.toBe(b?.pid)
    expect(a?.pid).not.toBe(process.pid)
    for (const r of cluster.replicas) {
      expect((await request(`${r.url}/readyz`)).statusCode).toBe(200)
      // A real process with a real heap: the high-water mark is at least what it holds now, both
      // read at one instant (two reads apart, the process can grow a page between them).
      expect(r.rssBytes()).toBeGreaterThan(10 * 1024 * 1024)
      const memory = procMemory(r.pid)
      expect(memory.peakRssBytes).toBeGreaterThanOrEqual(memory.rssBytes)
      expect(r.cpuMs()).toBeGreaterThan(0)
    }
  })

  it('sends consecutive statements of one client to alternating replicas, all answered', async () => {
    const before = cluster.proxy.log.length
    for (let i = 0; i < 4; i++) {
      const res = await statement('SELECT ID, NAME FROM CUSTOMERS ORDER BY ID')
      expect(res.status).toBe(200)
      expect(res.body.data).toEqual(CUSTOMERS.map((c) => [String(c.id), c.name]))
    }
    const served = cluster.proxy.log.slice(before).map((e) => e.replica)
    expect(served).toEqual([served[0], 1 - (served[0] ?? 0), served[0], 1 - (served[0] ?? 0)])
    expect(cluster.proxy.log.slice(before).every((e) => e.method === 'POST' && e.path === '/api/v2/statements' && e.status === 200)).toBe(true)
  })

  it('keeps the client\'s Host: URLs the gateway builds from it point back at the proxy', async () => {
    // The BigQuery discovery document names its root URL after the Host the request carried.
    const res = await request(`${cluster.url}/discovery/v1/apis/bigquery/v2/rest`)
    expect(res.statusCode).toBe(200)
    const doc = await res.body.json() as { rootUrl: string }
    expect(doc.rootUrl).toBe(`${cluster.url}/`)
    expect(cluster.replicas.some((r) => doc.rootUrl.includes(String(r.port)))).toBe(false)
  })

  it('shares one audit trail: an event written by one replica is listed by the other', async () => {
    cluster.proxy.setNext(0)
    const res = await statement('SELECT NAME FROM CUSTOMERS WHERE ID = 2')
    expect(res.status).toBe(200)
    expect(cluster.proxy.log.at(-1)).toMatchObject({ replica: 0, status: 200 })

    const other = cluster.replicas[1]!
    let items: Array<Record<string, unknown>> = []
    // The event is committed before the answer is released; the poll only absorbs a slow store.
    for (let i = 0; i < 20 && items.length === 0; i++) {
      const listed = await call(other.url, 'GET', `/admin/v1/events?requestId=${res.requestId}`, auditor)
      expect(listed.status).toBe(200)
      items = (listed.body.items as Array<Record<string, unknown>>).filter((e) => e.phase !== 'admitted')
      if (items.length === 0) await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect(items).toHaveLength(1)
    expect(items[0]).toMatchObject({ requestId: res.requestId, sqlText: 'SELECT NAME FROM CUSTOMERS WHERE ID = 2', principalSubject: 'alice', outcome: 'ok' })
  })

  it('keeps answering through the other replica when one is killed, and takes it back after a restart', async () => {
    const [first, second] = cluster.replicas as [NonNullable<typeof cluster.replicas[0]>, NonNullable<typeof cluster.replicas[1]>]
    await first.kill()
    expect(first.running).toBe(false)
    const before = cluster.proxy.log.length
    for (let i = 0; i < 4; i++) {
      const res = await statement('SELECT COUNT(*) AS N FROM CUSTOMERS')
      expect(res.status).toBe(200)
      expect(res.body.data).toEqual([['3']])
    }
    expect(cluster.proxy.log.slice(before).map((e) => e.replica)).toEqual([1, 1, 1, 1])
    expect(second.running).toBe(true)

    await first.restart()
    const after = cluster.proxy.log.length
    for (let i = 0; i < 2; i++) expect((await statement('SELECT 1 AS ONE')).status).toBe(200)
    expect(new Set(cluster.proxy.log.slice(after).map((e) => e.replica))).toEqual(new Set([0, 1]))
  })
})
