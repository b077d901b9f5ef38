// A held statement through the unchanged Python connector (snowflake-connector-python), which
// keeps polling getResultUrl while Sluice answers 333333: the test decides each approval while
// the script's execute() waits. Approved → the masked rows of exactly the approved binds (run
// once); denied → ProgrammingError naming approver and reason; expired → the expiry error;
// cancelled by the client (abort_query) → the approval is withdrawn.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { runPython } from '../support/snowflake-python.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { spySnowflakeStatements } from '../support/upstream-spy.js'
import { HOLD_POLICY, adminOf, expireApproval, pendingApproval } from './snowflake-fixtures.js'

type Outcome = { rows?: string[][], aborted?: boolean, status?: string, stillRunning?: boolean, error?: { type: string, errno: number | null, sqlstate: string | null, msg: string } }

describe('a held statement through snowflake-connector-python', { timeout: 300_000 }, () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-python-'))
    await writeFile(join(dir, 'policy.yaml'), HOLD_POLICY)
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, syncWaitSeconds: 1 } },
      stages: 'configured',
      policiesDirectory: dir,
      groupRoles: { approvers: ['approver'] },
      approvals: {}
    })
  }, 600_000)

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('waits while held and gets the approved result, the denial or the expiry', async () => {
    const sent = spySnowflakeStatements()
    const admin = adminOf(gw.url, await gw.idp.userToken({ subject: 'carol', groups: ['approvers'] }))
    const scenarios = [
      { name: 'approved', sql: 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = ?', params: [2] },
      { name: 'denied', sql: 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 3' },
      { name: 'expired', sql: 'SELECT NAME, EMAIL FROM CUSTOMERS WHERE ID = 1' },
      // Nobody decides: the client cancels it by its query id, which withdraws the approval.
      { name: 'cancelled', sql: 'SELECT ID, NAME, EMAIL FROM CUSTOMERS WHERE ID = 2', abort: true }
    ]
    const script = runPython('test/approvals/python/held_client.py', { port: gw.port, token: await gw.token('alice'), scenarios }, 120_000)
    script.catch(() => {})
    // The script runs them one after another; each waits for its decision here.
    const approved = await pendingApproval(admin, scenarios[0]!.sql)
    expect(approved).toMatchObject({ frontEnd: 'snowflake-connector', ruleId: 'hold-customer-reads' })
    expect(sent).not.toContain(scenarios[0]!.sql)
    await admin.post(`/approvals/${approved.id as string}/approve`, { reason: 'ticket 9' })
    const denied = await pendingApproval(admin, scenarios[1]!.sql)
    await admin.post(`/approvals/${denied.id as string}/deny`, { reason: 'too broad' })
    const expired = await pendingApproval(admin, scenarios[2]!.sql)
    await expireApproval(gw.store, expired.id as string)

    const out = await script as Record<string, Outcome>
    expect(out.approved).toMatchObject({ rows: [['2', '****']] })
    expect(out.denied?.error).toMatchObject({ type: 'ProgrammingError', errno: 3001, sqlstate: '42501' })
    expect(out.denied?.error?.msg).toContain(`approval ${denied.id as string} denied by carol: too broad`)
    expect(out.expired?.error?.msg).toContain(`approval ${expired.id as string} expired after 30 min; ask again or change the statement`)
    // Monitoring reads the held statement as queued, which the connector counts as still running.
    expect(out.cancelled).toMatchObject({ status: 'QUEUED', stillRunning: true, aborted: true })
    const withdrawn = (await admin.get('/approvals?status=withdrawn')).body.items as Array<Record<string, any>>
    expect(withdrawn.map((a) => a.sql)).toContain(scenarios[3]!.sql)
    // Exactly the approved statement ran, once; the others never left.
    expect(sent.filter((s) => s === scenarios[0]!.sql)).toHaveLength(1)
    expect(sent.filter((s) => scenarios.slice(1).some((c) => c.sql === s))).toEqual([])
  })
})
