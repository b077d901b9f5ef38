// The approval and grant records (src/approvals/store.ts, grants.ts) on both store engines:
// what is kept, expiry as part of every lookup, minApprovals counting distinct approvers, and a
// claim that succeeds exactly once however many replicas race for it.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreGrants } from '../../src/approvals/grants.js'
import { requesterKey, requesterOf } from '../../src/approvals/people.js'
import { StoreApprovals } from '../../src/approvals/store.js'
import type { NewApproval } from '../../src/approvals/types.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines } from '../support/stores.js'
import { agentForAlice } from './fixtures.js'

const slow = { timeout: 120_000 }

function fresh (over: Partial<NewApproval> = {}): NewApproval {
  return {
    id: randomUUID(),
    requester: requesterOf(agentForAlice),
    connection: 'wh',
    connectionKind: 'snowflake',
    frontEnd: 'test',
    sql: 'delete from t where id = 1',
    fingerprint: 'delete from t where id = ?',
    statementHash: randomUUID(),
    params: [1, '[redacted]'],
    analysis: { kinds: ['delete'], tables: ['db.s.t'], maskedColumns: ['EMAIL'] },
    ruleId: 'hold-deletes',
    settings: approvalSettings({ minApprovals: 2 }),
    reason: 'approval required by rule hold-deletes: …',
    preview: { totalBytesProcessed: '1024', referencedTables: ['db.s.t'] },
    expiresInSeconds: 1800,
    ...over
  }
}

const carol = { approverIssuer: 'https://idp.test', approverSubject: 'carol', decision: 'approve' as const }
const dave = { ...carol, approverSubject: 'dave' }
const window = { minApprovals: 2, expiresAfterMinutes: 30 }

