import { describe, expect, it } from 'vitest'
import { Pipeline, type NeutralResult, type ResultPage, type RoundTrip, type Statement } from '../../src/pipeline.js'
import {
  passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals,
  type DecideStage, type MaskStage
} from '../../src/pipeline/stages.js'
import type { Effect } from '../../src/policy/types.js'

const statement: Statement = {
  requestId: 'r1',
  frontEnd: 'test',
  principal: { subject: 'alice', issuer: 'https://idp', type: 'human', groups: [], roles: ['agent'], delegation: [], expiresAt: new Date() },
  connection: { name: 'wh', kind: 'snowflake', defaults: {} },
  sql: 'SELECT 1',
  client: {}
}

function deciding (effect: Effect): DecideStage {
  return { name: 'decide', enforcing: true, decide: () => ({ effect, ruleId: `rule-${effect}`, reason: `because ${effect}`, limits: {} }) }
}

async function collect (pages: AsyncIterable<ResultPage>): Promise<unknown[][]> {
  const rows: unknown[][] = []
  for await (const page of pages) rows.push(...page.rows)
  return rows
}

function resultOf (...pages: unknown[][][]): NeutralResult {
  return {
    schema: { columns: [{ name: 'ID', type: 'NUMBER' }, { name: 'EMAIL', type: 'TEXT' }] },
    upstreamId: 'q-1',
    pages: (async function * () { for (const rows of pages) yield { rows } })()
  }
}

describe('pipeline', () => {
  it('names the stages that only pass through', () => {
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
    expect(pipeline.notEnforcing()).toEqual(['analyze', 'decide', 'mask'])
  })

  it('admits an allowed statement and records the analysis and decision', async () => {
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: deciding('allow'), hold: refuseApprovals, mask: passThroughMask })
    const trip: RoundTrip = {}
    const admission = await pipeline.admit(statement, trip)
    expect(admission.decision.ruleId).toBe('rule-allow')
    expect(trip.sql).toBe('SELECT 1')
    expect(trip.analysis?.statements[0]?.kind).toBe('unknown')
  })

  it('refuses a denied statement with the rule id and reason', async () => {
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: deciding('deny'), hold: refuseApprovals, mask: passThroughMask })
    const trip: RoundTrip = {}
    await expect(pipeline.admit(statement, trip)).rejects.toMatchObject({
      code: 'SLUICE_POLICY_DENIED',
      message: 'denied by rule rule-deny: because deny'
    })
    expect(trip.decision?.effect).toBe('deny')
  })

  it('lets a front end refuse on the analysis before any decision, hold or admitted record', async () => {
    let decided = false
    const decide: DecideStage = { name: 'decide', enforcing: true, decide: () => { decided = true; return { effect: 'require_approval', ruleId: 'held', reason: 'held', limits: {} } } }
    let held = false
    const hold = { name: 'hold', enforcing: true, hold: async () => { held = true; return { state: 'pending' as const, approvalId: 'a1' } } }
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide, hold, mask: passThroughMask })
    let admitted = false
    const trip: RoundTrip = { onAdmitted: async () => { admitted = true } }
    const seen: string[][] = []
    const refusal = new Error('the front end refuses it')
    await expect(pipeline.admit(statement, trip, {
      analysed: (analysis) => { seen.push(analysis.statements.map((s) => s.text)); throw refusal }
    })).rejects.toBe(refusal)
    expect(seen).toEqual([['SELECT 1']])
    expect(trip.analysis?.statements[0]?.text).toBe('SELECT 1')
    expect({ decided, held, admitted, decision: trip.decision }).toEqual({ decided: false, held: false, admitted: false, decision: undefined })
  })

  it('never turns require_approval into an allow while approvals are unavailable', async () => {
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: deciding('require_approval'), hold: refuseApprovals, mask: passThroughMask })
    const trip: RoundTrip = {}
    await expect(pipeline.admit(statement, trip)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_REQUIRED' })
    expect(trip.hold?.state).toBe('refused')
  })

  it('masks every page it releases and counts rows and masked values', async () => {
    const redactEmail: MaskStage = {
      name: 'mask',
      enforcing: true,
      plan: () => ({ columns: [{ index: 1, rule: 'mask-email' }] }),
      mask: (_plan, page) => ({ rows: page.rows.map(([id]) => [id, '***']) })
    }
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: deciding('allow'), hold: refuseApprovals, mask: redactEmail })
    const trip: RoundTrip = {}
    const admission = await pipeline.admit(statement, trip)
    const released = pipeline.release(statement, admission, resultOf([[1, 'a@x.io'], [2, 'b@x.io']], [[3, 'c@x.io']]), trip)
    expect(await collect(released.pages)).toEqual([[1, '***'], [2, '***'], [3, '***']])
    expect(trip.rowsReturned).toBe(3)
    expect(trip.upstreamId).toBe('q-1')
    expect(trip.maskedColumns).toEqual([{ column: 'EMAIL', rule: 'mask-email', values: 3 }])
  })
})
