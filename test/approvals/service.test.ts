// The approvals service on both store engines: who may decide (never the requester, also not
// through the delegation chain, unless the rule allows it; only people the rule names),
// minApprovals 2, denial reasons and the messages the client is shown, withdrawal, scoped grants
// (reused with other literals, then expired, then revoked), and exactly-once release when two
// replicas resolve the same approval at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApprovalService, statementHash } from '../../src/approvals/service.js'
import { justificationText } from '../../src/approvals/messages.js'
import { approvalItem, slackMessage } from '../../src/approvals/notify.js'
import type { ApprovalRecord } from '../../src/approvals/types.js'
import type { Principal } from '../../src/identity/principal.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'
import { agentForAlice, aliceHerself, approverBot, carol, dave, erin, held } from './fixtures.js'

const slow = { timeout: 120_000 }

describe.each(storeEngines())('approvals service on $name', slow, (engine) => {
  let store: Store
  let service: ApprovalService
  const notified: ApprovalRecord[] = []

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    service = new ApprovalService({ store, replica: 'replica-a', notifier: { requested: (a) => notified.push(a) }, redact: (p) => p })
  })
  afterAll(async () => { await engine.cleanup() })

  const age = async (table: 'approvals' | 'approval_grants', id: string): Promise<void> => {
    await store.query(`update ${table} set expires_at = now() - interval '1 second' where id = $1::uuid`, [id])
  }
  let n = 1000
  /** A statement no earlier test held: same shape, a new literal. */
  const unique = (): string => `delete from analytics.public.orders where id = ${n++}`
  const pending = async (over: Parameters<typeof held>[0] = {}): Promise<ApprovalRecord> => {
    const out = await service.request(held({ sql: unique(), ...over }))
    expect(out.state).toBe('pending')
    return out.approval
  }

  it('holds a statement once: a resend of the same text and binds finds the same approval, and approvers are notified once', async () => {
    const sql = unique()
    const before = notified.length
    const first = await service.request(held({ sql, params: [1, { b: 2, a: 1 }] }))
    expect(first).toMatchObject({ state: 'pending', created: true, approval: { status: 'pending', statementHash: statementHash(sql, [1, { a: 1, b: 2 }]), params: [1, { b: 2, a: 1 }] } })
    const again = await service.request(held({ sql, params: [1, { a: 1, b: 2 }] }))
    expect(again).toMatchObject({ state: 'pending', created: false, approval: { id: first.approval.id } })
    // Other binds are another statement.
    expect((await service.request(held({ sql, params: [2] }))).approval.id).not.toBe(first.approval.id)
    expect(notified.length - before).toBe(2)
  })

  it('asks a front end that can ask for a justification only when a new approval is created, and keeps it; one that cannot ask still holds, noting none was given', async () => {
    const asked: Array<{ ruleId: string, required: boolean }> = []
    const ask = async (a: { ruleId: string, required: boolean }): Promise<string> => { asked.push({ ruleId: a.ruleId, required: a.required }); return '  ticket OPS-7  ' }
    const sql = unique()
    const first = await service.request(held({ sql, approval: { justification: 'required' }, askJustification: ask }))
    expect(first).toMatchObject({ state: 'pending', created: true, approval: { justification: 'ticket OPS-7', settings: { justification: 'required' } } })
    expect(asked).toEqual([{ ruleId: 'hold-deletes', required: true }])
    expect((await service.get(first.approval.id)).justification).toBe('ticket OPS-7')
    // A resend finds the open approval: nobody is asked again.
    await service.request(held({ sql, approval: { justification: 'required' }, askJustification: ask }))
    expect(asked).toHaveLength(1)
    // A refusal from the asker creates nothing.
    const refusedSql = unique()
    await expect(service.request(held({ sql: refusedSql, approval: { justification: 'required' }, askJustification: async () => { throw new Error('no justification') } }))).rejects.toThrow('no justification')
    expect((await service.list({ status: 'pending' }, undefined, 200)).items.map((a) => a.sql)).not.toContain(refusedSql)
    // Given with the statement: not asked.
    const given = await service.request(held({ sql: unique(), approval: { justification: 'optional' }, justification: 'for the audit', askJustification: ask }))
    expect(given.approval.justification).toBe('for the audit')
    expect(asked).toHaveLength(1)
    // A rule asking for none: never asked, nothing kept.
    const none = await service.request(held({ sql: unique(), askJustification: ask }))
    expect(none.approval.justification).toBeUndefined()
    expect(justificationText(none.approval)).toBeUndefined()
    expect(asked).toHaveLength(1)
    // A wire protocol cannot ask: held all the same, the approver told none was given.
    const wire = await service.request(held({ sql: unique(), approval: { justification: 'required' } }))
    expect(wire).toMatchObject({ state: 'pending', created: true })
    expect(wire.approval.justification).toBeUndefined()
    expect(justificationText(wire.approval)).toBe('no justification given')
    expect(approvalItem(wire.approval).justification).toBe('no justification given')
    expect(approvalItem(first.approval).justification).toBe('ticket OPS-7')
    expect(JSON.stringify(slackMessage(approvalItem(first.approval)))).toContain('ticket OPS-7')
  })

  it('never lets the requester approve their own statement, also through the delegation chain', async () => {
    const a = await pending()
    // alice is the human claude-code acts for: her own token, with the approver role, is refused.
    await expect(service.approve(a.id, aliceHerself)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_SELF', message: expect.stringContaining(`approval ${a.id}: alice cannot approve`) })
    // So is a person whose subject is an actor of the chain.
    const claude: Principal = { ...carol, subject: 'claude-code' }
    await expect(service.approve(a.id, claude)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_SELF' })
    // The agent's own delegated token never decides, whatever roles it carries.
    await expect(service.approve(a.id, { ...agentForAlice, roles: ['approver'] })).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_NOT_APPROVER', message: expect.stringContaining('acts through claude-code') })
    expect((await service.get(a.id)).status).toBe('pending')
    // An approval alice asked for without an agent is hers too.
    const own = await pending({ principal: aliceHerself })
    await expect(service.approve(own.id, aliceHerself)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_SELF' })
    // Unless the rule says so.
    const allowed = await pending({ approval: { allowSelfApproval: true } })
    expect((await service.approve(allowed.id, aliceHerself)).result).toBe('approved')
  })

  it('lets only the people the rule names decide', async () => {
    const byRole = await pending()
    await expect(service.approve(byRole.id, erin)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_NOT_APPROVER', message: expect.stringContaining('erin needs role approver') })
    await expect(service.approve(byRole.id, approverBot)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_NOT_APPROVER', message: expect.stringContaining('machine client') })
    await expect(service.deny(byRole.id, erin, 'no')).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_NOT_APPROVER' })
    const byGroup = await pending({ approval: { approvers: { groups: ['dba'] } } })
    await expect(service.approve(byGroup.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_NOT_APPROVER', message: expect.stringContaining('carol needs group dba') })
    expect((await service.approve(byGroup.id, dave)).result).toBe('approved')
    await expect(service.approve(byGroup.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_CLOSED' })
    await expect(service.approve('00000000-0000-4000-8000-000000000000', carol)).rejects.toMatchObject({ code: 'SLUICE_NOT_FOUND' })
  })

  it('needs two distinct approvers with minApprovals 2; the approved statement runs once, on the resend that claims it', async () => {
    const sql = unique()
    const a = (await service.request(held({ sql, approval: { minApprovals: 2 } }))).approval
    expect(await service.approve(a.id, carol, { reason: 'looks right' })).toMatchObject({ result: 'recorded', approval: { status: 'pending' } })
    await expect(service.approve(a.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_ALREADY_DECIDED' })
    // Still waiting after one approval: the resend is told so.
    expect((await service.request(held({ sql, approval: { minApprovals: 2 } }))).state).toBe('pending')
    expect(await service.approve(a.id, dave)).toMatchObject({ result: 'approved', approval: { status: 'approved', decidedBy: 'carol, dave' } })
    const run = await service.request(held({ sql, approval: { minApprovals: 2 } }))
    expect(run).toMatchObject({ state: 'granted', approval: { id: a.id, status: 'executed', claimedBy: 'replica-a' } })
    // Run once: the next resend is a new request for approval.
    const next = await service.request(held({ sql, approval: { minApprovals: 2 } }))
    expect(next.state).toBe('pending')
    expect(next.approval.id).not.toBe(a.id)
  })

  it('requires a reason to deny when the rule says so, and tells the client who denied it and why', async () => {
    const a = await pending()
    await expect(service.deny(a.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REASON_REQUIRED' })
    await expect(service.deny(a.id, carol, '   ')).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REASON_REQUIRED' })
    expect(await service.deny(a.id, carol, 'orders are append-only')).toMatchObject({ result: 'denied', approval: { status: 'denied', decidedBy: 'carol' } })
    await expect(service.resolve(a.id, agentForAlice)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_DENIED', message: `approval ${a.id} denied by carol: orders are append-only` })
    const lax = await pending({ approval: { reasonRequiredToDeny: false } })
    expect((await service.deny(lax.id, carol)).result).toBe('denied')
    await expect(service.resolve(lax.id, agentForAlice)).rejects.toMatchObject({ message: `approval ${lax.id} denied by carol: no reason given` })
  })

  it('resolves a poll: waiting with the status message, then expired with the message the client is shown', async () => {
    const a = await pending()
    expect(await service.resolve(a.id, agentForAlice)).toMatchObject({ state: 'pending', message: `waiting for approval ${a.id} (rule hold-deletes)` })
    // Another principal's approval id is unknown to it.
    await expect(service.resolve(a.id, erin)).rejects.toMatchObject({ code: 'SLUICE_NOT_FOUND' })
    await age('approvals', a.id)
    await expect(service.resolve(a.id, agentForAlice)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_EXPIRED', message: `approval ${a.id} expired after 30 min; ask again or change the statement` })
    await expect(service.approve(a.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_CLOSED', message: expect.stringContaining('is expired') })
  })

  it('withdraws on the requester\'s cancel only', async () => {
    const a = await pending()
    await expect(service.withdraw(a.id, erin)).rejects.toMatchObject({ code: 'SLUICE_NOT_FOUND' })
    expect((await service.withdraw(a.id, agentForAlice)).status).toBe('withdrawn')
    await expect(service.resolve(a.id, agentForAlice)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_WITHDRAWN' })
    await expect(service.approve(a.id, carol)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_CLOSED' })
    await expect(service.withdraw(a.id, agentForAlice)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_CLOSED' })
  })

  it('reuses a scoped grant with other literals, then not once it expired, then not once revoked', async () => {
    const shape = (id: number): string => `update analytics.public.orders set status = 'void' where id = ${id}`
    await expect(service.approve((await pending({ sql: shape(1) })).id, carol, { grant: { minutes: 61 } })).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_GRANT_REFUSED' })
    const a = await pending({ sql: shape(2) })
    const approved = await service.approve(a.id, carol, { grant: { minutes: 20 } })
    expect(approved).toMatchObject({ result: 'approved', grant: { state: 'active', grantedBy: 'carol', approvalId: a.id, connection: 'wh', requester: { subject: 'alice', delegation: [{ subject: 'claude-code' }] } } })
    const grant = approved.grant!
    expect(Date.parse(grant.expiresAt) - Date.parse(grant.createdAt)).toBeGreaterThan(19 * 60_000)
    // The same shape with another literal runs without asking; the use is an approval record naming the grant.
    const reused = await service.request(held({ sql: shape(3) }))
    expect(reused).toMatchObject({ state: 'granted', grant: { id: grant.id }, approval: { status: 'executed', grantId: grant.id, sql: shape(3) } })
    expect((await service.listGrants({ active: true }, undefined, 500)).items.find((g) => g.id === grant.id)?.uses).toBe(1)
    // Not for another principal, for alice without the agent, on another connection, or another shape.
    expect((await service.request(held({ sql: shape(4), principal: erin }))).state).toBe('pending')
    expect((await service.request(held({ sql: shape(4), principal: aliceHerself }))).state).toBe('pending')
    expect((await service.request(held({ sql: shape(4), connection: { name: 'other', kind: 'snowflake' } }))).state).toBe('pending')
    expect((await service.request(held({ sql: `${shape(4)} and 1 = 1` }))).state).toBe('pending')
    await age('approval_grants', grant.id)
    expect((await service.request(held({ sql: shape(5) }))).state).toBe('pending')

    const b = await pending({ sql: shape(6), connection: { name: 'lake', kind: 'snowflake' } })
    const second = (await service.approve(b.id, dave, { grant: { minutes: 5 } })).grant!
    expect((await service.request(held({ sql: shape(7), connection: { name: 'lake', kind: 'snowflake' } }))).state).toBe('granted')
    expect(await service.revokeGrant(second.id, carol)).toMatchObject({ state: 'revoked', revokedBy: 'carol', uses: 1 })
    expect((await service.request(held({ sql: shape(8), connection: { name: 'lake', kind: 'snowflake' } }))).state).toBe('pending')
    await expect(service.revokeGrant('00000000-0000-4000-8000-000000000000', carol)).rejects.toMatchObject({ code: 'SLUICE_NOT_FOUND' })
  })

  it('gives a grant only when every approver asked for one, for the shortest time asked; none when the rule allows none', async () => {
    const shape = (id: number): string => `delete from analytics.public.returns where id = ${id}`
    const a = await pending({ sql: shape(1), approval: { minApprovals: 2 } })
    await service.approve(a.id, carol, { grant: { minutes: 30 } })
    expect((await service.approve(a.id, dave)).grant).toBeUndefined()
    const b = await pending({ sql: shape(2), approval: { minApprovals: 2 } })
    await service.approve(b.id, carol, { grant: { minutes: 30 } })
    const both = await service.approve(b.id, dave, { grant: { minutes: 10 } })
    expect(both.grant).toMatchObject({ grantedBy: 'carol, dave' })
    const minutes = (Date.parse(both.grant!.expiresAt) - Date.parse(both.grant!.createdAt)) / 60_000
    expect(minutes).toBeGreaterThan(9.9)
    expect(minutes).toBeLessThan(10.1)
    // (another shape: the grant just given covers shape(3))
    const c = await pending({ sql: 'delete from analytics.public.refunds where id = 3', approval: { grant: { maxMinutes: 0 } } })
    await expect(service.approve(c.id, carol, { grant: { minutes: 1 } })).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_GRANT_REFUSED', message: expect.stringContaining('allows no grants') })
  })

  it('releases an approved statement to exactly one of two replicas polling at once', async () => {
    const other = new ApprovalService({ store: engine.name === 'postgres' ? await engine.open() : store, replica: 'replica-b' })
    for (let round = 0; round < 5; round++) {
      const a = await pending({ settings: approvalSettings() })
      await service.approve(a.id, carol)
      const polls = await Promise.all([service, other, service, other].map(async (s) => await s.resolve(a.id, agentForAlice)))
      expect(polls.filter((p) => p.state === 'granted')).toHaveLength(1)
      expect(polls.filter((p) => p.state === 'executed')).toHaveLength(3)
    }
  })
})