describe.each(storeEngines())('approval records on $name', slow, (engine) => {
  let store: Store
  let approvals: StoreApprovals
  let grants: StoreGrants

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    approvals = new StoreApprovals(store)
    grants = new StoreGrants(store)
  })
  afterAll(async () => { await engine.cleanup() })

  /** Moves an approval's (or grant's) expiry into the past, as time passing would. */
  const age = async (table: 'approvals' | 'approval_grants', id: string): Promise<void> => {
    await store.query(`update ${table} set expires_at = now() - interval '1 second' where id = $1::uuid`, [id])
  }

  it('keeps the requester and its delegation chain, the analysis, the rule settings and the preview', async () => {
    const a = fresh()
    const created = await approvals.create(a)
    expect(created).toMatchObject({ id: a.id, status: 'pending', decisions: [] })
    const read = await approvals.get(a.id)
    expect(read).toMatchObject({
      requester: { issuer: 'https://idp.test', subject: 'alice', type: 'human', clientId: 'claude-code', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }] },
      connection: 'wh', sql: a.sql, fingerprint: a.fingerprint, statementHash: a.statementHash, params: [1, '[redacted]'],
      analysis: { kinds: ['delete'], tables: ['db.s.t'], maskedColumns: ['EMAIL'] },
      ruleId: 'hold-deletes', settings: { minApprovals: 2, approvers: { roles: ['approver'] }, allowSelfApproval: false, grant: { maxMinutes: 60 } },
      preview: { totalBytesProcessed: '1024' }, status: 'pending'
    })
    expect(read?.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    expect(Date.parse(read?.expiresAt ?? '') - Date.parse(read?.createdAt ?? '')).toBeGreaterThan(1790_000)
    expect(await approvals.get(randomUUID())).toBeUndefined()
    expect(await approvals.get('not-a-uuid')).toBeUndefined()
  })

  it('treats an approval past its expiry as expired in every lookup, swept or not', async () => {
    const a = fresh()
    await approvals.create(a)
    const key = requesterKey(a.requester)
    expect((await approvals.findOpen(key, 'wh', a.statementHash))?.id).toBe(a.id)
    await age('approvals', a.id)
    expect((await approvals.get(a.id))?.status).toBe('expired')
    expect(await approvals.findOpen(key, 'wh', a.statementHash)).toBeUndefined()
    expect((await approvals.list({ status: 'pending' }, undefined, 500)).items.map((x) => x.id)).not.toContain(a.id)
    expect((await approvals.list({ status: 'expired' }, undefined, 500)).items.map((x) => x.id)).toContain(a.id)
    expect((await approvals.decide(a.id, carol, window)).result).toBe('closed')
    // The sweep marks it for good; a second sweep finds nothing more of it.
    expect((await approvals.expire(100)).map((x) => x.id)).toContain(a.id)
    expect((await approvals.expire(100)).map((x) => x.id)).not.toContain(a.id)
    expect((await approvals.get(a.id))?.status).toBe('expired')
  })

  it('counts distinct approvers toward minApprovals, and a denial closes it', async () => {
    const a = fresh()
    await approvals.create(a)
    expect(await approvals.decide(a.id, { ...carol, grantMinutes: 10 }, window)).toMatchObject({ result: 'recorded', approval: { status: 'pending', decisions: [{ approver: 'carol', grantMinutes: 10 }] } })
    expect((await approvals.decide(a.id, carol, window)).result).toBe('duplicate')
    const done = await approvals.decide(a.id, { ...dave, reason: 'checked with the owner' }, window)
    expect(done).toMatchObject({ result: 'approved', approval: { status: 'approved', decidedBy: 'carol, dave', decisionReason: 'checked with the owner' } })
    expect(done.approval.decisions.map((d) => d.approver)).toEqual(['carol', 'dave'])

    const b = fresh()
    await approvals.create(b)
    await approvals.decide(b.id, carol, window)
    expect(await approvals.decide(b.id, { ...dave, decision: 'deny', reason: 'not on Fridays' }, window)).toMatchObject({ result: 'denied', approval: { status: 'denied', decidedBy: 'dave', decisionReason: 'not on Fridays' } })
    expect((await approvals.decide(b.id, { ...dave, approverSubject: 'erin' }, window)).result).toBe('closed')
  })

  it('lists by status, newest first, in keyset pages', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const a = fresh({ connection: 'paging' })
      ids.push(a.id)
      await approvals.create(a)
    }
    const seen: string[] = []
    let cursor: string | undefined
    for (let i = 0; i < 5; i++) {
      const page = await approvals.list({ status: 'pending', connection: 'paging' }, cursor, 2)
      seen.push(...page.items.map((x) => x.id))
      if (page.nextCursor === null) break
      cursor = page.nextCursor
    }
    expect(seen).toEqual([...ids].reverse())
    expect((await approvals.list({ requester: 'claude-code', connection: 'paging' })).items).toHaveLength(5)
    expect((await approvals.list({ requester: 'bob', connection: 'paging' })).items).toHaveLength(0)
    await expect(approvals.list({}, 'garbage')).rejects.toMatchObject({ code: 'SLUICE_BAD_REQUEST' })
  })

  it('keeps one pending approval per statement and requester, however many replicas hold it at once', async () => {
    const hash = randomUUID()
    const other = engine.name === 'postgres' ? new StoreApprovals(await engine.open()) : approvals
    const made = await Promise.all(Array.from({ length: 8 }, async (_, i) => await (i % 2 === 0 ? approvals : other).create(fresh({ statementHash: hash }))))
    expect(new Set(made.map((a) => a.id)).size).toBe(1)
    // Once that one expired (swept or not), the statement may be held again.
    await age('approvals', made[0]?.id as string)
    const again = await approvals.create(fresh({ statementHash: hash }))
    expect(again.id).not.toBe(made[0]?.id)
    expect((await approvals.get(made[0]?.id as string))?.status).toBe('expired')
  })

  it('withdraws only for the requester, and only while it is live', async () => {
    const a = fresh()
    await approvals.create(a)
    expect(await approvals.withdraw(a.id, 'someone-else')).toBeUndefined()
    expect((await approvals.withdraw(a.id, requesterKey(a.requester)))?.status).toBe('withdrawn')
    expect(await approvals.withdraw(a.id, requesterKey(a.requester))).toBeUndefined()
  })

  it('claims an approved statement exactly once, however many callers race', async () => {
    const a = fresh({ settings: approvalSettings() })
    await approvals.create(a)
    expect(await approvals.claim(a.id, 'early')).toBeUndefined()
    await approvals.decide(a.id, carol, { minApprovals: 1, expiresAfterMinutes: 30 })
    // A second store is a second pool: on Postgres, separate connections, as two replicas have.
    const other = engine.name === 'postgres' ? new StoreApprovals(await engine.open()) : approvals
    const results = await Promise.all(Array.from({ length: 16 }, async (_, i) => await (i % 2 === 0 ? approvals : other).claim(a.id, `replica-${i % 2}`)))
    const winners = results.filter((r) => r !== undefined)
    expect(winners).toHaveLength(1)
    expect(winners[0]).toMatchObject({ status: 'executed', claimedBy: expect.stringMatching(/^replica-[01]$/) })
    expect((await approvals.get(a.id))?.status).toBe('executed')
    // Approved and past its expiry: nobody claims it.
    const b = fresh({ settings: approvalSettings() })
    await approvals.create(b)
    await approvals.decide(b.id, carol, { minApprovals: 1, expiresAfterMinutes: 30 })
    await age('approvals', b.id)
    expect(await approvals.claim(b.id, 'late')).toBeUndefined()
  })

  it('reads a poll\'s claim as stale only past the lease, and lets exactly one racing caller take it over', async () => {
    const approved = async (): Promise<NewApproval> => {
      const a = fresh({ settings: approvalSettings() })
      await approvals.create(a)
      await approvals.decide(a.id, carol, { minApprovals: 1, expiresAfterMinutes: 30 })
      return a
    }
    const agedClaim = async (id: string): Promise<void> => {
      await store.query("update approvals set claimed_at = now() - interval '1 hour' where id = $1::uuid", [id])
    }
    const a = await approved()
    expect(await approvals.staleClaim(a.id, 10)).toBeUndefined() // not claimed yet
    await approvals.claim(a.id, 'stopped', { lease: true })
    expect(await approvals.staleClaim(a.id, 10)).toBeUndefined() // within its lease
    expect(await approvals.reclaim(a.id, 'early', 10)).toBeUndefined()
    await agedClaim(a.id)
    expect(await approvals.staleClaim(a.id, 10)).toMatchObject({ status: 'executed', claimedBy: 'stopped' })
    const other = engine.name === 'postgres' ? new StoreApprovals(await engine.open()) : approvals
    const results = await Promise.all(Array.from({ length: 8 }, async (_, i) => await (i % 2 === 0 ? approvals : other).reclaim(a.id, `replica-${i % 2}`, 10)))
    const winners = results.filter((r) => r !== undefined)
    expect(winners).toHaveLength(1)
    expect(winners[0]).toMatchObject({ status: 'executed', claimedBy: expect.stringMatching(/^replica-[01]$/) })
    // Taken over, the claim is fresh again: within the new lease, not stale.
    expect(await approvals.staleClaim(a.id, 10)).toBeUndefined()
    // A claim that is no lease (a resend, a grant: run in the claiming request) never reads stale.
    const b = await approved()
    await approvals.claim(b.id, 'resend')
    await agedClaim(b.id)
    expect(await approvals.staleClaim(b.id, 10)).toBeUndefined()
    expect(await approvals.reclaim(b.id, 'poller', 10)).toBeUndefined()
  })

  it('matches a grant by fingerprint, principal and chain, and connection; records each use; honours expiry and revocation', async () => {
    const source = fresh({ settings: approvalSettings() })
    await approvals.create(source)
    const approved = await approvals.decide(source.id, carol, { minApprovals: 1, expiresAfterMinutes: 30 })
    const grantId = randomUUID()
    await store.transaction(async (tx) => { await grants.create(tx, { id: grantId, approval: approved.approval, grantedBy: 'carol', minutes: 15 }) })
    const scope = { fingerprint: source.fingerprint, requesterKey: requesterKey(source.requester), connection: 'wh' }
    expect(await grants.match(scope)).toMatchObject({ id: grantId, state: 'active', grantedBy: 'carol', approvalId: source.id, uses: 0, requester: { subject: 'alice', delegation: [{ subject: 'claude-code' }] } })
    expect(await grants.match({ ...scope, connection: 'other' })).toBeUndefined()
    expect(await grants.match({ ...scope, fingerprint: 'select ?' })).toBeUndefined()
    expect(await grants.match({ ...scope, requesterKey: requesterKey({ issuer: 'https://idp.test', subject: 'alice', delegation: [] }) })).toBeUndefined()

    const use = fresh({ sql: 'delete from t where id = 2' })
    const used = await grants.use(grantId, use, 'replica-a')
    expect(used).toMatchObject({ id: use.id, status: 'executed', grantId, claimedBy: 'replica-a' })
    expect((await grants.get(grantId))?.uses).toBe(1)
    expect((await grants.list({ active: true }, undefined, 500)).items.map((g) => g.id)).toContain(grantId)

    await age('approval_grants', grantId)
    expect(await grants.match(scope)).toBeUndefined()
    expect((await grants.get(grantId))?.state).toBe('expired')
    expect(await grants.use(grantId, fresh(), 'replica-a')).toBeUndefined()

    const second = randomUUID()
    await store.transaction(async (tx) => { await grants.create(tx, { id: second, approval: approved.approval, grantedBy: 'carol', minutes: 15 }) })
    expect((await grants.match(scope))?.id).toBe(second)
    expect(await grants.revoke(second, 'dave')).toMatchObject({ state: 'revoked', revokedBy: 'dave' })
    expect(await grants.revoke(second, 'dave')).toBeUndefined()
    expect(await grants.match(scope)).toBeUndefined()
    expect((await grants.list({ active: true }, undefined, 500)).items.map((g) => g.id)).not.toContain(second)
  })
})
