// The pipeline asks the warehouse for an estimate only when a rule that could decide matches on
// it: never for a policy without such a rule (the common path never waits for a dry run), once
// for one with it, and a failing or missing estimator is "no estimate" (the rule fails closed).
import { describe, expect, it } from 'vitest'
import { Pipeline, type RoundTrip, type Statement } from '../../src/pipeline.js'
import { decideStage } from '../../src/pipeline/compose.js'
import type { WarehouseEstimate } from '../../src/pipeline/estimate.js'
import { passThroughMask, refuseApprovals, type AnalyzeStage } from '../../src/pipeline/stages.js'
import { engineFrom, stmt } from '../policy/fixtures.js'

const analyze: AnalyzeStage = {
  name: 'analyze',
  enforcing: true,
  // A text with `;` is analysed as the two statements it holds.
  analyze: (statement) => ({
    dialect: 'bigquery',
    statements: statement.sql.includes(';')
      ? [stmt('select', { text: 'SELECT 1', tablesRead: ['p.d.t'] }), stmt('ddl', { text: 'DROP TABLE p.d.t', tablesWritten: ['p.d.t'] })]
      : [stmt('select', { text: 'SELECT …', tablesRead: ['p.d.t'] })]
  })
}

function statementWith (estimate: Statement['estimate'], roles = ['agent'], sql = 'SELECT 1'): Statement {
  return {
    requestId: 'r1',
    frontEnd: 'test',
    principal: { subject: 'alice', issuer: 'https://idp', type: 'human', groups: [], roles, delegation: [], expiresAt: new Date() },
    connection: { name: 'bq', kind: 'bigquery', defaults: {} },
    sql,
    client: {},
    ...(estimate !== undefined && { estimate })
  }
}

function counting (answer: () => Promise<WarehouseEstimate | undefined>): { estimate: NonNullable<Statement['estimate']>, calls: () => number } {
  let calls = 0
  return { estimate: async () => { calls++; return await answer() }, calls: () => calls }
}

const COST = 'rules:\n  - { id: no-big, effect: deny, match: { roles: [agent], estimatedBytesOver: 1000 } }\n  - { id: reads, effect: allow }'
const PLAIN = 'rules:\n  - { id: reads, effect: allow }'
const pipelineOf = (policy: string): Pipeline => new Pipeline({ analyze, decide: decideStage(engineFrom(policy)), hold: refuseApprovals, mask: passThroughMask })

describe('estimates in the pipeline', () => {
  it('never asks when no rule matches on the estimate', async () => {
    const spy = counting(async () => ({ bytes: 10 ** 12, source: 'bigquery-dry-run' }))
    const trip: RoundTrip = {}
    expect((await pipelineOf(PLAIN).admit(statementWith(spy.estimate), trip)).decision.ruleId).toBe('reads')
    expect(spy.calls()).toBe(0)
    expect(trip.estimate).toBeUndefined()
  })

  it('never asks when the cost rule does not apply to the caller', async () => {
    const spy = counting(async () => ({ bytes: 10 ** 12, source: 'bigquery-dry-run' }))
    expect((await pipelineOf(COST).admit(statementWith(spy.estimate, ['analyst']), {})).decision.ruleId).toBe('reads')
    expect(spy.calls()).toBe(0)
  })

  it('asks once when a cost rule could decide, and decides on the answer', async () => {
    const big = counting(async () => ({ bytes: 5000, source: 'bigquery-dry-run' }))
    const trip: RoundTrip = {}
    await expect(pipelineOf(COST).admit(statementWith(big.estimate), trip)).rejects.toThrow(/^denied by rule no-big: .*would read 4.88 KiB \(5000 bytes\)/)
    expect(big.calls()).toBe(1)
    expect(trip.estimate).toEqual({ bytes: 5000, source: 'bigquery-dry-run' })
    const small = counting(async () => ({ bytes: 10, source: 'bigquery-dry-run' }))
    expect((await pipelineOf(COST).admit(statementWith(small.estimate), {})).decision.ruleId).toBe('reads')
    expect(small.calls()).toBe(1)
  })

  it('no estimator, one that fails, or one that cannot say: no estimate, refused by the rule', async () => {
    const failing = counting(async () => { throw new Error('dry run failed') })
    const silent = counting(async () => undefined)
    for (const estimate of [undefined, failing.estimate, silent.estimate]) {
      const trip: RoundTrip = {}
      await expect(pipelineOf(COST).admit(statementWith(estimate), trip)).rejects.toThrow(/^denied by rule no-big: .*gave no estimate/)
      expect(trip.estimate).toBeNull()
    }
  })

  it('never asks about a text of several statements: the question would carry the others upstream before the policy decided', async () => {
    const spy = counting(async () => ({ bytes: 10, source: 'snowflake-explain' }))
    const trip: RoundTrip = {}
    await expect(pipelineOf(COST).admit(statementWith(spy.estimate, ['agent'], 'SELECT 1; DROP TABLE p.d.t'), trip)).rejects.toThrow(/^denied by rule no-big: .*gave no estimate/)
    expect(spy.calls()).toBe(0)
    expect(trip.estimate).toBeNull()
  })
})
