// The approvals admin API through the real server, plugin chain and OIDC tokens from a real
// provider, on both stores: a held statement is refused with its approval id, listed for
// approvers, refused to the human its agent acts for, approved with a grant (the resend runs
// once, another literal runs under the grant), revoked; denial needs a reason; every decision
// is an audit event naming the approver; the OpenAPI document describes the routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApprovalService } from '../../src/approvals/service.js'
import { approvalHoldStage } from '../../src/pipeline/hold.js'
import type { DecideStage } from '../../src/pipeline/stages.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { decideForTests, startHarness, type Harness } from '../recording/harness.js'
import { ed25519Pem } from '../recording/helpers.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { storeEngines } from '../support/stores.js'

const slow = { timeout: 120_000 }

/** Deletes need one approver (grants up to 30 min), updates two; the rest as the recording harness decides. */
const decide: DecideStage = {
  ...decideForTests,
  decide (statement, analysis) {
    const kinds = analysis.statements.map((s) => s.kind)
    if (kinds.includes('delete') || kinds.includes('update')) {
      const id = kinds.includes('delete') ? 'hold-deletes' : 'hold-updates'
      const detail = `${kinds.includes('delete') ? 'DELETE' : 'UPDATE'} needs a human's approval.`
      return {
        effect: 'require_approval', ruleId: id, reason: `approval required by rule ${id}: ${detail}`, detail, limits: {},
        approval: approvalSettings(kinds.includes('delete') ? { grant: { maxMinutes: 30 } } : { minApprovals: 2 })
      }
    }
    return decideForTests.decide(statement, analysis)
  }
}

