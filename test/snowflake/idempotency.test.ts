// Idempotency keys on both Snowflake front ends (src/warehouses/snowflake/idempotency.ts),
// against the upstream stub so every statement that reaches the warehouse is counted: a retry
// gets the first request's handle and runs nothing; the key with another statement is refused
// (in each protocol's error shape, recorded); another principal's key never collides; a second
// replica on the same store sees the binding. Also the SQL API's checked query parameters, 405
// with Allow, and the connector's monitoring answer for an unknown session.
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchEvents } from '../../src/recording/search.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { denyKeyword, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'N', type: 'fixed', scale: 0, precision: 38 }]
interface Res { status: number, headers: Record<string, unknown>, body: Record<string, any> }

describe('idempotency keys through the Snowflake front ends (upstream stub)', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let replica: SnowflakeGateway
  let alice: string
  let bob: string

  async function call (base: string, method: string, path: string, token: string | null, body?: unknown): Promise<Res> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'idempotency-test/1.0' }
    if (token !== null) headers.authorization = `Bearer ${token}`
    const res = await request(`${base}${path}`, { method: method as 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.body.text()
    return { status: res.statusCode, headers: res.headers, body: text === '' ? {} : JSON.parse(text) as Record<string, any> }
  }
  const submit = async (body: unknown, query = '', token = alice, base = gw.url): Promise<Res> => await call(base, 'POST', `/api/v2/statements${query}`, token, body)
  const ran = (sqlText: string): number => stub.queryLog.filter((q) => q.sqlText === sqlText).length
  const eventOf = async (res: Res) => (await searchEvents(gw.store, { requestId: String(res.headers['x-request-id']) })).items[0]

  beforeAll(async () => {
    stub = await startUpstreamStub()
    for (const n of ['1', '2', '3', '4', '5', '6', '7']) stub.statements.set(`SELECT ${n}`, { rowtype: ROWTYPE, rowset: [[n]] })
    stub.statements.set('SELECT ?', { rowtype: ROWTYPE, rowset: [['9']] })
    stub.statements.set('SELECT SOON', { rowtype: ROWTYPE, rowset: [['8']], pollsBeforeResult: 3 })
    const connections = { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 5 } }
    gw = await startSnowflakeGateway({ connections, stages: { decide: denyKeyword('DROP', 'no-ddl') } })
    // A second replica on the same store: handles and keys are in the store.
    replica = await startSnowflakeGateway({ connections, stages: { decide: denyKeyword('DROP', 'no-ddl') }, store: gw.store, idp: gw.idp })
    alice = await gw.token('alice')
    bob = await gw.token('bob')
  })

  afterAll(async () => {
    await replica?.close()
    await gw?.close()
    await stub?.close()
  })

  describe('SQL API v2', () => {
    it('answers a retry (same requestId and request) with the first handle, running nothing again', async () => {
      const id = randomUUID()
      const first = await submit({ statement: 'SELECT 1' }, `?requestId=${id}`)
      expect(first.status).toBe(200)
      const again = await submit({ statement: 'SELECT 1' }, `?requestId=${id}&retry=true`)
      expect(again.status).toBe(200)
      expect(again.body.statementHandle).toBe(first.body.statementHandle)
      expect(again.body.data).toEqual([['1']])
      expect(ran('SELECT 1')).toBe(1)
    })

    it('refuses the same requestId with another statement: never the earlier result, never "success"', async () => {
      const id = randomUUID()
      const first = await submit({ statement: 'SELECT 2' }, `?requestId=${id}`)
      expect(first.status).toBe(200)
      // The case: a denied DROP sent under the key of an allowed SELECT.
      const drop = await submit({ statement: 'DROP TABLE CUSTOMERS' }, `?requestId=${id}`)
      expect(drop.status).toBe(400)
      expect(drop.body.code).toBe('000900')
      expect(drop.body.message).toContain(`requestId ${id} was already used on connection stubbed for a different statement text`)
      expect(drop.body.message).toContain(String(first.body.statementHandle))
      expect(drop.body.statementHandle).toBeUndefined()
      expect(drop.body.data).toBeUndefined()
      expect(ran('DROP TABLE CUSTOMERS')).toBe(0)
      expect(await eventOf(drop)).toMatchObject({ outcome: 'error', errorCode: 'SLUICE_IDEMPOTENCY_CONFLICT', sqlText: 'DROP TABLE CUSTOMERS' })
      // Another allowed statement is refused just the same: the key is taken.
      const other = await submit({ statement: 'SELECT 3' }, `?requestId=${id}`)
      expect(other.status).toBe(400)
      expect(ran('SELECT 3')).toBe(0)
    })

    it('names bindings, parameters or context when only those differ', async () => {
      const id = randomUUID()
      const bindings = (v: string) => ({ 1: { type: 'FIXED', value: v } })
      expect((await submit({ statement: 'SELECT ?', bindings: bindings('1') }, `?requestId=${id}`)).status).toBe(200)
      const res = await submit({ statement: 'SELECT ?', bindings: bindings('2') }, `?requestId=${id}`)
      expect(res.status).toBe(400)
      expect(res.body.message).toContain('the same statement text with different bindings, parameters or context')
      expect((await submit({ statement: 'SELECT ?', bindings: bindings('1') }, `?requestId=${id}`)).status).toBe(200)
      expect((await submit({ statement: 'SELECT ?', bindings: bindings('1'), timeout: 30 }, `?requestId=${id}`)).status).toBe(400)
    })

    it('does not bind a key to a denied statement: its retry is decided and denied again', async () => {
      const id = randomUUID()
      const denied = await submit({ statement: 'DROP TABLE ORDERS' }, `?requestId=${id}`)
      expect(denied.status).toBe(422)
      expect(denied.body.message).toMatch(/denied by rule no-ddl/)
      const retry = await submit({ statement: 'DROP TABLE ORDERS' }, `?requestId=${id}`)
      expect(retry.status).toBe(422)
      expect(await eventOf(retry)).toMatchObject({ outcome: 'denied', ruleId: 'no-ddl' })
    })

    it('keeps principals apart: bob reusing alice\'s requestId runs his own statement', async () => {
      const id = randomUUID()
      const mine = await submit({ statement: 'SELECT 4' }, `?requestId=${id}`)
      const his = await submit({ statement: 'SELECT 4' }, `?requestId=${id}`, bob)
      expect(his.status).toBe(200)
      expect(his.body.statementHandle).not.toBe(mine.body.statementHandle)
      const other = await submit({ statement: 'SELECT 5' }, `?requestId=${randomUUID()}`, bob)
      expect(other.status).toBe(200)
      expect((await submit({ statement: 'SELECT 5' }, `?requestId=${id}`, bob)).status).toBe(400)
    })

    it('answers concurrent duplicates with one handle and one upstream run', async () => {
      const id = randomUUID()
      const [a, b, c] = await Promise.all([0, 1, 2].map(async () => await submit({ statement: 'SELECT SOON' }, `?requestId=${id}`)))
      expect(new Set([a, b, c].map((r) => r!.body.statementHandle)).size).toBe(1)
      expect(stub.queryLog.filter((q) => q.sqlText === 'SELECT SOON')).toHaveLength(1)
    })

    it('sees the key on another replica: a conflict is refused, a retry is answered with the first result', async () => {
      const id = randomUUID()
      expect((await submit({ statement: 'SELECT 6' }, `?requestId=${id}`)).status).toBe(200)
      const conflict = await submit({ statement: 'DROP TABLE CUSTOMERS' }, `?requestId=${id}`, alice, replica.url)
      expect(conflict.status).toBe(400)
      expect(conflict.body.message).toContain('for a different statement text')
      const first = await submit({ statement: 'SELECT 6' }, `?requestId=${id}`)
      // The handle is in the store: the other replica serves the first submission's result.
      const retry = await submit({ statement: 'SELECT 6' }, `?requestId=${id}`, alice, replica.url)
      expect(retry.status).toBe(200)
      expect(retry.body.statementHandle).toBe(first.body.statementHandle)
      expect(retry.body.data).toEqual(first.body.data)
      expect(ran('SELECT 6')).toBe(1)
    })

    it('refuses an empty, null, repeated or malformed requestId and malformed flags with 400', async () => {
      for (const query of ['?requestId=', '?requestId=null', `?requestId=${randomUUID()}&requestId=${randomUUID()}`, '?requestId=not-a-uuid',
        '?async=yes', '?nullable=1', '?retry=maybe']) {
        const res = await submit({ statement: 'SELECT 7' }, query)
        expect(res.status, query).toBe(400)
        expect(res.body.message, query).toMatch(/^malformed request: (requestId|async|nullable|retry) /)
      }
      for (const body of [{ statement: 'SELECT 7', timeout: '10' }, { statement: 'SELECT 7', timeout: -1 }, { statement: 'SELECT 7', database: 5 },
        { statement: 'SELECT 7', bindings: [1] }, [{ statement: 'SELECT 7' }]]) {
        expect((await submit(body)).status, JSON.stringify(body)).toBe(400)
      }
      expect((await call(gw.url, 'GET', `/api/v2/statements/${randomUUID()}?partition=-1`, alice)).status).toBe(400)
      expect(ran('SELECT 7')).toBe(0)
    })

    it('answers undeclared methods with 405 and Allow, after authentication', async () => {
      const res = await call(gw.url, 'GET', '/api/v2/statements', alice)
      expect(res.status).toBe(405)
      expect(res.headers.allow).toBe('POST')
      expect(res.body).toMatchObject({ code: '000002', message: expect.stringContaining('GET is not allowed on /api/v2/statements') })
      const del = await call(gw.url, 'DELETE', `/api/v2/statements/${randomUUID()}`, alice)
      expect(del.status).toBe(405)
      expect(del.headers.allow).toBe('GET, HEAD')
      expect((await call(gw.url, 'PUT', '/snowflake/stubbed/api/v2/statements/x/cancel', alice)).headers.allow).toBe('POST')
      expect((await call(gw.url, 'GET', '/api/v2/statements', null)).status).toBe(401)
      // Refused before any body handling: QUERY without Content-Type is no 400, an odd type no 415.
      const query = await request(`${gw.url}/api/v2/statements/${randomUUID()}`, { method: 'QUERY' as 'GET', headers: { authorization: `Bearer ${alice}` } })
      await query.body.dump()
      expect(query.statusCode).toBe(405)
      const odd = await request(`${gw.url}/api/v2/statements`, { method: 'PUT', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/x-nothing' }, body: 'x' })
      await odd.body.dump()
      expect(odd.statusCode).toBe(405)
    })
  })

  describe('connector protocol', () => {
    let token: string
    let conn: SdkConnection
    const post = async (path: string, body: unknown, auth = token): Promise<Record<string, any>> => {
      const res = await request(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Snowflake Token="${auth}"` },
        body: JSON.stringify(body)
      })
      // The gateway's request id, to find the round trip's event.
      return { ...await res.body.json() as Record<string, any>, requestIdHeader: res.headers['x-request-id'] }
    }

    beforeAll(async () => {
      const login = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: alice } }, '')
      token = String(login.data.token)
      conn = await connectSdk({ accessUrl: gw.url, account: 'acme', token: alice })
    })
    afterAll(async () => { if (conn !== undefined) await destroySdk(conn) })

    it('answers a driver retry (same requestId, retryCount and request_guid added) with the first query id', async () => {
      const id = randomUUID()
      const before = ran('SELECT 1')
      const first = await post(`/queries/v1/query-request?requestId=${id}&request_guid=${randomUUID()}`, { sqlText: 'SELECT 1' })
      expect(first).toMatchObject({ success: true })
      const retry = await post(`/queries/v1/query-request?requestId=${id}&request_guid=${randomUUID()}&retryCount=1&retryReason=503&clientStartTime=1`, { sqlText: 'SELECT 1' })
      expect(retry).toMatchObject({ success: true, data: { queryId: first.data.queryId } })
      expect(ran('SELECT 1')).toBe(before + 1)
    })

    it('refuses the same requestId with another statement as a connector error, recorded', async () => {
      const id = randomUUID()
      await post(`/queries/v1/query-request?requestId=${id}`, { sqlText: 'SELECT 2' })
      const refused = await post(`/queries/v1/query-request?requestId=${id}`, { sqlText: 'DROP TABLE CUSTOMERS' })
      expect(refused).toMatchObject({ success: false, code: '000900', data: { sqlState: '23505' } })
      expect(refused.message).toContain(`requestId ${id} was already used on connection stubbed for a different statement text`)
      expect(ran('DROP TABLE CUSTOMERS')).toBe(0)
      expect((await searchEvents(gw.store, { requestId: String(refused.requestIdHeader) })).items[0])
        .toMatchObject({ frontEnd: 'snowflake-connector', outcome: 'error', errorCode: 'SLUICE_IDEMPOTENCY_CONFLICT', sqlText: 'DROP TABLE CUSTOMERS' })
      // The SQL API shares the store: the key is taken there too.
      expect((await submit({ statement: 'SELECT 2' }, `?requestId=${id}`)).body.message).toContain('for a request through snowflake-connector')
    })

    it('answers snowflake-sdk with the first result when it reuses a requestId, and resubmits by id', async () => {
      const id = randomUUID()
      const before = ran('SELECT 3')
      const first = await runSdk(conn, 'SELECT 3', { requestId: id })
      const again = await runSdk(conn, 'SELECT 3', { requestId: id })
      expect(again.statement.getQueryId()).toBe(first.statement.getQueryId())
      expect(ran('SELECT 3')).toBe(before + 1)
      // execute({ requestId }) without SQL: the sdk sends its placeholder, Sluice answers for the key.
      const resubmitted = await runSdk(conn, '', { requestId: id })
      expect(resubmitted.statement.getQueryId()).toBe(first.statement.getQueryId())
      expect(resubmitted.rows).toEqual(first.rows)
      await expect(runSdk(conn, 'SELECT 4', { requestId: id })).rejects.toThrow(/already used on connection stubbed/)
    })

    it('refuses an empty requestId', async () => {
      expect(await post('/queries/v1/query-request?requestId=', { sqlText: 'SELECT 5' })).toMatchObject({ success: false, code: '000900' })
    })

    it('answers /monitoring/queries for an unknown session with data.queries, as the drivers parse it', async () => {
      for (const path of [`/monitoring/queries/${randomUUID()}`, `/monitoring/queries//${randomUUID()}`]) {
        const res = await request(`${gw.url}${path}`, { headers: { authorization: 'Snowflake Token="no-such-session"' } })
        expect(await res.body.json(), path).toMatchObject({ success: false, code: '390104', data: { queries: [] } })
      }
    })
  })
})
