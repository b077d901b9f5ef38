// The hold stage in the pipeline, and the switch that turns it on: off by default (a held
// statement is refused as before, nothing is stored), on with approvals.enabled (the refusal
// names a pending approval; sent again once approved, the statement is admitted once, with
// the approval and approver on the round trip; a grant admits the same shape).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
import { agentForAlice, carol } from './fixtures.js'

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
})
