// Result capture per connection through the SQL API v2, first answer and later partitions (the
// pages served from the stored first page and from upstream chunks): a connection with capture
// off writes every event without a capture; another connection still captures.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getEvent, searchEvents } from '../../src/recording/search.js'
import { maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38, nullable: false }, { name: 'EMAIL', type: 'text', nullable: true }]

describe('SQL API result capture per connection', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let token: string

  beforeAll(async () => {
    stub = await startUpstreamStub()
    // Two rows inline, two in a chunk: with partitionRows 2, partition 1 is the chunk.
    stub.statements.set('SELECT PAGED', {
      rowtype: ROWTYPE,
      rowset: [['1', 'a@example.com'], ['2', 'b@example.com']],
      chunks: [{ body: '["3","c@example.com"],["4",null]', rowCount: 2 }]
    })
    const upstream = { kind: 'snowflake', url: stub.url, account: 'acme', user: 'svc', password: 'pw', partitionRows: 2 }
    gw = await startSnowflakeGateway({
      connections: {
        kept: { ...upstream, default: true },
        uncaptured: { ...upstream, recording: { captureResults: false } }
      },
      stages: { mask: maskColumns(['EMAIL']) }
    })
    token = await gw.token('alice')
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  async function get (path: string): Promise<{ status: number, body: Record<string, unknown>, requestId: string }> {
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown>, requestId: String(res.headers['x-request-id']) }
  }

  async function eventOf (requestId: string) {
    const events = (await searchEvents(gw.store, { requestId })).items.filter((e) => e.requestId === requestId && e.phase !== 'admitted')
    expect(events).toHaveLength(1)
    return (await getEvent(gw.store, events[0]!.id))!
  }

  /** The events of the first answer and of partitions 0 (the stored first page) and 1 (the chunk). */
  async function roundTrips (connection: string) {
    const res = await request(`${gw.url}/snowflake/${connection}/api/v2/statements`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ statement: 'SELECT PAGED' })
    })
    expect(res.statusCode).toBe(200)
    const body = await res.body.json() as { statementHandle: string, data: unknown[][] }
    expect(body.data).toEqual([['1', '****'], ['2', '****']])
    const first = await eventOf(String(res.headers['x-request-id']))
    const page0 = await get(`/api/v2/statements/${body.statementHandle}?partition=0`)
    const page1 = await get(`/api/v2/statements/${body.statementHandle}?partition=1`)
    expect(page1.status).toBe(200)
    expect(page1.body.data).toEqual([['3', '****'], ['4', null]])
    return [first, await eventOf(page0.requestId), await eventOf(page1.requestId)]
  }

  it('writes the events of a connection with capture off, without a capture', async () => {
    const events = await roundTrips('uncaptured')
    for (const e of events) {
      expect(e).toMatchObject({ connection: 'uncaptured', outcome: 'ok', rowsReturned: 2, hasResult: false, resultDigest: null })
      expect(e.result).toBeNull()
    }
  })

  it('captures for the other connection, every page', async () => {
    const [first, page0, page1] = await roundTrips('kept')
    expect(first).toMatchObject({ connection: 'kept', hasResult: true })
    expect(first!.result?.rows).toEqual([['1', '****'], ['2', '****']])
    expect(page0!.result?.rows).toEqual([['1', '****'], ['2', '****']])
    expect(page1!.result?.rows).toEqual([['3', '****'], ['4', null]])
  })
})
