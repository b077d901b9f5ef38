// Two gateways on one Postgres database with the same secrets.key, in this process: a statement
// submitted on A is polled, paged, downloaded and cancelled on B, which holds nothing of it but
// its store row. The upstream stub serves the result as an inline page plus chunks in "cloud
// storage" (SSE-C qrmk), so every later page B serves is fetched upstream and masked by B.
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreStatementHandles } from '../../src/state/statement-handles.js'
import { idEmailArrow } from '../support/snowflake-arrow.js'
import { maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk } from '../support/snowflake-node-client.js'
import { pythonAvailable, runPython } from '../support/snowflake-python.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38, nullable: false }, { name: 'EMAIL', type: 'text', nullable: true }]
const KEY = 'two-gateways-test-shared-secret-key-0123456789'
const email = (n: number): string => `user${n}@example.com`
const jsonRows = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify([String(from + i), email(from + i)])).join(',')
const ids = (rows: unknown[][]): number[] => rows.map((r) => Number(r[0]))

type Json = Record<string, unknown>

describe('two gateways on one store: submit on A, poll / partition / chunk / cancel on B', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let flaky: UpstreamStub
  let a: SnowflakeGateway
  let b: SnowflakeGateway
  let headers: Record<string, string>

  const call = async (gw: SnowflakeGateway, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
    const res = await request(`${gw.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() as Json }
  }
  const until = async (gw: SnowflakeGateway, path: string): Promise<{ status: number, body: Json }> => {
    for (let i = 0; i < 200; i++) {
      const res = await call(gw, 'GET', path)
      if (res.status !== 202) return res
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error(`${path} still running`)
  }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    flaky = await startUpstreamStub()
    flaky.statements.set('SELECT 1', { rowtype: ROWTYPE, rowset: [['1', email(1)]] })
    // 11 rows: two inline, then three chunks of three, each downloaded with the qrmk.
    const people = { rowtype: ROWTYPE, rowset: [['1', email(1)], ['2', email(2)]], chunks: [3, 6, 9].map((n) => ({ body: jsonRows(n, n + 2), rowCount: 3 })) }
    stub.statements.set('SELECT PEOPLE', people)
    stub.statements.set('SELECT PEOPLE SLOWLY', { ...people, pollsBeforeResult: 6 })
    stub.statements.set('SELECT PEOPLE ARROW', {
      rowtype: ROWTYPE,
      rowsetBase64: Buffer.from(idEmailArrow([[1n, email(1)]])).toString('base64'),
      chunks: [{ body: Buffer.from(idEmailArrow([[2n, email(2)], [3n, email(3)]])), rowCount: 2 }, { body: Buffer.from(idEmailArrow([[4n, null]])), rowCount: 1 }]
    })
    stub.statements.set('SELECT NEVER', { rowtype: ROWTYPE, rowset: [], pollsBeforeResult: 1_000_000 })
    const connections = {
      stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 0.2 },
      // Goes away after a first statement: its pooled session then meets a refused connection.
      gone: { kind: 'snowflake', url: flaky.url, account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 0.2 }
    }
    const stages = { mask: maskColumns(['EMAIL']) }
    a = await startSnowflakeGateway({ connections, stages, secretsKey: KEY })
    b = await startSnowflakeGateway({ connections, stages, secretsKey: KEY, store: a.store, idp: a.idp })
    headers = { authorization: `Bearer ${await a.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => {
    await b?.close()
    await a?.close()
    await stub?.close()
    await flaky?.close().catch(() => undefined)
  })

  it('SQL API: async on A, polled on B, every partition served by B from the upstream and masked', async () => {
    const submitted = await call(a, 'POST', '/api/v2/statements?async=true', { statement: 'SELECT PEOPLE SLOWLY' })
    expect(submitted.status).toBe(202)
    const url = String(submitted.body.statementStatusUrl)
    const first = await until(b, url)
    expect(first.status).toBe(200)
    const meta = first.body.resultSetMetaData as { numRows: number, partitionInfo: Array<{ rowCount: number }> }
    // The upstream's own pages: its inline rows, then each chunk; counts from its manifest.
    expect(meta.numRows).toBe(11)
    expect(meta.partitionInfo.map((p) => p.rowCount)).toEqual([2, 3, 3, 3])
    const resultRequests = stub.requests.filter((r) => r.startsWith('GET /queries/')).length
    const rows = [...first.body.data as unknown[][]]
    for (let p = 1; p < 4; p++) {
      const page = await call(b, 'GET', `${url}?partition=${p}`)
      expect(page.status).toBe(200)
      expect(page.body.data).toHaveLength(3)
      rows.push(...page.body.data as unknown[][])
    }
    expect(ids(rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    expect(rows.every((r) => r[1] === '****')).toBe(true)
    // B had no chunk URLs of its own: it asked the upstream for the result again, by query id.
    expect(stub.requests.filter((r) => r.startsWith('GET /queries/')).length).toBeGreaterThan(resultRequests)
    // A serves the same partitions (from the chunk list it kept when it ran the statement).
    expect((await call(a, 'GET', `${url}?partition=3`)).body.data).toEqual([['9', '****'], ['10', '****'], ['11', '****']])
  })

  it('SQL API: a cancel on B stops the statement running on A, upstream too', async () => {
    const submitted = await call(a, 'POST', '/api/v2/statements?async=true', { statement: 'SELECT NEVER' })
    const handle = String(submitted.body.statementHandle)
    const cancel = await call(b, 'POST', `/api/v2/statements/${handle}/cancel`)
    expect(cancel).toMatchObject({ status: 200, body: { statementHandle: handle, message: 'successfully canceled' } })
    expect(await call(b, 'GET', `/api/v2/statements/${handle}`)).toMatchObject({ status: 422, body: { code: '000604' } })
    expect(await call(a, 'GET', `/api/v2/statements/${handle}`)).toMatchObject({ status: 422, body: { code: '000604' } })
    // A's runner reads the flag on its next heartbeat and tells the warehouse to stop.
    const upstreamId = stub.queryLog.filter((q) => q.sqlText === 'SELECT NEVER').at(-1)?.queryId
    for (let i = 0; i < 100 && !stub.requests.includes(`POST /queries/${upstreamId ?? ''}/abort-request`); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(stub.requests).toContain(`POST /queries/${upstreamId ?? ''}/abort-request`)
    // Another principal's cancel, and its poll, find nothing.
    const bob = { ...headers, authorization: `Bearer ${await a.token('bob')}` }
    const res = await request(`${b.url}/api/v2/statements/${handle}`, { headers: bob })
    expect(res.statusCode).toBe(404)
    await res.body.dump()
  })

  it('connector: chunks of a query run on A are downloaded from B with A\'s chunk token', async () => {
    const post = async (path: string, body: unknown, auth?: string): Promise<Json> => {
      const res = await request(`${a.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Snowflake Token="${auth}"` }) },
        body: JSON.stringify(body)
      })
      return await res.body.json() as Json
    }
    const login = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await a.token('alice') } })
    const token = String((login.data as Json).token)
    const res = await post('/queries/v1/query-request', { sqlText: 'SELECT PEOPLE' }, token)
    const data = res.data as { rowset: unknown[][], total: number, chunks: Array<{ url: string, rowCount: number }>, chunkHeaders: Record<string, string> }
    expect(data.total).toBe(11)
    expect(data.rowset).toEqual([['1', '****'], ['2', '****']])
    expect(data.chunks.map((c) => c.rowCount)).toEqual([3, 3, 3])
    const rows: unknown[][] = [...data.rowset]
    for (const chunk of data.chunks) {
      const onB = chunk.url.replace(a.url, b.url)
      expect(onB.startsWith(b.url)).toBe(true)
      const got = await request(onB, { headers: data.chunkHeaders })
      expect(got.statusCode).toBe(200)
      rows.push(...JSON.parse(`[${await got.body.text()}]`) as unknown[][])
    }
    expect(ids(rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    expect(rows.every((r) => r[1] === '****')).toBe(true)
    // A forged token opens nothing on either replica.
    const forged = await request(data.chunks[0]!.url.replace(a.url, b.url), { headers: { 'x-sluice-chunk-token': `${Math.floor(Date.now() / 1000) + 60}.forged` } })
    expect(forged.statusCode).toBe(403)
    await forged.body.dump()
    // B recorded the download under the statement's owner.
    const events = await b.app.recorder.listEvents({ limit: 1000 })
    expect(events.filter((e) => e.route === '/sluice/snowflake/chunks/:id/:n' && e.principalSubject === 'alice').length).toBeGreaterThanOrEqual(3)
  })

  it('snowflake-sdk reads a chunked result, every page masked', async () => {
    const conn = await connectSdk({ accessUrl: a.url, token: await a.token('alice') })
    try {
      const { rows } = await runSdk(conn, 'SELECT PEOPLE')
      expect(rows.map((r) => r.ID)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
      expect(rows.every((r) => r.EMAIL === '****')).toBe(true)
    } finally {
      await destroySdk(conn)
    }
  })

  it.skipIf(!pythonAvailable())('the Python connector reads chunked Arrow and JSON results, every page masked', async () => {
    const out = await runPython('test/snowflake/python/chunks_client.py', { port: a.port, token: await a.token('alice'), queries: { arrow: 'SELECT PEOPLE ARROW', json: 'SELECT PEOPLE' } })
    expect(out.arrow).toEqual({ format: 'arrow', rows: [['1', '****'], ['2', '****'], ['3', '****'], ['4', null]] })
    const json = out.json as { rows: unknown[][] }
    expect(ids(json.rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    expect(json.rows.every((r) => r[1] === '****')).toBe(true)
  })

  it('a statement whose replica stopped heartbeating is a clear failure, stored once', async () => {
    const handles = new StoreStatementHandles(a.store)
    const id = '0b9e4f1c-6a1d-4c7e-9f00-2b3c4d5e6f70'
    const owner = createHash('sha256').update(`${a.idp.issuer}\nalice`).digest('hex')
    await handles.create({ id, owner, connection: 'stubbed', sql: 'SELECT PEOPLE', replica: 'a-replica-that-died' }, 3600)
    await a.store.query(`update statement_handles set heartbeat_at = now() - interval '1 minute' where id = $1::uuid`, [id])
    const lost = await call(b, 'GET', `/api/v2/statements/${id}`)
    expect(lost.status).toBe(422)
    expect(lost.body).toMatchObject({ statementHandle: id, code: '000603' })
    expect(String(lost.body.message)).toContain(`the gateway replica running statement ${id} stopped; run it again`)
    expect((await handles.get(id, owner))?.state).toBe('failed')
    expect((await call(a, 'GET', `/api/v2/statements/${id}`)).body).toMatchObject({ code: '000603', message: lost.body.message })
  })

  it('a replica that shuts down marks its running statements lost, which the other answers at once', async () => {
    const c = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 0.2 } },
      stages: { mask: maskColumns(['EMAIL']) },
      secretsKey: KEY,
      store: a.store,
      idp: a.idp
    })
    const submitted = await call(c, 'POST', '/api/v2/statements?async=true', { statement: 'SELECT NEVER' })
    await c.close()
    const after = await call(b, 'GET', String(submitted.body.statementStatusUrl))
    expect(after).toMatchObject({ status: 422, body: { code: '000603' } })
    expect(String(after.body.message)).toContain('stopped; run it again')
  })

  it('an unreachable upstream fails an async statement once: polls answer the failure, not 503', async () => {
    // A first statement leaves an upstream session in A's pool; then the warehouse goes away.
    expect((await call(a, 'POST', '/snowflake/gone/api/v2/statements', { statement: 'SELECT 1' })).status).toBe(200)
    await flaky.close()
    const submitted = await call(a, 'POST', '/snowflake/gone/api/v2/statements?async=true', { statement: 'SELECT 1' })
    expect(submitted.status).toBe(202)
    for (const gw of [b, a, b]) {
      const polled = await until(gw, String(submitted.body.statementStatusUrl))
      expect(polled.status).toBe(422)
      expect(polled.body).toMatchObject({ code: '000603', statementHandle: submitted.body.statementHandle })
      expect(String(polled.body.message)).toMatch(/warehouse connection gone is unreachable, nothing was executed/)
    }
    // Submitted synchronously, the same failure is the retryable 503 the clients retry.
    const sync = await request(`${a.url}/snowflake/gone/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: 'SELECT 1' }) })
    expect(sync.statusCode).toBe(503)
    await sync.body.dump()
  })
})