describe.each(storeEngines())('approvals admin API on $name', slow, (engine) => {
  let idp: TestIdp
  let store: Store
  let h: Harness
  let agent: string
  let aliceApprover: string
  let carol: string
  let dave: string
  let auditor: string

  type Res = { status: number, body: any }
  const call = async (method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, token: string, payload?: unknown): Promise<Res> => {
    const res = await h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload !== undefined && { payload: payload as Record<string, unknown> }) })
    return { status: res.statusCode, body: res.json() }
  }
  const sql = async (text: string): Promise<Res> => await call('POST', '/test/sql', agent, { sql: text })
  const heldId = (res: Res): string => {
    expect(res).toMatchObject({ status: 403, body: { code: 'SLUICE_APPROVAL_REQUIRED' } })
    const m = /waiting for approval ([0-9a-f-]{36}) \(rule [a-z-]+\)/.exec(res.body.message as string)
    expect(m).not.toBeNull()
    return m?.[1] as string
  }

  beforeAll(async () => {
    idp = await startTestIdp()
    store = await engine.open()
    await migrate(store)
    const service = new ApprovalService({ store, replica: 'replica-test' })
    h = await startHarness({
      store, identity: idp.identityConfig(), recording: { checkpointKey: ed25519Pem().privatePem },
      decide, hold: approvalHoldStage(service), approvals: service, groupRoles: { approvers: ['approver'] }
    })
    agent = await idp.userToken({ subject: 'alice', groups: ['analysts'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    aliceApprover = await idp.userToken({ subject: 'alice', groups: ['approvers'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
    dave = await idp.userToken({ subject: 'dave', groups: ['approvers'] })
    auditor = await idp.userToken({ subject: 'sam', groups: ['security'] })
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  it('holds a statement, shows it to approvers only, refuses the human the agent acts for, and runs it once when approved', async () => {
    const calls = h.upstream.calls
    const id = heldId(await sql('delete from analytics.public.orders where id = 1'))
    expect(h.upstream.calls).toBe(calls)
    // Sent again before anyone decided: the same approval, still nothing run.
    expect(heldId(await sql('delete from analytics.public.orders where id = 1'))).toBe(id)

    const list = await call('GET', '/admin/v1/approvals?status=pending', carol)
    expect(list.status).toBe(200)
    expect(list.body.items.map((a: { id: string }) => a.id)).toContain(id)
    // Operators see it too: /metrics counts the statements waiting, from the store.
    const scraped = await h.app.inject({ url: '/metrics' })
    expect(scraped.body).toMatch(new RegExp(`^sluice_approvals_pending ${list.body.items.length}$`, 'm'))
    const shown = await call('GET', `/admin/v1/approvals/${id}`, carol)
    expect(shown).toMatchObject({
      status: 200,
      body: {
        id, status: 'pending', sql: 'delete from analytics.public.orders where id = 1', ruleId: 'hold-deletes', connection: 'wh',
        chain: 'claude-code acting for alice', requester: { subject: 'alice', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }] },
        analysis: { kinds: ['delete'], tables: ['analytics.public.orders'] }, message: `waiting for approval ${id} (rule hold-deletes)`
      }
    })
    expect((await call('GET', `/admin/v1/approvals/${id}`, auditor)).status).toBe(200)
    expect((await call('GET', '/admin/v1/approvals', agent)).status).toBe(403)
    expect((await call('POST', `/admin/v1/approvals/${id}/approve`, auditor, {})).status).toBe(403)
    expect((await call('POST', `/admin/v1/approvals/${id}/approve`, agent, {})).status).toBe(403)
    expect(await call('POST', `/admin/v1/approvals/${id}/approve`, aliceApprover, {})).toMatchObject({ status: 403, body: { code: 'SLUICE_APPROVAL_SELF' } })
    expect(await call('POST', `/admin/v1/approvals/${id}/approve`, carol, { grant: { minutes: 31 } })).toMatchObject({ status: 400, body: { code: 'SLUICE_APPROVAL_GRANT_REFUSED' } })
    expect((await call('GET', '/admin/v1/approvals/not-a-uuid', carol)).status).toBe(404)

    const approved = await call('POST', `/admin/v1/approvals/${id}/approve`, carol, { reason: 'cleanup ticket 7', grant: { minutes: 15 } })
    expect(approved).toMatchObject({ status: 200, body: { result: 'approved', approval: { id, status: 'approved', decidedBy: 'carol' }, grant: { state: 'active', grantedBy: 'carol' } } })
    const grantId = approved.body.grant.id as string

    expect((await sql('delete from analytics.public.orders where id = 1')).status).toBe(200)
    expect(h.upstream.calls).toBe(calls + 1)
    expect((await call('GET', `/admin/v1/approvals/${id}`, carol)).body).toMatchObject({ status: 'executed', claimedBy: 'replica-test' })
    // Other literals, same shape: the grant lets it through, and counts the use.
    expect((await sql('delete from analytics.public.orders where id = 2')).status).toBe(200)
    expect(h.upstream.calls).toBe(calls + 2)
    const grants = await call('GET', '/admin/v1/grants?active=true', auditor)
    expect(grants.body.items.find((g: { id: string }) => g.id === grantId)).toMatchObject({ uses: 1, approvalId: id })

    expect(await call('DELETE', `/admin/v1/grants/${grantId}`, carol)).toMatchObject({ status: 200, body: { state: 'revoked', revokedBy: 'carol' } })
    heldId(await sql('delete from analytics.public.orders where id = 3'))
    expect(h.upstream.calls).toBe(calls + 2)

    // The trail: the held request, the refused self-approval and the approval, each naming who.
    const events = (await call('GET', '/admin/v1/events?limit=500', auditor)).body.items as Array<Record<string, unknown>>
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'test', outcome: 'held', approvalId: id, principalSubject: 'alice' }))
    // The statement that ran names what released it: the approval, then the grant for the other literal.
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'test', phase: 'admitted', approvalId: id, approver: 'carol', reason: expect.stringContaining(`released by approval ${id} (approved by carol)`) }))
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'test', phase: 'admitted', approver: 'carol', sqlText: 'delete from analytics.public.orders where id = 2', reason: expect.stringContaining(`released by grant ${grantId} (given by carol)`) }))
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'admin', approvalId: id, approver: 'alice', errorCode: 'SLUICE_APPROVAL_SELF', reason: expect.stringMatching(/^refused: approval .* alice cannot approve/) }))
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'admin', approvalId: id, approver: 'carol', statusCode: 200, reason: expect.stringContaining(`approval ${id} approved by carol (rule hold-deletes); grant ${grantId}`) }))
    expect(events).toContainEqual(expect.objectContaining({ frontEnd: 'admin', approvalId: id, approver: 'carol', method: 'DELETE', reason: expect.stringContaining(`grant ${grantId} (approval ${id}) revoked by carol`) }))
  })

  it('needs two approvers for updates, and a reason to deny', async () => {
    const a = heldId(await sql("update analytics.public.orders set status = 'void' where id = 10"))
    expect(await call('POST', `/admin/v1/approvals/${a}/approve`, carol, {})).toMatchObject({ status: 200, body: { result: 'recorded', approval: { status: 'pending' } } })
    expect(await call('POST', `/admin/v1/approvals/${a}/approve`, carol, {})).toMatchObject({ status: 409, body: { code: 'SLUICE_APPROVAL_ALREADY_DECIDED' } })
    // No body at all (curl -X POST): the same as {}.
    expect(await call("POST", `/admin/v1/approvals/${a}/approve`, dave)).toMatchObject({ status: 200, body: { result: 'approved' } })

    const b = heldId(await sql("update analytics.public.orders set status = 'void' where id = 11"))
    expect(await call('POST', `/admin/v1/approvals/${b}/deny`, dave, {})).toMatchObject({ status: 400, body: { code: 'SLUICE_APPROVAL_REASON_REQUIRED' } })
    expect(await call('POST', `/admin/v1/approvals/${b}/deny`, dave, { reason: 'void orders through the billing tool' })).toMatchObject({
      status: 200, body: { result: 'denied', approval: { status: 'denied', decidedBy: 'dave', decisionReason: 'void orders through the billing tool' } }
    })
    expect(await call('POST', `/admin/v1/approvals/${b}/approve`, carol, {})).toMatchObject({ status: 409, body: { code: 'SLUICE_APPROVAL_CLOSED' } })
    expect((await call('GET', '/admin/v1/approvals?status=denied', carol)).body.items.map((x: { id: string }) => x.id)).toContain(b)
    const events = (await call('GET', '/admin/v1/events?limit=500', auditor)).body.items as Array<Record<string, unknown>>
    expect(events).toContainEqual(expect.objectContaining({ approvalId: b, approver: 'dave', reason: `approval ${b} denied by dave: void orders through the billing tool` }))
    expect(events).toContainEqual(expect.objectContaining({ approvalId: a, approver: 'carol', reason: `approval ${a}: approval 1 of 2 recorded (rule hold-updates)` }))
  })

  it('answers other methods with 405 and describes the routes in the OpenAPI document', async () => {
    expect((await call('PUT', '/admin/v1/approvals', carol)).status).toBe(405)
    // Authorized before the body is read: a caller without the role learns nothing of the body's rules.
    const text = await h.app.inject({ method: 'POST', url: '/admin/v1/approvals/00000000-0000-4000-8000-000000000000/approve', headers: { authorization: `Bearer ${auditor}`, 'content-type': 'text/x-nothing' }, payload: 'x' })
    expect(text.statusCode).toBe(403)
    expect((await h.app.inject({ url: '/admin/v1/approvals' })).statusCode).toBe(401)
    const doc = (await h.app.inject({ url: '/admin/v1/openapi.json' })).json()
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/approvals', '/approvals/{id}', '/approvals/{id}/approve', '/approvals/{id}/deny', '/grants', '/grants/{id}']))
    expect(doc.paths['/grants/{id}'].delete.operationId).toBe('revokeGrant')
    expect(doc.components.schemas.Approval.properties.chain).toBeDefined()
  })
})
