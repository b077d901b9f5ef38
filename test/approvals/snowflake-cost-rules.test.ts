// A cost-aware rule on Snowflake, end to end through the SQL API: the estimate is EXPLAIN USING
// JSON on the statement's upstream session (the stub answers it as Snowflake does; fakesnow's
// parser refuses it). A statement whose plan says more bytes than the rule's limit is held (its
// approval shows the estimate) and nothing runs; a smaller one is not the rule's and runs. Where
// EXPLAIN fails there is no estimate: `onNoEstimate: deny` refuses, `hold` holds.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'
import { adminOf, pendingApproval, type Admin } from './snowflake-fixtures.js'

const GIB = 2 ** 30
const POLICY = `version: 1
rules:
  - id: hold-big-order-scans
    effect: require_approval
    match: { roles: [agent], tables: ['*.*.orders'], estimatedBytesOver: 10GiB }
    onNoEstimate: deny
    approval: { approvers: { roles: [approver] } }
  - id: hold-big-event-scans
    effect: require_approval
    match: { roles: [agent], tables: ['*.*.events'], estimatedBytesOver: 10GiB }
    onNoEstimate: hold
    approval: { approvers: { roles: [approver] } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
`

/** Snowflake's EXPLAIN USING JSON answer for a plan that would scan `bytes`. */
const plan = (bytes: number, table: string): unknown[][] => [[JSON.stringify({
  GlobalStats: { partitionsTotal: 100, partitionsAssigned: 10, bytesAssigned: bytes },
  Operations: [[{ id: 0, operation: 'Result' }, { id: 1, parentOperators: [0], operation: 'TableScan', objects: [table], bytesAssigned: bytes }]]
})]]

describe('a cost-aware rule on Snowflake\'s EXPLAIN estimate', { timeout: 120_000 }, () => {
  const BIG = 'SELECT ID, AMOUNT FROM SHOP.PUBLIC.ORDERS'
  const SMALL = 'SELECT ID, AMOUNT FROM SHOP.PUBLIC.ORDERS WHERE ID = 1'
  const UNMEASURED_ORDERS = 'SELECT ID FROM SHOP.PUBLIC.ORDERS WHERE ID = 2'
  const UNMEASURED_EVENTS = 'SELECT ID FROM SHOP.PUBLIC.EVENTS WHERE ID = 2'
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let dir: string
  let admin: Admin
  let headers: Record<string, string>

  const rowsOf = (table: string, rowset: unknown[][]): { rowtype: Array<Record<string, unknown>>, rowset: unknown[][] } => ({
    rowtype: ['ID', 'AMOUNT'].map((name) => ({ name, type: 'fixed', scale: 0, precision: 38, nullable: true, database: 'SHOP', schema: 'PUBLIC', table })),
    rowset
  })
  const explainRowtype = [{ name: 'content', type: 'text', nullable: true }]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-cost-rules-'))
    await writeFile(join(dir, 'policy.yaml'), POLICY)
    stub = await startUpstreamStub()
    stub.statements.set(`EXPLAIN USING JSON ${BIG}`, { rowtype: explainRowtype, rowset: plan(50 * GIB, 'SHOP.PUBLIC.ORDERS') })
    stub.statements.set(`EXPLAIN USING JSON ${SMALL}`, { rowtype: explainRowtype, rowset: plan(2 ** 20, 'SHOP.PUBLIC.ORDERS') })
    // No EXPLAIN answer for the unmeasured ones: the stub fails it as an unknown statement.
    for (const sql of [BIG, SMALL, UNMEASURED_ORDERS]) stub.statements.set(sql, rowsOf('ORDERS', [['1', '10']]))
    stub.statements.set(UNMEASURED_EVENTS, rowsOf('EVENTS', [['2', '20']]))
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: 'configured',
      policiesDirectory: dir,
      groupRoles: { approvers: ['approver'] },
      approvals: {}
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json', accept: 'application/json' }
    admin = adminOf(gw.url, await gw.idp.userToken({ subject: 'carol', groups: ['approvers'] }))
  }, 120_000)
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const submit = async (statement: string): Promise<{ status: number, body: Record<string, any> }> => {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement }) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, any> }
  }
  const ran = (sql: string): number => stub.queryLog.filter((q) => q.sqlText === sql).length

  it('holds a statement whose plan reads more than the limit, showing the estimate, and runs nothing', async () => {
    const held = await submit(BIG)
    expect(held.status).toBe(202)
    expect(held.body.message).toMatch(/^waiting for approval .* \(rule hold-big-order-scans\)$/)
    const approval = await pendingApproval(admin, BIG)
    expect(approval).toMatchObject({ ruleId: 'hold-big-order-scans', preview: { source: 'snowflake-explain', bytes: 50 * GIB } })
    expect(approval.reason).toContain(`would read 50 GiB (${50 * GIB} bytes) by the warehouse's estimate, over the rule's 10 GiB`)
    expect(ran(`EXPLAIN USING JSON ${BIG}`)).toBe(1)
    expect(ran(BIG)).toBe(0)
  })

  it('lets a statement whose plan reads less through the next rule: it runs at once', async () => {
    const done = await submit(SMALL)
    expect(done).toMatchObject({ status: 200, body: { data: [['1', '10']] } })
    expect(ran(`EXPLAIN USING JSON ${SMALL}`)).toBe(1)
    expect(ran(SMALL)).toBe(1)
  })

  it('with no estimate (EXPLAIN fails), onNoEstimate deny refuses it and nothing runs', async () => {
    const refused = await submit(UNMEASURED_ORDERS)
    expect(refused.status).toBe(422)
    expect(refused.body.message).toContain('the warehouse gave no estimate of the bytes it would read, and the rule guards statements over 10 GiB')
    expect(ran(`EXPLAIN USING JSON ${UNMEASURED_ORDERS}`)).toBe(1)
    expect(ran(UNMEASURED_ORDERS)).toBe(0)
  })

  it('with no estimate, onNoEstimate hold holds it for approval, with no preview, and nothing runs', async () => {
    const held = await submit(UNMEASURED_EVENTS)
    expect(held.status).toBe(202)
    expect(held.body.message).toMatch(/^waiting for approval .* \(rule hold-big-event-scans\)$/)
    const approval = await pendingApproval(admin, UNMEASURED_EVENTS)
    expect(approval.ruleId).toBe('hold-big-event-scans')
    expect(approval.preview).toBeUndefined()
    expect(ran(UNMEASURED_EVENTS)).toBe(0)
  })
})
