// The Snowflake front ends under the shipped default policy (policies/default.yaml) with the
// real SQL analyzer: what an agent meets out of the box, through snowflake-sdk and SQL API v2.
// Reads pass; DDL and a DROP hidden behind a SELECT are denied; writes wait for an approval,
// which is refused until approvals exist; every decision is a session event with its rule.
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'

const SHIPPED_POLICIES = fileURLToPath(new URL('../../policies', import.meta.url))

describe('Snowflake under the shipped default policy', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let token: string
  let sdk: SdkConnection

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: { 'snowflake-prod': { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE, schema: SEED_SCHEMA } },
      stages: 'configured',
      policiesDirectory: SHIPPED_POLICIES
    })
    token = await gw.token('agent-7') // group ai-agents → role agent
    sdk = await connectSdk({ accessUrl: gw.url, token, database: SEED_DATABASE, schema: SEED_SCHEMA })
  }, 600_000)

  afterAll(async () => {
    if (sdk !== undefined) await destroySdk(sdk)
    await gw?.close()
    await fakesnow?.close()
  })

  async function sqlApi (statement: string, parameters: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
    const res = await request(`${gw.url}/api/v2/statements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'policy-test/1.0' },
      body: JSON.stringify({ statement, database: SEED_DATABASE, schema: SEED_SCHEMA, parameters })
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }

  it('lets an agent read through snowflake-sdk', async () => {
    const { rows } = await runSdk(sdk, 'SELECT ID, NAME FROM CUSTOMERS ORDER BY ID')
    expect(rows.map((r) => r.ID)).toEqual([1, 2, 3])
  })

  it('denies DDL through snowflake-sdk with the rule id and what to do', async () => {
    const err = await runSdk(sdk, 'DROP TABLE CUSTOMERS').then(() => undefined, (e: Error) => e)
    expect(err?.message).toMatch(/^denied by rule deny-ddl-dcl: DDL \(DROP\) on sluice_test\.public\.customers .*not allowed for role agent on connection snowflake-prod/)
  })

  it('denies a DROP hidden after a SELECT through SQL API v2 in the spec\'s error shape', async () => {
    const res = await sqlApi('SELECT 1; DROP TABLE CUSTOMERS', { MULTI_STATEMENT_COUNT: '2' })
    expect(res.status).toBe(422)
    expect(String(res.body.message)).toMatch(/^denied by rule deny-ddl-dcl: .*statement 2 of 2/)
    // Nothing ran: the table is still there.
    const { rows } = await runSdk(sdk, 'SELECT COUNT(*) AS N FROM CUSTOMERS')
    expect(rows[0]?.N).toBe(3)
  })

  it('refuses a write that needs approval, never running it', async () => {
    const res = await sqlApi('DELETE FROM CUSTOMERS WHERE ID = 1')
    expect(res.status).toBe(422)
    expect(String(res.body.message)).toMatch(/^approval required by rule agents-writes-need-approval/)
    const { rows } = await runSdk(sdk, 'SELECT COUNT(*) AS N FROM CUSTOMERS')
    expect(rows[0]?.N).toBe(3)
  })

  it('records every decision, deny included, with its rule id', async () => {
    const events = await gw.store.query<{ rule_id: string | null, decision: string | null, outcome: string }>(
      // Completions and refusals: a statement that ran also has its admitted event.
      "select rule_id, decision, outcome from session_events where principal_subject = 'agent-7' and sql_text is not null and outcome <> 'admitted'")
    const byRule = (rule: string) => events.filter((e) => e.rule_id === rule)
    expect(byRule('deny-ddl-dcl').length).toBeGreaterThanOrEqual(2)
    expect(byRule('deny-ddl-dcl').every((e) => e.decision === 'deny' && e.outcome === 'denied')).toBe(true)
    expect(byRule('agents-writes-need-approval')).toEqual([expect.objectContaining({ decision: 'require_approval', outcome: 'denied' })])
    expect(byRule('agents-read-only').every((e) => e.decision === 'allow' && e.outcome === 'ok')).toBe(true)
  })
})
