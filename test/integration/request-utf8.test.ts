// Regression (issue 10, item 11): invalid UTF-8 in a statement was silently replaced with U+FFFD
// and the statement ran. Every front end now refuses a body that is not valid UTF-8 (and JSON
// holding a lone surrogate escape, its twin one layer up) in its own protocol's shape, before
// the statement reaches the pipeline or the upstream; valid non-ASCII text passes unchanged.
// Raw protocol on each front end (gzip bodies, as the drivers send them), plus the official
// Node clients snowflake-sdk and @google-cloud/bigquery.
import { gzipSync } from 'node:zlib'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { BQ_PROJECT, startInputGateway, type InputGateway } from '../support/input-gateway.js'

/** `{"<field>":"SELECT '<bad bytes>'"}` as raw bytes. */
function jsonWithBytes (field: string, bad: number[]): Buffer {
  return Buffer.concat([Buffer.from(`{"${field}":"SELECT '`), Buffer.from(bad), Buffer.from('\' AS x"}')])
}

const INVALID = [0x63, 0x61, 0x66, 0xe9] // "caf" + a Latin-1 é: what a mis-encoded client sends
const UTF8_SURROGATE = [0xed, 0xa0, 0x80] // U+D800 encoded as UTF-8, which UTF-8 forbids
/** JSON text with a lone surrogate escape: what Python's json.dumps writes for an undecodable byte. */
const LONE_SURROGATE_JSON = (field: string): string => `{"${field}":"SELECT '\\udce9' AS x"}`
const NON_ASCII = 'SELECT \'café ☃ 😀\' AS x'

