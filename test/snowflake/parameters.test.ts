// Statement parameters: one allow-list (src/warehouses/snowflake/parameters.ts) for both front
// ends (issue 10, item 10). Through SQL API v2 over plain HTTP, snowflake-sdk and the Python
// connector; the upstream stub logs what reached the warehouse, so a refused parameter is seen
// never to leave Sluice and an allowed one to arrive as sent.
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALLOWED_PARAMETERS } from '../../src/warehouses/snowflake/parameters.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { runPython } from '../support/snowflake-python.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'N', type: 'fixed', scale: 0, precision: 38, nullable: true, length: null, byteLength: null, database: '', schema: '', table: '', collation: null }]
const STATEMENTS = ['SELECT PLAIN', 'SELECT ALLOWED', 'SELECT REFUSED', 'SELECT PY_PLAIN', 'SELECT PY_ALLOWED', 'SELECT PY_REFUSED']
const UPPER_LIST = ALLOWED_PARAMETERS.join(', ')
const LOWER_LIST = ALLOWED_PARAMETERS.map((n) => n.toLowerCase()).join(', ')

type Outcome = Record<string, unknown> & { rows?: string[][], error?: { type: string, errno: number | null, sqlstate: string | null, msg: string } }

describe('statement parameters: one allow-list for both Snowflake front ends (upstream stub)', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let token: string
  let conn: SdkConnection

  async function submit (body: Record<string, unknown>): Promise<{ status: number, body: Record<string, unknown> }> {
    const res = await request(`${gw.url}/api/v2/statements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }

  const sentWith = (sqlText: string): Record<string, unknown> | undefined => stub.queryLog.filter((q) => q.sqlText === sqlText).at(-1)?.parameters
  const ran = (sqlText: string): boolean => stub.queryLog.some((q) => q.sqlText === sqlText)

  beforeAll(async () => {
    stub = await startUpstreamStub()
    for (const sql of STATEMENTS) stub.statements.set(sql, { rowtype: ROWTYPE, rowset: [['1']] })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } }
    })
    token = await gw.token('alice')
    conn = await connectSdk({ accessUrl: gw.url, token })
  })

  afterAll(async () => {
    if (conn !== undefined) await destroySdk(conn)
    await gw?.close()
    await stub?.close()
  })

  describe('SQL API v2', () => {
    it('refuses a parameter off the list with 400 {code, message} naming it and the allowed ones; nothing runs upstream', async () => {
      for (const name of ['use_cached_result', 'search_path', 'QUOTED_IDENTIFIERS_IGNORE_CASE', 'statement_queued_timeout_in_seconds']) {
        const res = await submit({ statement: 'SELECT REFUSED', parameters: { [name]: 'x' } })
        expect(res.status).toBe(400)
        expect(res.body).toEqual({ code: '000002', message: `statement parameter ${name} is not accepted through Sluice; allowed: ${LOWER_LIST}` })
      }
      expect(ran('SELECT REFUSED')).toBe(false)
    })

    it('runs allowed parameters and forwards them upper-cased; timeout 0 and query_result_format stay in Sluice', async () => {
      const parameters = {
        timezone: 'America/Los_Angeles', query_tag: 'agent-7', rows_per_resultset: 5, json_indent: 0,
        binary_output_format: 'base64', timestamp_ntz_output_format: 'YYYY-MM-DD HH24:MI', statement_timeout_in_seconds: 0, query_result_format: 'json'
      }
      const res = await submit({ statement: 'SELECT ALLOWED', parameters })
      expect(res.status).toBe(200)
      expect(sentWith('SELECT ALLOWED')).toEqual({
        TIMEZONE: 'America/Los_Angeles', QUERY_TAG: 'agent-7', ROWS_PER_RESULTSET: 5, JSON_INDENT: 0, BINARY_OUTPUT_FORMAT: 'BASE64', TIMESTAMP_NTZ_OUTPUT_FORMAT: 'YYYY-MM-DD HH24:MI'
      })
      expect((await submit({ statement: 'SELECT ALLOWED', parameters: { statement_timeout_in_seconds: 30 } })).status).toBe(200)
      expect(sentWith('SELECT ALLOWED')).toEqual({ STATEMENT_TIMEOUT_IN_SECONDS: 30 })
    })

    it('refuses an allowed parameter with a value of the wrong kind, saying what it must be', async () => {
      const res = await submit({ statement: 'SELECT REFUSED', parameters: { rows_per_resultset: -1 } })
      expect(res.status).toBe(400)
      expect(res.body.message).toBe('malformed request: statement parameter rows_per_resultset must be a non-negative integer')
      const format = await submit({ statement: 'SELECT REFUSED', parameters: { binary_output_format: 'UTF8' } })
      expect(format.body.message).toBe('malformed request: statement parameter binary_output_format must be one of HEX, BASE64')
      expect(ran('SELECT REFUSED')).toBe(false)
    })
  })

  describe('connector protocol', () => {
    it('snowflake-sdk: refuses a parameter off the list, naming it and the allowed ones; nothing runs upstream', async () => {
      for (const name of ['USE_CACHED_RESULT', 'SEARCH_PATH', 'AUTOCOMMIT', 'CLIENT_RESULT_CHUNK_SIZE']) {
        const err = await runSdk(conn, 'SELECT REFUSED', { parameters: { [name]: false } }).catch((e: unknown) => e)
        expect(err).toMatchObject({ code: '000002', sqlState: '0A000' })
        expect((err as Error).message).toBe(`statement parameter ${name} is not accepted through Sluice; allowed: ${UPPER_LIST}`)
      }
      expect(ran('SELECT REFUSED')).toBe(false)
      // The session is still good for the next statement.
      expect((await runSdk(conn, 'SELECT PLAIN')).rows).toEqual([{ N: 1 }])
    })

    it('snowflake-sdk: allowed parameters still work and reach the upstream', async () => {
      const { rows } = await runSdk(conn, 'SELECT ALLOWED', { parameters: { QUERY_TAG: 'sdk-agent', TIMEZONE: 'UTC', DATE_OUTPUT_FORMAT: 'YYYY-MM-DD', week_start: 1 } })
      expect(rows).toEqual([{ N: 1 }])
      expect(sentWith('SELECT ALLOWED')).toEqual({ QUERY_TAG: 'sdk-agent', TIMEZONE: 'UTC', DATE_OUTPUT_FORMAT: 'YYYY-MM-DD', WEEK_START: 1 })
    })

    it('answers a refusal in the connector shape {success:false, code, message, data}', async () => {
      const login = await request(`${gw.url}/session/v1/login-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: token } })
      })
      const session = String(((await login.body.json()) as { data: { token: string } }).data.token)
      const res = await request(`${gw.url}/queries/v1/query-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${session}"` },
        body: JSON.stringify({ sqlText: 'SELECT REFUSED', parameters: { LOCK_TIMEOUT: 0 } })
      })
      expect(res.statusCode).toBe(200)
      expect(await res.body.json()).toMatchObject({
        success: false,
        code: '000002',
        message: `statement parameter LOCK_TIMEOUT is not accepted through Sluice; allowed: ${UPPER_LIST}`,
        data: { errorCode: '000002', sqlState: '0A000' }
      })
    })

    it('Python connector: allowed parameters and num_statements work; others are refused with the clear error', async () => {
      const out = await runPython('test/snowflake/python/parameters_client.py', { port: gw.port, token }) as Record<string, Outcome>
      expect(out.plain?.rows).toEqual([['1']])
      expect(out.allowed?.rows).toEqual([['1']])
      expect(sentWith('SELECT PY_ALLOWED')).toEqual({ QUERY_TAG: 'py-agent', TIMEZONE: 'UTC', DATE_OUTPUT_FORMAT: 'YYYY-MM-DD' })
      expect(out.multi?.rows).toEqual([['1']])
      expect(out.refused?.error).toMatchObject({ errno: 2, sqlstate: '0A000' })
      expect(out.refused?.error?.msg).toContain(`statement parameter USE_CACHED_RESULT is not accepted through Sluice; allowed: ${UPPER_LIST}`)
      expect(out.searchPath?.error?.msg).toContain('statement parameter SEARCH_PATH is not accepted through Sluice')
      expect(ran('SELECT PY_REFUSED')).toBe(false)
    })
  })

  it('the README lists every allowed parameter', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    expect(ALLOWED_PARAMETERS.filter((name) => !readme.includes(`\`${name}\``))).toEqual([])
  })
})
