// Snowflake's estimate of a held statement, as its approval's preview: EXPLAIN USING JSON on the
// statement's own upstream session, GlobalStats read into bytes and partitions. The plan parser
// over the shapes a plan can take (and what is not one); a held SQL API statement against the
// upstream stub answering EXPLAIN as Snowflake does (fakesnow cannot: its parser refuses
// EXPLAIN USING JSON, and snowflake-wait.test.ts shows such an approval simply has no preview).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseExplain } from '../../src/warehouses/snowflake/estimate.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'
import { HOLD_POLICY, adminOf, pendingApproval } from './snowflake-fixtures.js'

/** A plan as Snowflake's EXPLAIN USING JSON prints it: GlobalStats and fragments of operations. */
const PLAN = {
  GlobalStats: { partitionsTotal: 120, partitionsAssigned: 7, bytesAssigned: 52428800 },
  Operations: [[
    { id: 0, operation: 'Result', expressions: ['CUSTOMERS.ID', 'CUSTOMERS.EMAIL'] },
    { id: 1, parentOperators: [0], operation: 'Filter', expressions: ['CUSTOMERS.ID = 1'] },
    { id: 2, parentOperators: [1], operation: 'TableScan', objects: ['SHOP.PUBLIC.CUSTOMERS'], expressions: ['ID', 'EMAIL'], partitionsAssigned: 7, partitionsTotal: 120, bytesAssigned: 52428800 }
  ]]
}

describe('parseExplain', () => {
  it('reads GlobalStats and the tables the scans name', () => {
    expect(parseExplain(JSON.stringify(PLAN))).toEqual({
      source: 'snowflake-explain', bytes: 52428800, partitionsTotal: 120, partitionsAssigned: 7, detail: { tables: ['SHOP.PUBLIC.CUSTOMERS'] }
    })
  })

  it('keeps the counts a plan has and drops values that are not counts', () => {
    expect(parseExplain(JSON.stringify({ GlobalStats: { partitionsTotal: 3, partitionsAssigned: -1, bytesAssigned: 'many' } })))
      .toEqual({ source: 'snowflake-explain', partitionsTotal: 3, detail: { tables: [] } })
  })

  it.each([
    ['not JSON', 'EXPLAIN output'],
    ['JSON null', 'null'],
    ['no GlobalStats', JSON.stringify({ Operations: PLAN.Operations })],
    ['GlobalStats without counts', JSON.stringify({ GlobalStats: { note: 'x' } })],
    ['GlobalStats not an object', JSON.stringify({ GlobalStats: 5 })]
  ])('is no estimate for %s', (_what, text) => {
    expect(parseExplain(text)).toBeUndefined()
  })
})

describe('a held statement carries Snowflake\'s estimate as its preview', { timeout: 120_000 }, () => {
  const SQL = 'SELECT ID, EMAIL FROM SHOP.PUBLIC.CUSTOMERS WHERE ID = 1'
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-estimate-'))
    await writeFile(join(dir, 'policy.yaml'), HOLD_POLICY)
    stub = await startUpstreamStub()
    stub.statements.set(`EXPLAIN USING JSON ${SQL}`, { rowtype: [{ name: 'content', type: 'text', nullable: true }], rowset: [[JSON.stringify(PLAN)]] })
    stub.statements.set(SQL, { rowtype: ['ID', 'EMAIL'].map((name) => ({ name, type: name === 'ID' ? 'fixed' : 'text', scale: 0, precision: 38, nullable: true, database: 'SHOP', schema: 'PUBLIC', table: 'CUSTOMERS' })), rowset: [['1', 'ada@example.com']] })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: 'configured',
      policiesDirectory: dir,
      groupRoles: { approvers: ['approver'] },
      approvals: {}
    })
  }, 120_000)

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('asks EXPLAIN once, before anything runs, and shows it to the approver', async () => {
    const token = await gw.token('alice')
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' }
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: SQL }) })
    expect(res.statusCode).toBe(202)
    const held = await res.body.json() as Record<string, string>
    const admin = adminOf(gw.url, await gw.idp.userToken({ subject: 'carol', groups: ['approvers'] }))
    const approval = await pendingApproval(admin, SQL)
    expect(approval.preview).toEqual({ source: 'snowflake-explain', bytes: 52428800, partitionsTotal: 120, partitionsAssigned: 7, detail: { tables: ['SHOP.PUBLIC.CUSTOMERS'] } })
    expect(stub.queryLog.map((q) => q.sqlText).filter((s) => s.includes('CUSTOMERS'))).toEqual([`EXPLAIN USING JSON ${SQL}`])
    // Asked before the policy decided, on the client's own session: never more than one statement.
    expect(stub.queryLog.find((q) => q.sqlText.startsWith('EXPLAIN'))?.parameters).toMatchObject({ MULTI_STATEMENT_COUNT: 1 })

    // Polls of the pending approval ask nothing more of the warehouse; approved, it runs once.
    const poll = await request(`${gw.url}${held.statementStatusUrl}`, { headers })
    expect(poll.statusCode).toBe(202)
    await poll.body.dump()
    await admin.post(`/approvals/${approval.id as string}/approve`, {})
    const done = await request(`${gw.url}${held.statementStatusUrl}`, { headers })
    expect(done.statusCode).toBe(200)
    expect((await done.body.json() as { data: unknown }).data).toEqual([['1', '****']])
    expect(stub.queryLog.map((q) => q.sqlText).filter((s) => s.includes('CUSTOMERS'))).toEqual([`EXPLAIN USING JSON ${SQL}`, SQL])
  })
})