describe('request bodies that are not valid UTF-8', () => {
  let gw: InputGateway
  let bearer: string

  beforeAll(async () => {
    gw = await startInputGateway()
    bearer = await gw.token('alice')
  })
  afterAll(async () => { await gw?.close() })

  async function post (path: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number, body: Record<string, unknown>, requestId: string | null }> {
    const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) })
    return { status: res.status, body: await res.json() as Record<string, unknown>, requestId: res.headers.get('x-request-id') }
  }

  async function eventOf (requestId: string | null): Promise<Record<string, unknown> | undefined> {
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    return events.find((e) => e.requestId === requestId) as Record<string, unknown> | undefined
  }

  describe('Snowflake SQL API v2', () => {
    const headers = (): Record<string, string> => ({ authorization: `Bearer ${bearer}` })

    it.each([
      ['invalid bytes', jsonWithBytes('statement', INVALID), 'not valid UTF-8'],
      ['a UTF-8-encoded surrogate', jsonWithBytes('statement', UTF8_SURROGATE), 'not valid UTF-8'],
      ['a lone surrogate escape', Buffer.from(LONE_SURROGATE_JSON('statement')), 'lone UTF-16 surrogate']
    ])('%s, plain and gzip: 400 in the SQL API error shape, recorded, never upstream', async (_what, body, reason) => {
      const before = gw.snowflake.queryRequests.length
      for (const [bytes, extra] of [[body, {}], [gzipSync(body), { 'content-encoding': 'gzip' }]] as const) {
        const res = await post('/api/v2/statements', bytes, { ...headers(), ...extra })
        expect(res.status).toBe(400)
        expect(res.body).toEqual({ code: '000900', message: expect.stringContaining(reason) })
        expect(await eventOf(res.requestId)).toMatchObject({ outcome: 'error', errorCode: 'SLUICE_BAD_REQUEST', principalSubject: 'alice' })
      }
      expect(gw.snowflake.queryRequests.length).toBe(before)
    })

    it('valid non-ASCII text reaches the upstream unchanged', async () => {
      await post('/api/v2/statements', gzipSync(JSON.stringify({ statement: NON_ASCII })), { ...headers(), 'content-encoding': 'gzip' })
      expect(gw.snowflake.queryRequests.map((r) => r.sqlText)).toContain(NON_ASCII)
    })
  })

  describe('Snowflake connector protocol', () => {
    let sessionToken: string
    let sdk: SdkConnection

    beforeAll(async () => {
      const login = await post('/session/v1/login-request', JSON.stringify({ data: { AUTHENTICATOR: 'OAUTH', TOKEN: bearer, ACCOUNT_NAME: 'acme' } }), {})
      sessionToken = String((login.body.data as Record<string, unknown>).token)
      sdk = await connectSdk({ accessUrl: gw.url, account: 'acme', token: bearer })
    })
    afterAll(async () => { if (sdk !== undefined) await destroySdk(sdk) })

    it.each([
      ['invalid bytes', jsonWithBytes('sqlText', INVALID), 'not valid UTF-8'],
      ['a lone surrogate escape', Buffer.from(LONE_SURROGATE_JSON('sqlText')), 'lone UTF-16 surrogate']
    ])('%s in a gzip query-request: refused in the connector shape, recorded, never upstream', async (_what, body, reason) => {
      const before = gw.snowflake.queryRequests.length
      const res = await post('/queries/v1/query-request?requestId=1', gzipSync(body), {
        authorization: `Snowflake Token="${sessionToken}"`, 'content-encoding': 'gzip'
      })
      // The drivers read errors from a 200 with success:false; any other status loses the message.
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ success: false, code: '000900', message: expect.stringContaining(reason), data: { errorCode: '000900', sqlState: '42601' } })
      expect(await eventOf(res.requestId)).toMatchObject({ outcome: 'error', errorCode: 'SLUICE_BAD_REQUEST', frontEnd: 'snowflake-connector' })
      expect(gw.snowflake.queryRequests.length).toBe(before)
    })

    it('invalid bytes in a login body: refused in the connector shape', async () => {
      const res = await post('/session/v1/login-request', Buffer.concat([Buffer.from('{"data":{"AUTHENTICATOR":"OAUTH","TOKEN":"'), Buffer.from(INVALID), Buffer.from('"}}')]), {})
      expect(res.body).toMatchObject({ success: false, code: '000900', message: expect.stringContaining('not valid UTF-8') })
    })

    it('snowflake-sdk: a statement with a lone surrogate is refused and the agent is told why', async () => {
      const before = gw.snowflake.queryRequests.length
      await expect(runSdk(sdk, 'SELECT \'\udce9\' AS x')).rejects.toThrow(/lone UTF-16 surrogate/)
      expect(gw.snowflake.queryRequests.length).toBe(before)
    })

    it('snowflake-sdk: valid non-ASCII text reaches the upstream unchanged', async () => {
      await runSdk(sdk, NON_ASCII).catch(() => undefined) // the stub does not know the statement
      expect(gw.snowflake.queryRequests.map((r) => r.sqlText)).toContain(NON_ASCII)
    })
  })

  describe('BigQuery REST v2', () => {
    const path = `/bigquery/v2/projects/${BQ_PROJECT}/queries`

    it.each([
      ['invalid bytes', jsonWithBytes('query', INVALID), 'not valid UTF-8'],
      ['a lone surrogate escape', Buffer.from(LONE_SURROGATE_JSON('query')), 'lone UTF-16 surrogate']
    ])('%s: 400 in Google\'s error shape, recorded, never upstream', async (_what, body, reason) => {
      const res = await post(path, body, { authorization: `Bearer ${bearer}` })
      expect(res.status).toBe(400)
      expect(res.body).toMatchObject({
        error: { code: 400, status: 'INVALID_ARGUMENT', message: expect.stringContaining(reason), errors: [{ reason: 'invalid', domain: 'global' }] }
      })
      expect(await eventOf(res.requestId)).toMatchObject({ outcome: 'error', errorCode: 'SLUICE_BAD_REQUEST', frontEnd: 'bigquery' })
      expect(gw.bigquery.bodies).toEqual([])
    })

    it('@google-cloud/bigquery: a query with a lone surrogate is refused with the reason', async () => {
      const authClient = new OAuth2Client()
      authClient.setCredentials({ access_token: bearer })
      const bq = new BigQuery({ projectId: BQ_PROJECT, apiEndpoint: gw.url, authClient })
      await expect(bq.query({ query: 'SELECT \'\udce9\' AS x' })).rejects.toThrow(/lone UTF-16 surrogate/)
      expect(gw.bigquery.bodies).toEqual([])
    })

    it('valid non-ASCII text, raw and as escaped surrogate pairs, reaches the upstream unchanged', async () => {
      // Python's json.dumps escapes 😀 as the pair \ud83d\ude00: a pair is valid text.
      const escaped = JSON.stringify({ query: NON_ASCII }).replace('😀', '\\ud83d\\ude00')
      for (const body of [JSON.stringify({ query: NON_ASCII }), escaped]) {
        const res = await post(path, body, { authorization: `Bearer ${bearer}` })
        expect(res.status).toBe(200)
      }
      const sent = gw.bigquery.bodies.map((b) => (JSON.parse(b.toString('utf8')) as { query?: string }).query)
      expect(sent).toEqual([NON_ASCII, NON_ASCII])
    })
  })
})
