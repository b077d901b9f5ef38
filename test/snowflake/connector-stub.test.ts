// The connector front end against the loopback upstream stub (test/support/snowflake-upstream-
// stub.ts), for the paths fakesnow does not implement. Each test says what the stub stands in for.
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rowsFromArrow } from '../../src/warehouses/snowflake/arrow.js'
import type { RowTypeEntry } from '../../src/warehouses/snowflake/query-data.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { idEmailArrow } from '../support/snowflake-arrow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38, nullable: false }, { name: 'EMAIL', type: 'text', nullable: true }]
const ALL = [{ ID: 1, EMAIL: 'a@example.com' }, { ID: 2, EMAIL: 'b@example.com' }, { ID: 3, EMAIL: 'c@example.com' }, { ID: 4, EMAIL: null }]

describe('connector front end against the upstream stub (chunks, Arrow, 333333, 390112)', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let conn: SdkConnection

  beforeAll(async () => {
    stub = await startUpstreamStub()
    // Stands in for a large JSON result still running at first: 333333 twice, then an inline
    // row and two chunks in cloud storage that need the qrmk SSE-C headers.
    stub.statements.set('SELECT BIG', {
      rowtype: ROWTYPE,
      rowset: [['1', 'a@example.com']],
      pollsBeforeResult: 2,
      chunks: [{ body: '["2","b@example.com"],["3","c@example.com"]', rowCount: 2 }, { body: '["4",null]', rowCount: 1 }]
    })
    // A chunk whose last row is not JSON, after more rows than one slice holds: the slices
    // before it are parsed and masked before the bad one is met.
    const rows = Array.from({ length: 3000 }, (_, i) => JSON.stringify([String(i + 2), `torn${i}@example.com`])).join(',')
    stub.statements.set('SELECT TORN', { rowtype: ROWTYPE, rowset: [['1', 'a@example.com']], chunks: [{ body: `${rows},[tru]`, rowCount: 3001 }] })
    // Stands in for Snowflake's Arrow format: rowsetBase64 inline plus Arrow chunks.
    stub.statements.set('SELECT ARROW', {
      rowtype: ROWTYPE,
      rowsetBase64: Buffer.from(idEmailArrow([[1n, 'a@example.com']])).toString('base64'),
      chunks: [{ body: Buffer.from(idEmailArrow([[2n, 'b@example.com'], [3n, 'c@example.com'], [4n, null]])), rowCount: 3 }]
    })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'upstream-secret', partitionRows: 2 } }
    })
    conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice') })
  })

  afterAll(async () => {
    if (conn !== undefined) await destroySdk(conn)
    await gw?.close()
    await stub?.close()
  })

  it('follows upstream 333333 polls and downloads the qrmk chunks itself', async () => {
    const { rows } = await runSdk(conn, 'SELECT BIG')
    expect(rows).toEqual(ALL)
    expect(stub.requests.filter((r) => r.startsWith('GET /stage/results/')).length).toBe(2)
  })

  it('decodes Arrow (inline and chunks) and serves JSON that snowflake-sdk reads', async () => {
    const { rows } = await runSdk(conn, 'SELECT ARROW')
    expect(rows).toEqual(ALL)
  })

  it('renews the upstream session on 390112 without the client noticing', async () => {
    const renewals = stub.renewals
    stub.expireSessionToken()
    const { rows } = await runSdk(conn, 'SELECT BIG')
    expect(rows).toHaveLength(4)
    expect(stub.renewals).toBe(renewals + 1)
  })

  describe('raw protocol', () => {
    let token: string
    const post = async (path: string, body: unknown, auth?: string): Promise<Record<string, unknown>> => {
      const res = await request(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: `Snowflake Token="${auth}"` }) },
        body: JSON.stringify(body)
      })
      return await res.body.json() as Record<string, unknown>
    }

    beforeAll(async () => {
      const login = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await gw.token('alice') } })
      token = String((login.data as Record<string, unknown>).token)
      expect(token).toMatch(/^sluice-st-/)
      // Nothing of the upstream session or credential reaches the client.
      const text = JSON.stringify(login)
      for (const secret of ['upstream-secret', '"st-', '"mt-', stub.url]) expect(text).not.toContain(secret)
    })

    it('rewrites chunk URLs to Sluice with a Sluice chunk token; nothing points at cloud storage', async () => {
      const res = await post('/queries/v1/query-request', { sqlText: 'SELECT BIG' }, token)
      const text = JSON.stringify(res)
      expect(text).not.toContain(stub.url)
      expect(text).not.toContain('qrmk')
      expect(text).not.toContain('x-amz-')
      const data = res.data as { queryId: string, chunks: Array<{ url: string, rowCount: number }>, chunkHeaders: Record<string, string>, rowset: unknown[] }
      // The upstream's own pages: its inline row, then each of its chunks, fetched when asked for.
      expect(data.rowset).toHaveLength(1)
      expect(data.chunks.map((c) => c.rowCount)).toEqual([2, 1])
      expect(data.chunks[0]?.url.startsWith(`${gw.url}/sluice/snowflake/chunks/${data.queryId}/`)).toBe(true)

      const url = data.chunks[0]?.url ?? ''
      const ok = await request(url, { headers: data.chunkHeaders })
      expect(ok.statusCode).toBe(200)
      expect(await ok.body.text()).toBe('["2","b@example.com"],["3","c@example.com"]')
      expect((await request(url)).statusCode).toBe(403)
      expect((await request(url, { headers: { 'x-sluice-chunk-token': `${Math.floor(Date.now() / 1000) - 1}.forged` } })).statusCode).toBe(403)
      // A token is bound to its query: it opens no other query's chunks.
      const other = await post('/queries/v1/query-request', { sqlText: 'SELECT ARROW' }, token)
      const otherUrl = (other.data as { chunks: Array<{ url: string }> }).chunks[0]?.url ?? ''
      expect((await request(otherUrl, { headers: data.chunkHeaders })).statusCode).toBe(403)

      // GET /queries/{id}/result hands out refreshed chunk URLs and a fresh token, still Sluice's.
      const again = await request(`${gw.url}/queries/${data.queryId}/result`, { headers: { authorization: `Snowflake Token="${token}"` } })
      const refreshed = (await again.body.json() as { data: { chunks: Array<{ url: string }>, chunkHeaders: Record<string, string> } }).data
      expect(refreshed.chunks[0]?.url).toBe(url)
      expect((await request(url, { headers: refreshed.chunkHeaders })).statusCode).toBe(200)

      const events = await gw.app.recorder.listEvents({ limit: 1000 })
      expect(events.filter((e) => e.route === '/sluice/snowflake/chunks/:id/:n' && e.principalSubject === 'alice').length).toBeGreaterThanOrEqual(2)
    })

    it('answers a chunk the upstream sent torn with a 503 that holds none of its rows, recorded as no rows sent', async () => {
      const res = await post('/queries/v1/query-request', { sqlText: 'SELECT TORN' }, token)
      const data = res.data as { chunks: Array<{ url: string }>, chunkHeaders: Record<string, string> }
      const chunk = await request(data.chunks[0]?.url ?? '', { headers: data.chunkHeaders })
      expect(chunk.statusCode).toBe(503)
      const body = await chunk.body.text()
      expect(body).toContain('ServiceUnavailable')
      expect(body).not.toMatch(/torn\d+|"2"/)
      const events = await gw.app.recorder.listEvents({ limit: 1000 })
      const served = events.filter((e) => e.route === '/sluice/snowflake/chunks/:id/:n' && e.statusCode === 503)
      expect(served).toHaveLength(1)
      expect(served[0]?.rowsReturned ?? 0).toBe(0)
      // The upstream's failure, as on the inline and BigQuery paths, not an error of the gateway's own.
      expect(served[0]?.errorCode).toBe('SLUICE_UPSTREAM_FAILED')
    })

    it('answers 333333 with a Sluice getResultUrl while a statement is still running', async () => {
      stub.statements.set('SELECT VERY SLOW', { rowtype: ROWTYPE, rowset: [['9', 'z@example.com']], pollsBeforeResult: 1000 })
      const settings = gw.app.snowflake.connections[0]!
      const wait = settings.syncWaitSeconds
      settings.syncWaitSeconds = 0.2
      try {
        const res = await post('/queries/v1/query-request', { sqlText: 'SELECT VERY SLOW' }, token)
        expect(res).toMatchObject({ success: true, code: '333333' })
        const data = res.data as { queryId: string, getResultUrl: string }
        expect(data.getResultUrl).toBe(`/queries/${data.queryId}/result`)
        // abort-request stops it; the result then reports the cancellation.
        expect(await post(`/queries/${data.queryId}/abort-request`, {}, token)).toMatchObject({ success: true })
        const after = await request(`${gw.url}${data.getResultUrl}`, { headers: { authorization: `Snowflake Token="${token}"` } })
        expect(await after.body.json()).toMatchObject({ success: false, code: '000604' })
        // The warehouse is told to stop as well.
        await new Promise((resolve) => setTimeout(resolve, 300))
        expect(stub.requests.some((r) => /^POST \/queries\/01b0-stub-\d+\/abort-request$/.test(r))).toBe(true)
      } finally {
        settings.syncWaitSeconds = wait
      }
    })

    it('cancels by the client requestId (abort-request without a query id)', async () => {
      const settings = gw.app.snowflake.connections[0]!
      const wait = settings.syncWaitSeconds
      settings.syncWaitSeconds = 2
      try {
        const requestId = '6d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b'
        const pending = post(`/queries/v1/query-request?requestId=${requestId}`, { sqlText: 'SELECT VERY SLOW' }, token)
        await new Promise((resolve) => setTimeout(resolve, 100))
        expect(await post('/queries/v1/abort-request', { requestId }, token)).toMatchObject({ success: true })
        expect(await pending).toMatchObject({ success: false, code: '000604' })
      } finally {
        settings.syncWaitSeconds = wait
      }
    })

    it('serves re-encoded Arrow (inline and chunks) to a client that reads it', async () => {
      const login = await post('/session/v1/login-request', { data: { ACCOUNT_NAME: 'acme', AUTHENTICATOR: 'OAUTH', TOKEN: await gw.token('alice'), CLIENT_APP_ID: 'PythonConnector' } })
      const pyToken = String((login.data as Record<string, unknown>).token)
      const res = await post('/queries/v1/query-request', { sqlText: 'SELECT BIG' }, pyToken)
      const data = res.data as { queryResultFormat: string, rowsetBase64: string, rowtype: RowTypeEntry[], chunks: Array<{ url: string }>, chunkHeaders: Record<string, string> }
      expect(data.queryResultFormat).toBe('arrow')
      expect(rowsFromArrow(Buffer.from(data.rowsetBase64, 'base64'), data.rowtype)).toEqual([['1', 'a@example.com']])
      expect(data.chunks[0]?.url).toMatch(/\?format=arrow$/)
      const chunk = await request(data.chunks[0]?.url ?? '', { headers: data.chunkHeaders })
      expect(rowsFromArrow(Buffer.from(await chunk.body.arrayBuffer()), data.rowtype)).toEqual([['2', 'b@example.com'], ['3', 'c@example.com']])
    })

    it('accepts gzip-compressed query-request bodies', async () => {
      const res = await request(`${gw.url}/queries/v1/query-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Snowflake Token="${token}"` },
        body: gzipSync(JSON.stringify({ sqlText: 'SELECT ARROW' }))
      })
      expect(await res.body.json()).toMatchObject({ success: true, data: { total: 4 } })
    })

    it('answers heartbeat, telemetry and token renewal as Snowflake does', async () => {
      expect(await post('/session/heartbeat', {}, token)).toMatchObject({ success: true })
      expect(await post('/telemetry/send', { logs: [] }, token)).toMatchObject({ success: true })
      expect(await post('/session/token-request', { requestType: 'RENEW', oldSessionToken: token }, 'sluice-mt-forged')).toMatchObject({ success: false, code: '390114' })
    })
  })
})
