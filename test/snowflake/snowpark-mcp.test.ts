// What agents actually run: Snowpark (on connector 3.13.2) and the PyPI MCP server built on it,
// mcp-snowflake-server, unchanged, driven over stdio by the Python MCP client — both pointed at
// Sluice (fakesnow upstream) with the shipped default policy plus a masking rule. They must read
// masked results (to_pandas() needs Arrow), have writes refused, and have every call recorded.
// Snowpark's close-time `select system$cancel_all_queries(<session id>)` is answered by Sluice
// for that session; against the upstream stub (which logs every statement it receives) it is
// shown never to reach the warehouse, to cancel the session's running statement, and any other
// use of the function is a call the default policy holds.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchEvents } from '../../src/recording/search.js'
import { rowsFromArrow } from '../../src/warehouses/snowflake/arrow.js'
import type { RowTypeEntry } from '../../src/warehouses/snowflake/query-data.js'
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { PYTHON_CONNECTOR3, runPython } from '../support/snowflake-python.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MCP_SERVER = `${ROOT}.venv/connector3/bin/mcp_snowflake_server`
const EMAILS = CUSTOMERS.map((c) => c.email)

const MASKING = `version: 1
masking:
  - id: mask-customer-pii
    columns: ['*.*.customers.email', '*.*.customers.ssn']
    function: redact
    exemptRoles: [data-steward]
`

/** The shipped default policy and one masking file, as a deployment would add it. */
async function policies (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-snowpark-policies-'))
  await copyFile(join(ROOT, 'policies', 'default.yaml'), join(dir, 'default.yaml'))
  await writeFile(join(dir, 'masking.yaml'), MASKING)
  return dir
}

describe('Snowpark and mcp-snowflake-server through Sluice against fakesnow', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let dir: string
  let snowpark: Record<string, unknown>
  let mcp: Record<string, unknown>

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    dir = await policies()
    gw = await startSnowflakeGateway({
      connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA } },
      stages: 'configured',
      policiesDirectory: dir
    })
    snowpark = await runPython('test/snowflake/python/snowpark_client.py', { account: 'fake', port: gw.port, token: await gw.token('alice') }, 300_000, PYTHON_CONNECTOR3)
    mcp = await runPython('test/snowflake/python/mcp_client.py', {
      server: MCP_SERVER,
      account: 'fake',
      port: gw.port,
      token: await gw.token('mallory'),
      calls: [
        ['list_databases', {}],
        ['list_schemas', { database: SEED_DATABASE }],
        ['list_tables', { database: SEED_DATABASE, schema: SEED_SCHEMA }],
        ['describe_table', { table_name: `${SEED_DATABASE}.${SEED_SCHEMA}.CUSTOMERS` }],
        ['read_query', { query: 'SELECT ID, NAME, EMAIL, SSN FROM CUSTOMERS ORDER BY ID' }],
        ['write_query', { query: "UPDATE CUSTOMERS SET EMAIL = 'x@example.com' WHERE ID = 1" }]
      ]
    }, 300_000, PYTHON_CONNECTOR3)
  }, 900_000)

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('Snowpark reads masked results with to_pandas() (Arrow, DATE a date) and collect()', () => {
    expect(snowpark.to_pandas).toEqual({
      dtypes: ['int8', 'object', 'object', 'float64', 'object'],
      rows: CUSTOMERS.map((c, i) => [['int', String(c.id)], ['str', c.name], ['str', '****'], ['float', ['10.5', '20.25', '30.0'][i]], ['date', `2024-01-0${c.id}`]])
    })
    const collected = snowpark.collect as Array<Record<string, [string, string]>>
    expect(collected.map((r) => [r.ID, r.EMAIL, r.SSN, r.BALANCE, r.SIGNED_UP])).toEqual(
      CUSTOMERS.map((c) => [['int', String(c.id)], ['str', '****'], ['str', '****'], ['Decimal', c.balance], ['date', `2024-01-0${c.id}`]]))
    expect(snowpark.date).toEqual([[['date', '2024-01-02']]])
    expect(JSON.stringify(snowpark)).not.toMatch(new RegExp(EMAILS.join('|')))
  })

  it('answers Snowpark\'s close-time system$cancel_all_queries for its own session, recorded', async () => {
    expect(snowpark.close).toBe('closed')
    const sql = `select system$cancel_all_queries(${String(snowpark.sessionId)})`
    const events = (await searchEvents(gw.store, { principal: 'alice' }, undefined, 200)).items
    expect(events.filter((e) => /cancel_all_queries/i.test(e.sqlText ?? '')).map((e) => [e.sqlText, e.outcome])).toEqual([[sql, 'ok']])
  })

  it('mcp-snowflake-server lists databases, schemas and tables and describes one through Sluice', () => {
    expect(mcp.tools).toEqual(expect.arrayContaining(['list_databases', 'list_schemas', 'list_tables', 'describe_table', 'read_query', 'write_query']))
    const text = (tool: string): string => {
      const r = mcp[tool] as { isError: boolean, text: string[] }
      expect(r.isError, `${tool}: ${r.text.join(' ')}`).toBe(false)
      return r.text.join('\n')
    }
    expect(text('list_databases')).toContain(`DATABASE_NAME: ${SEED_DATABASE}`)
    expect(text('list_schemas')).toContain(`SCHEMA_NAME: ${SEED_SCHEMA}`)
    expect(text('list_tables')).toContain('TABLE_NAME: CUSTOMERS')
    const described = text('describe_table')
    for (const column of ['ID', 'NAME', 'EMAIL', 'SSN', 'BALANCE', 'SIGNED_UP']) expect(described).toContain(`COLUMN_NAME: ${column}`)
  })

  it('mcp-snowflake-server\'s read tool returns masked rows', () => {
    const read = mcp.read_query as { isError: boolean, text: string[], resources: string[] }
    expect(read.isError).toBe(false)
    const data = (JSON.parse(read.resources[0] ?? '{}') as { data: unknown[] }).data
    expect(data).toEqual(CUSTOMERS.map((c) => ({ ID: c.id, NAME: c.name, EMAIL: '****', SSN: '****' })))
    const everything = JSON.stringify(mcp)
    for (const c of CUSTOMERS) {
      expect(everything).not.toContain(c.email)
      expect(everything).not.toContain(c.ssn)
    }
  })

  it('mcp-snowflake-server\'s write tool is refused by the shipped default policy', () => {
    const write = mcp.write_query as { text: string[] }
    expect(write.text.join(' ')).toContain('approval required by rule agents-writes-need-approval')
  })

  it('records every statement the MCP server ran, the refused write with its decision', async () => {
    const events = (await searchEvents(gw.store, { principal: 'mallory' }, undefined, 200)).items
    const statements = events.map((e) => e.sqlText ?? '').filter((t) => t !== '')
    for (const fragment of ['INFORMATION_SCHEMA.DATABASES', 'INFORMATION_SCHEMA.SCHEMATA', 'information_schema.tables', 'information_schema.columns', 'SELECT ID, NAME, EMAIL, SSN FROM CUSTOMERS', 'UPDATE CUSTOMERS']) {
      expect(statements.some((t) => t.includes(fragment)), fragment).toBe(true)
    }
    const update = events.find((e) => (e.sqlText ?? '').startsWith('UPDATE CUSTOMERS'))
    expect(update).toMatchObject({ decision: 'require_approval', ruleId: 'agents-writes-need-approval' })
    const read = events.find((e) => (e.sqlText ?? '').startsWith('SELECT ID, NAME, EMAIL, SSN'))
    expect(read).toMatchObject({ decision: 'allow', ruleId: 'agents-read-only' })
  })
})

