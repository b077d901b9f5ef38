// The hold stage in the pipeline, and the switch that turns it on: off by default (a held
// statement is refused as before, nothing is stored), on with approvals.enabled (the refusal
// names a pending approval; sent again once approved, the statement is admitted once, with
// the approval and approver on the round trip; a grant admits the same shape).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { justificationText } from '../../src/approvals/messages.js'
import { ApprovalService } from '../../src/approvals/service.js'
import { validateConfig } from '../../src/config/load.js'
import { Pipeline, type RoundTrip, type Statement } from '../../src/pipeline.js'
import { composeApprovals } from '../../src/pipeline/compose.js'
import { approvalHoldStage } from '../../src/pipeline/hold.js'
import { passThroughAnalyze, passThroughMask, refuseApprovals, type DecideStage } from '../../src/pipeline/stages.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { pgliteEngine } from '../support/stores.js'
import { agentForAlice, carol, erin } from './fixtures.js'

const holdAll: DecideStage = {
  name: 'decide',
  enforcing: true,
  decide: () => ({ effect: 'require_approval', ruleId: 'hold-all', reason: 'approval required by rule hold-all: needs a look.', detail: 'needs a look.', limits: {}, approval: approvalSettings({ grant: { maxMinutes: 5 } }) })
}

const statement = (sql: string): Statement => ({
  requestId: 'r', frontEnd: 'test', principal: agentForAlice, connection: { name: 'wh', kind: 'snowflake', defaults: {} }, sql, client: {}
})

describe('the hold stage', { timeout: 120_000 }, () => {
  const engine = pgliteEngine()
  let store: Store

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('is off by default: approvals.enabled false keeps refusing, and stores nothing', async () => {
    const config = validateConfig({})
    expect(config.approvals.enabled).toBe(false)
    const approvals = composeApprovals(config, store)
    expect(approvals.hold).toBe(refuseApprovals)
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: holdAll, hold: approvals.hold, mask: passThroughMask })
    await expect(pipeline.admit(statement('select 1'), {})).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED', message: 'approval required by rule hold-all: needs a look.' })
    expect((await approvals.service.list({})).items).toHaveLength(0)
    await approvals.close()
    expect(composeApprovals(validateConfig({ approvals: { enabled: true } }), store).hold).not.toBe(refuseApprovals)
  })

  it('holds: refused with the approval id; admitted once after approval; a grant admits the same shape', async () => {
    const service = new ApprovalService({ store, replica: 'r1' })
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: holdAll, hold: approvalHoldStage(service), mask: passThroughMask })
    const trip: RoundTrip = {}
    const refused = await pipeline.admit(statement('select 1'), trip).catch((err: Error) => err)
    expect(refused).toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED' })
    const id = (trip.hold as { approvalId: string }).approvalId
    expect(trip.hold).toEqual({ state: 'pending', approvalId: id })
    expect((refused as Error).message).toBe(`approval required by rule hold-all: needs a look. It is waiting for approval ${id} (rule hold-all): an approver can release it (POST /admin/v1/approvals/${id}/approve, or sluice approvals approve ${id}); send exactly the same statement again once it is approved.`)
    expect((await service.get(id)).analysis).toEqual({ kinds: ['unknown'], tables: [], maskedColumns: [] })

    await service.approve(id, carol, { grant: { minutes: 5 } })
    const again: RoundTrip = {}
    await pipeline.admit(statement('select 1'), again)
    expect(again.hold).toEqual({ state: 'granted', approvalId: id, approver: 'carol' })
    const other: RoundTrip = {}
    await pipeline.admit(statement('select 2'), other)
    expect(other.hold).toMatchObject({ state: 'granted', approver: 'carol', grant: { id: expect.any(String) } })
    expect((other.hold as { approvalId: string }).approvalId).not.toBe(id)
  })

  it('hands the justification and the way to ask for one to the service; a statement with neither is held, noting none was given', async () => {
    const service = new ApprovalService({ store, replica: 'justify' })
    const wantsOne: DecideStage = {
      name: 'decide',
      enforcing: true,
      decide: () => ({ effect: 'require_approval', ruleId: 'hold-all', reason: 'approval required by rule hold-all: say why.', detail: 'say why.', limits: {}, approval: approvalSettings({ justification: 'required' }) })
    }
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: wantsOne, hold: approvalHoldStage(service), mask: passThroughMask })
    const held = async (s: Statement): Promise<string> => {
      const trip: RoundTrip = {}
      await expect(pipeline.admit(s, trip)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED' })
      return (trip.hold as { approvalId: string }).approvalId
    }
    expect((await service.get(await held({ ...statement('select 1 as given_along'), justification: 'given along' }))).justification).toBe('given along')
    expect((await service.get(await held({ ...statement('select 1 as asked'), askJustification: async ({ ruleId }) => `asked under ${ruleId}` }))).justification).toBe('asked under hold-all')
    // What a wire protocol sends: no justification, no way to ask. (Shapes of their own: an earlier grant covers `select N`.)
    const wire = await service.get(await held(statement('select 1 as from_a_wire_protocol')))
    expect(wire.justification).toBeUndefined()
    expect(justificationText(wire)).toBe('no justification given')
  })

  it('resolves a polled approval: still waiting, run once when approved, or the error that ends it', async () => {
    const service = new ApprovalService({ store, replica: 'poller' })
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: holdAll, hold: approvalHoldStage(service), mask: passThroughMask })
    const ask = async (sql: string): Promise<string> => {
      const trip: RoundTrip = {}
      await expect(pipeline.admit(statement(sql), trip)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED' })
      return (trip.hold as { approvalId: string }).approvalId
    }
    const poll = async (sql: string, approvalId: string, principal = agentForAlice): Promise<RoundTrip> => {
      const trip: RoundTrip = {}
      await pipeline.admit({ ...statement(sql), principal, approvalId }, trip)
      return trip
    }
    const id = await ask('insert into t values (1)')
    const waiting: RoundTrip = {}
    await expect(pipeline.admit({ ...statement('insert into t values (1)'), approvalId: id }, waiting)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED' })
    expect(waiting.hold).toEqual({ state: 'pending', approvalId: id })
    // Exactly the statement it was asked for, by the one who asked.
    await expect(poll('insert into t values (2)', id)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_MISMATCH' })
    await expect(poll('insert into t values (1)', id, erin)).rejects.toMatchObject({ code: 'SLUICE_NOT_FOUND' })
    await service.approve(id, carol)
    expect((await poll('insert into t values (1)', id)).hold).toEqual({ state: 'granted', approvalId: id, approver: 'carol' })
    await expect(poll('insert into t values (1)', id)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_EXECUTED', message: expect.stringContaining('run by gateway poller') })

    const denied = await ask('insert into t values (3)')
    await service.deny(denied, carol, 'not in production')
    await expect(poll('insert into t values (3)', denied)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_DENIED', message: `approval ${denied} denied by carol: not in production` })
    const expired = await ask('insert into t values (4)')
    await store.query("update approvals set expires_at = now() - interval '1 second' where id = $1::uuid", [expired])
    await expect(poll('insert into t values (4)', expired)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_EXPIRED', message: `approval ${expired} expired after 30 min; ask again or change the statement` })
    const withdrawn = await ask('insert into t values (5)')
    await service.withdraw(withdrawn, agentForAlice)
    await expect(poll('insert into t values (5)', withdrawn)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_WITHDRAWN' })
  })
})
