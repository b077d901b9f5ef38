// The rule's limits on a result whose pages stay upstream until asked for (manifest.ts): maxRows
// applied across the upstream's page list (pages past the cap never downloaded, the last one
// cut, the notice kept), refusal decided from the upstream's own count before any row is
// released, and the statement timeout bounding each later page. Two gateways share the store,
// so the cap holds on the replica that did not run the statement too.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DecideStage } from '../../src/pipeline/stages.js'
import { maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38, nullable: false }, { name: 'EMAIL', type: 'text', nullable: true }]
const email = (n: number): string => `user${n}@example.com`
const jsonRows = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify([String(from + i), email(from + i)])).join(',')
const KEY = 'paged-limits-test-shared-secret-key-0123456789'

const decide: DecideStage = {
  name: 'decide',
  enforcing: true,
  decide: (statement) => {
    const limits = statement.sql.includes('CAPPED')
      ? { maxRows: 6 }
      : statement.sql.includes('REFUSED') ? { maxRows: 6, maxRowsAction: 'refuse' as const } : statement.sql.includes('TIMED') ? { statementTimeoutSeconds: 1 } : {}
    return { effect: 'allow', ruleId: 'agents-limited', reason: 'allowed', limits }
  }
}

type Json = Record<string, any>

describe('row cap and statement timeout across a result\'s upstream pages', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let a: SnowflakeGateway
  let b: SnowflakeGateway
  let headers: Record<string, string>
  const call = async (gw: SnowflakeGateway, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
    const res = await request(`${gw.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() as Json }
  }
  const downloads = (sql: string): string[] => {
    const id = stub.queryLog.filter((q) => q.sqlText === sql).at(-1)?.queryId ?? 'none'
    return stub.requests.filter((r) => r.startsWith(`GET /stage/results/${id}/`))
  }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    const people = { rowtype: ROWTYPE, rowset: [['1', email(1)], ['2', email(2)]], chunks: [3, 6, 9].map((n) => ({ body: jsonRows(n, n + 2), rowCount: 3 })) }
    for (const sql of ['SELECT PEOPLE CAPPED', 'SELECT PEOPLE CAPPED AGAIN', 'SELECT PEOPLE REFUSED', 'SELECT PEOPLE TIMED']) stub.statements.set(sql, people)
    const connections = { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } }
    const stages = { decide, mask: maskColumns(['EMAIL']) }
    a = await startSnowflakeGateway({ connections, stages, secretsKey: KEY })
    b = await startSnowflakeGateway({ connections, stages, secretsKey: KEY, store: a.store, idp: a.idp })
    headers = { authorization: `Bearer ${await a.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => {
    await b?.close()
    await a?.close()
    await stub?.close()
  })

  it('SQL API: cuts at the cap across the upstream pages, on either replica, and never downloads past it', async () => {
    const first = await call(a, 'POST', '/api/v2/statements', { statement: 'SELECT PEOPLE CAPPED' })
    expect(first.status).toBe(200)
    expect(first.body.message).toMatch(/limited to its first 6 rows by rule agents-limited \(limits\.maxRows\)/)
    expect(first.body.resultSetMetaData.numRows).toBe(6)
    expect(first.body.resultSetMetaData.partitionInfo.map((p: { rowCount: number }) => p.rowCount)).toEqual([2, 3, 1])
    const url = String(first.body.statementStatusUrl)
    expect((await call(b, 'GET', `${url}?partition=2`)).body.data).toEqual([['6', '****']])
    expect((await call(b, 'GET', `${url}?partition=1`)).body.data).toEqual([['3', '****'], ['4', '****'], ['5', '****']])
    expect((await call(b, 'GET', `${url}?partition=3`)).status).toBe(400)
    // The third upstream chunk lies past the cap: nobody fetched it.
    expect(downloads('SELECT PEOPLE CAPPED').some((r) => r.endsWith('/chunk_2'))).toBe(false)
  })

  it('connector: the cap shapes total and chunks, the notice is the message', async () => {
    const post = async (path: string, body: unknown, auth?: string): Promise<Json> => {
      const res = await request(`${a.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Snowflake Token="${auth}"` }) },
        body: JSON.stringify(body)
      })
      return await res.body.json() as Json
    }
    const login = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await a.token('alice') } })
    const res = await post('/queries/v1/query-request', { sqlText: 'SELECT PEOPLE CAPPED AGAIN' }, String(login.data.token))
    expect(res.message).toMatch(/limited to its first 6 rows/)
    expect(res.data.total).toBe(6)
    expect(res.data.chunks.map((c: { rowCount: number }) => c.rowCount)).toEqual([3, 1])
    const last = await request(String(res.data.chunks[1].url).replace(a.url, b.url), { headers: res.data.chunkHeaders })
    expect(await last.body.text()).toBe('["6","****"]')
  })

  it('refuses from the upstream\'s own count before any row is released or downloaded', async () => {
    const res = await call(a, 'POST', '/api/v2/statements', { statement: 'SELECT PEOPLE REFUSED' })
    expect(res.status).toBe(422)
    expect(res.body).toMatchObject({ code: '003001' })
    expect(String(res.body.message)).toMatch(/more than 6 rows, the most rule agents-limited allows/)
    expect(JSON.stringify(res.body)).not.toContain('example.com')
    expect(downloads('SELECT PEOPLE REFUSED')).toEqual([])
  })

  it('bounds each later page by the statement timeout: a stalled chunk answers Snowflake\'s 000630', async () => {
    const first = await call(a, 'POST', '/api/v2/statements', { statement: 'SELECT PEOPLE TIMED' })
    expect(first.status).toBe(200)
    stub.stallChunks = true
    try {
      const started = Date.now()
      const page = await call(b, 'GET', `${String(first.body.statementStatusUrl)}?partition=1`)
      expect(page.status).toBe(422)
      expect(page.body).toMatchObject({ code: '000630' })
      expect(Date.now() - started).toBeLessThan(30_000)
    } finally {
      stub.stallChunks = false
    }
  })
})