describe('system$cancel_all_queries against the upstream stub', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let dir: string

  const post = async (path: string, body: unknown, auth?: string): Promise<Record<string, unknown>> => {
    const res = await request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Snowflake Token="${auth}"` }) },
      body: JSON.stringify(body)
    })
    return await res.body.json() as Record<string, unknown>
  }
  const login = async (): Promise<{ token: string, sessionId: number }> => {
    const res = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await gw.token('alice'), CLIENT_APP_ID: 'PythonSnowpark' } })
    const data = res.data as { token: string, sessionId: number }
    return { token: data.token, sessionId: data.sessionId }
  }
  const startSlow = async (token: string, sqlText: string): Promise<string> => {
    const res = await post('/queries/v1/query-request', { sqlText, asyncExec: true }, token)
    const queryId = String((res.data as { queryId: string }).queryId)
    // Running upstream: the stub has it and keeps answering "still running".
    for (let i = 0; i < 200 && !stub.queryLog.some((q) => q.sqlText === sqlText); i++) await new Promise((resolve) => setTimeout(resolve, 25))
    return queryId
  }
  const status = async (token: string, id: string): Promise<string> => {
    const res = await request(`${gw.url}/monitoring/queries/${id}`, { headers: { authorization: `Snowflake Token="${token}"` } })
    return String(((await res.body.json()) as { data: { queries: Array<{ status: string }> } }).data.queries[0]?.status)
  }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    for (const sql of ['SELECT SLOW_A', 'SELECT SLOW_B']) {
      stub.statements.set(sql, { rowtype: [{ name: 'N', type: 'fixed', scale: 0 }], rowset: [['1']], pollsBeforeResult: 100_000 })
    }
    dir = await policies()
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } },
      stages: 'configured',
      policiesDirectory: dir
    })
  })

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('cancels the session\'s own running statements, answers "<n> cancelled." and sends nothing upstream', async () => {
    const a = await login()
    const b = await login()
    const runningA = await startSlow(a.token, 'SELECT SLOW_A')
    const runningB = await startSlow(b.token, 'SELECT SLOW_B')
    const sql = `select system$cancel_all_queries(${a.sessionId})`
    const res = await post('/queries/v1/query-request', { sqlText: sql }, a.token)
    expect(res).toMatchObject({ success: true, data: { queryResultFormat: 'arrow', rowtype: [{ name: `SYSTEM$CANCEL_ALL_QUERIES(${a.sessionId})` }] } })
    const data = res.data as { rowsetBase64: string, rowtype: RowTypeEntry[] }
    expect(rowsFromArrow(Buffer.from(data.rowsetBase64, 'base64'), data.rowtype)).toEqual([['1 cancelled.']])
    expect(stub.queryLog.some((q) => /cancel_all_queries/i.test(q.sqlText))).toBe(false)
    expect(await status(a.token, runningA)).toBe('ABORTED')
    // Another session of the same principal is not this session.
    expect(await status(b.token, runningB)).toBe('RUNNING')
    await post(`/queries/${runningB}/abort-request`, {}, b.token)
  })

  it('any other use of the function is a call the shipped default holds, and never runs', async () => {
    const a = await login()
    for (const sql of [`select system$cancel_all_queries(${a.sessionId + 1})`, `SELECT SYSTEM$CANCEL_ALL_QUERIES(${a.sessionId}), 1`, "select system$cancel_query('01b0-stub-1')"]) {
      const res = await post('/queries/v1/query-request', { sqlText: sql }, a.token)
      expect(res, sql).toMatchObject({ success: false, code: '003001' })
      expect(String(res.message)).toContain('approval required by rule agents-writes-need-approval')
    }
    expect(stub.queryLog.some((q) => /system\$cancel/i.test(q.sqlText))).toBe(false)
  })
})
