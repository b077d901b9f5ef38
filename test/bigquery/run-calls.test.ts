// A BigQuery upstream call under its statement's run: timed as the warehouse call, a failure
// leaves with released text, and one after the rule's timeout ran out is BigQuery's own
// timeout answer (400 `timeout`, which clients do not retry) rather than the upstream's error.
import { describe, expect, it } from 'vitest'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline, type RoundTrip } from '../../src/pipeline.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { createMaskStage } from '../../src/masking/stage.js'
import { upstreamCall } from '../../src/warehouses/bigquery/run-calls.js'
import { upstreamError } from '../../src/warehouses/bigquery/upstream.js'

const pipeline = new Pipeline({
  analyze: { name: 'analyze', enforcing: true, analyze: () => ({ dialect: 'bigquery', statements: [] }) },
  decide: passThroughDecide,
  hold: refuseApprovals,
  mask: createMaskStage({ rules: () => [] })
})
const statement = {
  requestId: 'r', frontEnd: 'bigquery', sql: 'SELECT 1', client: {},
  principal: { subject: 'alice', roles: ['agent'] } as unknown as Statement['principal'],
  connection: { name: 'bq', kind: 'bigquery', defaults: { database: 'p' } }
} satisfies Statement
const admission = {
  analysis: { dialect: 'bigquery', statements: [] },
  decision: { effect: 'allow', ruleId: 'r', reason: 'ok', limits: { statementTimeoutSeconds: 1 } }
} satisfies Admission
const QUOTED = "Bad int64 value: 'alice@example.com'"

async function failAfter (ms: number): Promise<never> {
  await new Promise((resolve) => setTimeout(resolve, ms))
  throw upstreamError('bq', 400, 'invalidQuery', QUOTED)
}

describe('an upstream call under the statement\'s run', () => {
  it('fails with released text while the rule\'s timeout has time left, and is timed', async () => {
    const trip: RoundTrip = {}
    const run = pipeline.run(statement, admission, trip)
    const thrown = await upstreamCall(run, async () => await failAfter(10)).catch((e: unknown) => e as Error & Record<string, unknown>).finally(() => { run.close() })
    expect(thrown).toMatchObject({ statusCode: 400, reason: 'invalidQuery', code: 'SLUICE_BIGQUERY_UPSTREAM' })
    expect(thrown.message).not.toContain('alice')
    expect(trip.timings?.upstream).toBeGreaterThan(0)
  })

  it('fails as BigQuery\'s 400 timeout once the rule\'s timeout ran out', async () => {
    const run = pipeline.run(statement, admission, {})
    const thrown = await upstreamCall(run, async () => await failAfter(1100)).catch((e: unknown) => e as Error & Record<string, unknown>).finally(() => { run.close() })
    expect(thrown).toMatchObject({ statusCode: 400, reason: 'timeout', code: 'SLUICE_STATEMENT_TIMEOUT' })
    expect(thrown.message).toContain('timeout of 1 second(s) and was canceled')
  })
})
