// A held Snowflake statement waits inside the client's own protocol, end to end with the real
// parts: fakesnow upstream, the gateway's own stages (analyzer, policy engine with a
// require_approval rule, masking), approvals in a real Postgres store, OIDC tokens from the test
// provider and unchanged clients. snowflake-sdk and raw SQL API v2 here; the Python connector in
// snowflake-wait-python.test.ts; two gateways racing in snowflake-wait-replicas.test.ts.
// Approve → the same client call returns the masked, recorded result (run upstream once, with
// exactly its binds); deny → the error names approver and reason; expire → the expiry error;
// client cancel → the approval is withdrawn and nothing runs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { spySnowflakeStatements } from '../support/upstream-spy.js'
import { HOLD_POLICY, adminOf, expireApproval, pendingApproval, type Admin } from './snowflake-fixtures.js'

type Json = Record<string, any>

describe('a held Snowflake statement waits in its protocol (snowflake-sdk, SQL API v2)', { timeout: 240_000 }, () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let dir: string
  let agent: string
  let admin: Admin
  let sdk: SdkConnection
  let sent: string[]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-snowflake-'))
    await writeFile(join(dir, 'policy.yaml'), HOLD_POLICY)
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      // A short sync wait: each connector poll waits this long for a decision before 333333 again.
      connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, syncWaitSeconds: 1 } },
      stages: 'configured',
      policiesDirectory: dir,
      groupRoles: { approvers: ['approver'] },
      approvals: {}
    })
    // claude-code acting for alice: the approval names the human behind the agent.
    agent = await gw.idp.userToken({ subject: 'alice', groups: ['ai-agents'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    admin = adminOf(gw.url, await gw.idp.userToken({ subject: 'carol', groups: ['approvers'] }))
    sdk = await connectSdk({ accessUrl: gw.url, token: agent, database: SEED_DATABASE, schema: SEED_SCHEMA })
  }, 600_000)

  afterAll(async () => {
    if (sdk !== undefined) await destroySdk(sdk)
    await gw?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  beforeEach(() => { sent = spySnowflakeStatements() })

  const upstreamRuns = (sql: string): number => sent.filter((s) => s === sql).length

  describe('snowflake-sdk (333333 + getResultUrl)', () => {
    it('keeps polling while held, then returns the masked result of exactly the approved statement and binds, run once', async () => {
      const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = ?'
      const running = runSdk(sdk, sql, { binds: [1] })
      const approval = await pendingApproval(admin, sql)
      expect(approval).toMatchObject({ status: 'pending', chain: 'claude-code acting for alice', ruleId: 'hold-customer-reads', frontEnd: 'snowflake-connector' })
      // Nothing reached the warehouse while it waits. fakesnow refuses EXPLAIN USING JSON (a
      // syntax error), so the estimate was asked for and there is none: no preview, still held.
      expect(upstreamRuns(sql)).toBe(0)
      expect(sent).toContain(`EXPLAIN USING JSON ${sql}`)
      expect(approval.preview).toBeUndefined()
      expect((await admin.post(`/approvals/${approval.id as string}/approve`, { reason: 'ticket 7' })).status).toBe(200)
      const { rows } = await running
      expect(rows).toEqual([{ ID: 1, EMAIL: '****' }])
      expect(upstreamRuns(sql)).toBe(1)
      expect((await admin.get(`/approvals/${approval.id as string}`)).body.status).toBe('executed')
      // The trail: held while waiting, then the run released by the approval, its masked column counted.
      const events = await gw.store.query<{ outcome: string, approval_id: string | null, reason: string | null }>(
        'select outcome, approval_id, reason from session_events where approval_id = $1 order by id', [approval.id])
      expect(events.map((e) => e.outcome)).toContain('held')
      expect(events.some((e) => e.outcome === 'ok' && /released by approval .* \(approved by carol\)/.test(e.reason ?? ''))).toBe(true)
    })

    it('raises the denial, naming the approver and the reason, and never runs it', async () => {
      const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 2'
      const running = runSdk(sdk, sql).then(() => undefined, (e: Error) => e)
      const approval = await pendingApproval(admin, sql)
      expect((await admin.post(`/approvals/${approval.id as string}/deny`, { reason: 'not for this ticket' })).status).toBe(200)
      const err = await running
      expect(err?.message).toBe(`approval ${approval.id as string} denied by carol: not for this ticket`)
      expect(upstreamRuns(sql)).toBe(0)
    })

    it('raises the expiry once the approval has expired', async () => {
      const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = 3'
      const running = runSdk(sdk, sql).then(() => undefined, (e: Error) => e)
      const approval = await pendingApproval(admin, sql)
      await expireApproval(gw.store, approval.id as string)
      const err = await running
      expect(err?.message).toBe(`approval ${approval.id as string} expired after 30 min; ask again or change the statement`)
      expect(upstreamRuns(sql)).toBe(0)
    })

    it('withdraws the approval when the client cancels the statement', async () => {
      const sql = 'SELECT ID, NAME, EMAIL FROM CUSTOMERS WHERE ID = 1'
      let statement: { cancel: (cb: (err: unknown) => void) => void } | undefined
      const finished = new Promise<Error | undefined>((resolve) => {
        statement = sdk.execute({ sqlText: sql, complete: (err) => { resolve(err ?? undefined) } }) as never
      })
      const approval = await pendingApproval(admin, sql)
      await new Promise<void>((resolve, reject) => { statement!.cancel((err) => { err === undefined || err === null ? resolve() : reject(err) }) })
      const err = await finished
      expect(err?.message).toMatch(/cancel/i)
      expect((await admin.get(`/approvals/${approval.id as string}`)).body).toMatchObject({ status: 'withdrawn' })
      // Too late to approve it; nothing ran.
      expect((await admin.post(`/approvals/${approval.id as string}/approve`, {})).status).toBe(409)
      expect(upstreamRuns(sql)).toBe(0)
    })
  })

  describe('SQL API v2 (202 + statementStatusUrl)', () => {
    const api = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Json }> => {
      const res = await request(`${gw.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json', accept: 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) })
      })
      return { status: res.statusCode, body: await res.body.json() as Json }
    }
    const submit = async (statement: string, extra: Json = {}): Promise<{ status: number, body: Json }> =>
      await api('POST', '/api/v2/statements', { statement, database: SEED_DATABASE, schema: SEED_SCHEMA, ...extra })

    it('answers 202 waiting for approval, polls 202 while pending, then 200 with the masked result once approved', async () => {
      const sql = 'SELECT ID, EMAIL FROM CUSTOMERS WHERE ID = ?'
      const held = await submit(sql, { bindings: { 1: { type: 'FIXED', value: '2' } } })
      expect(held.status).toBe(202)
      const approval = await pendingApproval(admin, sql)
      expect(held.body).toMatchObject({
        code: '333334',
        message: `waiting for approval ${approval.id as string} (rule hold-customer-reads)`,
        statementHandle: expect.stringMatching(/^[0-9a-f-]{36}$/),
        statementStatusUrl: `/api/v2/statements/${held.body.statementHandle as string}`
      })
      const url = held.body.statementStatusUrl as string
      const still = await api('GET', url)
      expect(still).toMatchObject({ status: 202, body: { message: `waiting for approval ${approval.id as string} (rule hold-customer-reads)`, statementHandle: held.body.statementHandle } })
      expect(upstreamRuns(sql)).toBe(0)

      await admin.post(`/approvals/${approval.id as string}/approve`, {})
      const done = await api('GET', url)
      expect(done.status).toBe(200)
      expect(done.body).toMatchObject({ statementHandle: held.body.statementHandle, data: [['2', '****']] })
      expect(done.body.resultSetMetaData.rowType.map((c: Json) => c.name)).toEqual(['ID', 'EMAIL'])
      // Polled again: the same result, not a second run.
      expect((await api('GET', url)).body.data).toEqual([['2', '****']])
      expect(upstreamRuns(sql)).toBe(1)
    })

    it('answers a denial 422 with the approver and reason, on every later poll too', async () => {
      const sql = 'SELECT EMAIL FROM CUSTOMERS WHERE ID = 3'
      const held = await submit(sql, {})
      const approval = await pendingApproval(admin, sql)
      await admin.post(`/approvals/${approval.id as string}/deny`, { reason: 'use the reporting view' })
      const message = `approval ${approval.id as string} denied by carol: use the reporting view`
      const denied = await api('GET', held.body.statementStatusUrl as string)
      expect(denied).toMatchObject({ status: 422, body: { message, statementHandle: held.body.statementHandle } })
      expect(await api('GET', held.body.statementStatusUrl as string)).toMatchObject({ status: 422, body: { message } })
      expect(upstreamRuns(sql)).toBe(0)
    })

    it('answers an expired approval 422 with the expiry', async () => {
      const sql = 'SELECT NAME, EMAIL FROM CUSTOMERS WHERE ID = 3'
      const held = await submit(sql, { async: undefined })
      const approval = await pendingApproval(admin, sql)
      await expireApproval(gw.store, approval.id as string)
      expect(await api('GET', held.body.statementStatusUrl as string)).toMatchObject({
        status: 422, body: { message: `approval ${approval.id as string} expired after 30 min; ask again or change the statement` }
      })
    })

    it('withdraws the approval on cancel; the handle then reads cancelled', async () => {
      const sql = 'SELECT ID, NAME FROM CUSTOMERS WHERE ID = 2'
      const held = await api('POST', '/api/v2/statements?async=true', { statement: sql, database: SEED_DATABASE, schema: SEED_SCHEMA })
      expect(held.status).toBe(202)
      const approval = await pendingApproval(admin, sql)
      const cancelled = await api('POST', `${held.body.statementStatusUrl as string}/cancel`)
      expect(cancelled).toMatchObject({ status: 200, body: { message: 'successfully canceled', statementHandle: held.body.statementHandle } })
      expect((await admin.get(`/approvals/${approval.id as string}`)).body.status).toBe('withdrawn')
      expect((await api('GET', held.body.statementStatusUrl as string)).status).toBe(422)
      expect(upstreamRuns(sql)).toBe(0)
    })

    it('fails closed on a gateway whose secrets.key cannot open the held request: nothing runs, the statement stays held', async () => {
      const other = await startSnowflakeGateway({
        connections: { fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA } },
        stages: 'configured',
        policiesDirectory: dir,
        groupRoles: { approvers: ['approver'] },
        approvals: {},
        store: gw.store,
        idp: gw.idp,
        secretsKey: 'a-different-deployment-key-0123456789abcdef'
      })
      try {
        const sql = 'SELECT EMAIL FROM CUSTOMERS WHERE ID = 2'
        const held = await submit(sql)
        const approval = await pendingApproval(admin, sql)
        await admin.post(`/approvals/${approval.id as string}/approve`, {})
        const res = await request(`${other.url}${held.body.statementStatusUrl as string}`, { headers: { authorization: `Bearer ${agent}`, accept: 'application/json' } })
        expect(res.statusCode).toBe(503)
        expect((await res.body.json() as Json).message).toMatch(/^statement .* is held for approval .*, but this gateway cannot open its stored request \(its secrets\.key differs/)
        expect(upstreamRuns(sql)).toBe(0)
        // The gateway that held it still can: the approval was not used up.
        expect(await api('GET', held.body.statementStatusUrl as string)).toMatchObject({ status: 200, body: { data: [['****']] } })
        expect(upstreamRuns(sql)).toBe(1)
      } finally {
        await other.close()
      }
    })

    it('does not let another principal poll or cancel a held handle', async () => {
      const sql = 'SELECT ID FROM CUSTOMERS WHERE ID = 1'
      const held = await submit(sql)
      const approval = await pendingApproval(admin, sql)
      const bob = await gw.token('bob')
      for (const [method, path] of [['GET', held.body.statementStatusUrl], ['POST', `${held.body.statementStatusUrl as string}/cancel`]] as const) {
        const res = await request(`${gw.url}${path as string}`, { method, headers: { authorization: `Bearer ${bob}`, accept: 'application/json' } })
        expect(res.statusCode).toBe(404)
        await res.body.dump()
      }
      expect((await admin.get(`/approvals/${approval.id as string}`)).body.status).toBe('pending')
    })
  })
})
