// SQL API v2 behaviours that need a statement that keeps running, which fakesnow cannot produce:
// the upstream stub answers 333333 for as long as a test wants (it stands in for a long query,
// per statement.js buildResultRequestCallback), so Sluice's 202, cancel and timeout paths show.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'N', type: 'fixed', scale: 0, precision: 38 }]

describe('SQL API v2 long-running statements (upstream stub)', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  async function call (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Record<string, unknown> }> {
    const res = await request(`${gw.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT SOON', { rowtype: ROWTYPE, rowset: [['7']], pollsBeforeResult: 4 })
    stub.statements.set('SELECT NEVER', { rowtype: ROWTYPE, rowset: [['0']], pollsBeforeResult: 1_000_000 })
    stub.statements.set('SELECT CAPPED', { rowtype: ROWTYPE, rowset: [['1'], ['2'], ['3']] })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 0.1 } },
      // A rule with limits, as the policy stage gives them, for statements that mention CAPPED.
      stages: {
        decide: {
          name: 'decide',
          enforcing: true,
          decide: (statement) => ({
            effect: 'allow',
            ruleId: 'agents-capped',
            reason: 'allowed',
            limits: statement.sql.includes('CAPPED') ? { maxRows: 2, statementTimeoutSeconds: 30 } : {}
          })
        }
      }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json', 'user-agent': 'sqlapi-stub-test/1.0' }
  })

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  it('answers 202 + statementStatusUrl when a synchronous statement outlasts the wait, then 200', async () => {
    const res = await call('POST', '/api/v2/statements', { statement: 'SELECT SOON' })
    expect(res.status).toBe(202)
    expect(res.body).toMatchObject({ code: '333334', statementStatusUrl: `/api/v2/statements/${String(res.body.statementHandle)}` })
    let status = res
    while (status.status === 202) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      status = await call('GET', String(res.body.statementStatusUrl))
    }
    expect(status.status).toBe(200)
    expect(status.body.data).toEqual([['7']])
  })

  it('cancels a running statement (200 CancelStatus), after which its status is 422', async () => {
    const res = await call('POST', '/api/v2/statements?async=true', { statement: 'SELECT NEVER' })
    const handle = String(res.body.statementHandle)
    const cancel = await call('POST', `/api/v2/statements/${handle}/cancel`)
    expect(cancel.status).toBe(200)
    expect(cancel.body).toMatchObject({ statementHandle: handle, message: 'successfully canceled' })
    const after = await call('GET', `/api/v2/statements/${handle}`)
    expect(after.status).toBe(422)
    expect(after.body).toMatchObject({ code: '000604', statementHandle: handle })
  })

  it('cancels at the request timeout and answers 408', async () => {
    const res = await call('POST', '/api/v2/statements?async=true', { statement: 'SELECT NEVER', timeout: 1 })
    await new Promise((resolve) => setTimeout(resolve, 1300))
    const after = await call('GET', String(res.body.statementStatusUrl))
    expect(after.status).toBe(408)
    expect(after.body).toMatchObject({ code: '000630', statementHandle: res.body.statementHandle })
  })

  it('reuses pooled upstream sessions for statements of the same context', async () => {
    stub.statements.set('SELECT NOW', { rowtype: ROWTYPE, rowset: [['1']] })
    await call('POST', '/api/v2/statements', { statement: 'SELECT NOW' })
    const logins = stub.logins
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/v2/statements', { statement: 'SELECT NOW' })).status).toBe(200)
    expect(stub.logins).toBe(logins)
  })

  it('applies the deciding rule\'s limits: a statement timeout upstream and a row cap', async () => {
    const res = await call('POST', '/api/v2/statements', { statement: 'SELECT CAPPED', timeout: 60 })
    expect(res.status).toBe(200)
    expect(res.body.data).toEqual([['1'], ['2']])
    const sent = stub.queryRequests.find((q) => q.sqlText === 'SELECT CAPPED')
    expect(sent?.parameters).toMatchObject({ STATEMENT_TIMEOUT_IN_SECONDS: 30 })
  })

  it('treats a repeated requestId as a retry of the first submission', async () => {
    const requestId = '3f1f9a4e-8a53-4f55-9d1e-0a3c5e6a7b8c'
    const first = await call('POST', `/api/v2/statements?async=true&requestId=${requestId}`, { statement: 'SELECT SOON' })
    const again = await call('POST', `/api/v2/statements?requestId=${requestId}`, { statement: 'SELECT SOON' })
    expect(again.body.statementHandle).toBe(first.body.statementHandle)
  })
})
