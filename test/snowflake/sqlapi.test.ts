// SQL API v2 (specs/snowflake-sqlapi.yaml) through Sluice against fakesnow, with plain HTTP:
// sync and async statements, partitions and Link headers, gzip both ways, bindings,
// multi-statements, the spec's error bodies, cancel, and handles bound to their principal.
import { gunzipSync, gzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { denyKeyword, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'

interface Res { status: number, headers: Record<string, string | string[] | undefined>, body: Record<string, unknown> }

describe('SQL API v2 through Sluice against fakesnow', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let alice: string
  let bob: string

  async function call (method: 'GET' | 'POST', path: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
    const res = await request(`${gw.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'user-agent': 'sqlapi-test/1.0',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers
      },
      body: body === undefined ? undefined : (Buffer.isBuffer(body) ? body : JSON.stringify(body))
    })
    const raw = Buffer.from(await res.body.arrayBuffer())
    const text = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString()
    return { status: res.statusCode, headers: res.headers, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
  }

  const submit = async (body: Record<string, unknown>, query = '', token = alice): Promise<Res> =>
    await call('POST', `/api/v2/statements${query}`, token, { database: SEED_DATABASE, schema: SEED_SCHEMA, ...body })

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: {
        fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', partitionRows: 2, database: SEED_DATABASE, schema: SEED_SCHEMA },
        reporting: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice', password: 'other-secret', database: SEED_DATABASE, schema: SEED_SCHEMA },
        // No opt-out: fakesnow refuses USE SECONDARY ROLES NONE, so this connection fails closed.
        strict: { kind: 'snowflake', url: fakesnow.url, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA }
      },
      stages: { decide: denyKeyword('DELETE') }
    })
    alice = await gw.token('alice')
    bob = await gw.token('bob')
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
  })

  it('runs a statement synchronously: ResultSet, partitions, Link header', async () => {
    const res = await submit({ statement: 'SELECT ID, EMAIL FROM CUSTOMERS ORDER BY ID' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ code: '090001', sqlState: '00000', statementHandle: expect.stringMatching(/^[0-9a-f-]{36}$/) })
    const meta = res.body.resultSetMetaData as Record<string, unknown>
    expect(meta).toMatchObject({ numRows: 3, format: 'jsonv2', partitionInfo: [{ rowCount: 2 }, { rowCount: 1 }] })
    expect((meta.rowType as Array<{ name: string }>).map((c) => c.name)).toEqual(['ID', 'EMAIL'])
    expect(res.body.data).toEqual([['1', 'ada@example.com'], ['2', 'alan@example.com']])
    const handle = String(res.body.statementHandle)
    expect(res.headers.link).toContain(`</api/v2/statements/${handle}?partition=1>;rel="next"`)
    expect(res.headers.link).toContain(`</api/v2/statements/${handle}?partition=1>;rel="last"`)

    const next = await call('GET', `/api/v2/statements/${handle}?partition=1`, alice)
    expect(next.status).toBe(200)
    expect(next.body.data).toEqual([['3', 'grace@example.com']])
    expect(next.headers.link).toContain('rel="prev"')
    expect((await call('GET', `/api/v2/statements/${handle}?partition=2`, alice)).status).toBe(400)
  })

  it('runs a statement asynchronously: 202 + statementStatusUrl, then the result', async () => {
    const res = await submit({ statement: 'SELECT COUNT(*) AS N FROM CUSTOMERS' }, '?async=true')
    expect(res.status).toBe(202)
    expect(res.body).toMatchObject({ code: '333334', statementStatusUrl: `/api/v2/statements/${String(res.body.statementHandle)}` })
    let status: Res
    do {
      status = await call('GET', String(res.body.statementStatusUrl), alice)
    } while (status.status === 202)
    expect(status.status).toBe(200)
    expect(status.body.data).toEqual([['3']])
  })

  it('binds variables and reports DML stats', async () => {
    const bound = await submit({ statement: 'SELECT EMAIL FROM CUSTOMERS WHERE ID = ?', bindings: { 1: { type: 'FIXED', value: '2' } } })
    expect(bound.body.data).toEqual([['alan@example.com']])
    const dml = await submit({ statement: 'UPDATE ORDERS SET AMOUNT = 7 WHERE ID = 1' })
    expect(dml.status).toBe(200)
    expect(dml.body.stats).toMatchObject({ numRowsUpdated: 1 })
  })

  it('accepts a gzip request body and answers gzip when asked', async () => {
    const body = gzipSync(JSON.stringify({ statement: 'SELECT 1 AS ONE' }))
    const res = await call('POST', '/api/v2/statements', alice, body, { 'content-encoding': 'gzip', 'accept-encoding': 'gzip' })
    expect(res.headers['content-encoding']).toBe('gzip')
    expect(res.body.data).toEqual([['1']])
  })

  it('runs multi-statements with multi_statement_count and exposes each child handle', async () => {
    const refused = await submit({ statement: 'SELECT 1; SELECT 2' })
    expect(refused.status).toBe(400)
    expect(refused.body.code).toBe('000008')
    const res = await submit({ statement: 'SELECT 1 AS A; SELECT 2 AS B', parameters: { multi_statement_count: 2 } })
    expect(res.status).toBe(200)
    const children = res.body.statementHandles as string[]
    expect(children).toHaveLength(2)
    const second = await call('GET', `/api/v2/statements/${children[1] ?? ''}`, alice)
    expect(second.body.data).toEqual([['2']])
  })

  it('answers a failed statement with 422 QueryFailureStatus', async () => {
    const res = await submit({ statement: 'SELECT * FROM NO_SUCH_TABLE' })
    expect(res.status).toBe(422)
    expect(res.body).toMatchObject({ code: '002003', sqlState: '42S02', statementHandle: expect.any(String), message: expect.stringContaining('NO_SUCH_TABLE') })
  })

  it('renders a policy denial as 422 naming the rule', async () => {
    const res = await submit({ statement: 'DELETE FROM CUSTOMERS' })
    expect(res.status).toBe(422)
    expect(res.body).toMatchObject({ code: '003001', sqlState: '42501', message: 'denied by rule agents-read-only: DELETE is not allowed for role agent on connection fake' })
  })

  it('refuses statements the SQL API does not run, and PUT/GET', async () => {
    expect((await submit({ statement: 'USE DATABASE OTHER' })).body).toMatchObject({ code: '000002' })
    expect((await submit({ statement: 'ALTER SESSION SET TIMEZONE = \'UTC\'' })).status).toBe(422)
    expect(String((await submit({ statement: 'GET @~/x file:///tmp' })).body.message)).toMatch(/PUT and GET file transfers/)
  })

  it('answers malformed requests with 400 and an unknown connection with 404', async () => {
    expect((await call('POST', '/api/v2/statements', alice, { timeout: 5 })).status).toBe(400)
    const nope = await submit({ statement: 'SELECT 1', parameters: { nope: 1 } })
    expect(nope.status).toBe(400)
    expect(nope.body).toMatchObject({ code: '000002', message: expect.stringMatching(/^statement parameter nope is not accepted through Sluice; allowed: multi_statement_count, timezone, query_tag, /) })
    expect((await call('POST', '/snowflake/nope/api/v2/statements', alice, { statement: 'SELECT 1' })).status).toBe(404)
  })

  it('runs allowed statement parameters against fakesnow', async () => {
    const res = await submit({ statement: 'SELECT COUNT(*) FROM ORDERS', parameters: { timezone: 'UTC', query_tag: 'sqlapi-test', rows_per_resultset: 10 } })
    expect(res.status).toBe(200)
    expect(res.body.data).toEqual([['2']])
  })

  it('fails closed on a warehouse that refuses USE SECONDARY ROLES NONE (fakesnow), naming the connection', async () => {
    const res = await call('POST', '/snowflake/strict/api/v2/statements', alice, { statement: 'SELECT COUNT(*) FROM ORDERS' })
    expect(res.status).toBe(422)
    expect(res.body.message).toMatch(/^connection strict: USE SECONDARY ROLES NONE failed on a new upstream session, so the session was not used \(001003: .*\); set secondaryRoles: keep on the connection only if the warehouse \(an emulator\) lacks the statement$/s)
    expect(res.body.data).toBeUndefined()
  })

  it('selects a connection by path prefix', async () => {
    const res = await call('POST', '/snowflake/reporting/api/v2/statements', alice, { statement: 'SELECT COUNT(*) FROM ORDERS' })
    expect(res.status).toBe(200)
    expect(res.body.statementStatusUrl).toBe(`/snowflake/reporting/api/v2/statements/${String(res.body.statementHandle)}`)
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    expect(events.some((e) => e.connection === 'reporting' && e.frontEnd === 'snowflake-sqlapi')).toBe(true)
  })

  it('answers 404 for another principal\'s handle, exactly as for an unknown one', async () => {
    const res = await submit({ statement: 'SELECT 1' })
    const handle = String(res.body.statementHandle)
    const foreign = await call('GET', `/api/v2/statements/${handle}`, bob)
    const unknown = await call('GET', '/api/v2/statements/00000000-0000-4000-8000-000000000000', bob)
    expect(foreign.status).toBe(404)
    expect(unknown.status).toBe(404)
    expect({ ...foreign.body, message: '' }).toEqual({ ...unknown.body, message: '' })
    expect((await call('POST', `/api/v2/statements/${handle}/cancel`, bob)).status).toBe(404)
  })

  it('cancels: a finished statement says so (422 CancelStatus)', async () => {
    const res = await submit({ statement: 'SELECT 1' })
    const cancel = await call('POST', `/api/v2/statements/${String(res.body.statementHandle)}/cancel`, alice)
    expect(cancel.status).toBe(422)
    expect(cancel.body.statementHandle).toBe(res.body.statementHandle)
  })

  it('refuses a missing or bad bearer token with 401 and records it', async () => {
    const res = await call('POST', '/api/v2/statements', 'not-a-jwt', { statement: 'SELECT 1' })
    expect(res.status).toBe(401)
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    expect(events.some((e) => e.frontEnd === 'snowflake-sqlapi' && e.outcome === 'unauthenticated')).toBe(true)
    expect(events.some((e) => e.frontEnd === 'snowflake-sqlapi' && e.outcome === 'denied' && e.ruleId === 'agents-read-only')).toBe(true)
  })
})
