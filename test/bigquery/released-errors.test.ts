// Every BigQuery surface that carries upstream error text releases it through the pipeline:
// thrown call failures (4xx/5xx bodies, tabledata.list included), `errors` of query answers and
// a job's errorResult / errors (jobs.list entries carry errorResult at their top level too).
// Reasons and status codes stay; the raw text never rides along where a logger could find it.
import { describe, expect, it } from 'vitest'
import { createMaskStage } from '../../src/masking/stage.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline } from '../../src/pipeline.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { errorScope, releaseJob, releaseQueryResults, releaseThrown, releasing } from '../../src/warehouses/bigquery/released-errors.js'
import { upstreamError } from '../../src/warehouses/bigquery/upstream.js'

const rules = parsePolicySet([{ name: 'p.yaml', text: "version: 1\nmasking:\n  - { id: pii, columns: ['p.crm.customers.email'], function: redact }\n" }]).masking
const pipeline = new Pipeline({
  analyze: { name: 'analyze', enforcing: true, analyze: () => ({ dialect: 'bigquery', statements: [] }) },
  decide: passThroughDecide,
  hold: refuseApprovals,
  mask: createMaskStage({ rules: () => rules })
})
const statement = {
  requestId: 'r', frontEnd: 'bigquery', sql: 'SELECT CAST(email AS INT64) FROM crm.customers', client: {},
  principal: { subject: 'alice', roles: ['agent'] } as unknown as Statement['principal'],
  connection: { name: 'bq', kind: 'bigquery', defaults: { database: 'p', schema: 'crm' } }
} satisfies Statement
const admission = {
  analysis: { dialect: 'bigquery', statements: [{ kind: 'select', text: statement.sql, tablesRead: ['p.crm.customers'], tablesWritten: [], functions: [], hasLimit: false }] },
  decision: { effect: 'allow', ruleId: 'r', reason: 'ok', limits: {} }
} satisfies Admission
const scope = errorScope(pipeline, statement, admission)
const QUOTED = "Bad int64 value: 'alice@example.com'"

describe('BigQuery upstream error text', () => {
  it('rebuilds a thrown call failure with released text, status and reason kept, no raw text left', async () => {
    const thrown = await releasing(scope, async () => { throw upstreamError('bq', 400, 'invalidQuery', QUOTED) }).catch((e: unknown) => e as Error & Record<string, unknown>)
    expect(thrown).toMatchObject({ statusCode: 400, reason: 'invalidQuery', code: 'SLUICE_BIGQUERY_UPSTREAM' })
    expect(thrown.message).toMatch(/^BigQuery \(connection bq\): the warehouse reported error invalidQuery; its message was withheld/)
    for (const text of [thrown.message, String(thrown.stack), JSON.stringify(thrown), JSON.stringify(thrown.upstream ?? null)]) expect(text).not.toContain('alice')
  })

  it('without a statement (catalogue reads, the error handler\'s net) the detectors still run', () => {
    const released = releaseThrown(errorScope(pipeline), upstreamError('bq', 404, 'notFound', `Not found: ${QUOTED}`)) as Error
    expect(released.message).toBe("BigQuery (connection bq): Not found: Bad int64 value: '[redacted:email]'")
    const other = new Error('not an upstream error')
    expect(releaseThrown(errorScope(pipeline), other)).toBe(other)
  })

  it('releases errors of a query answer and of a job, jobs.list\'s top-level errorResult included', () => {
    const proto = { reason: 'invalidQuery', location: 'query', message: QUOTED }
    const answer = releaseQueryResults(scope, { jobComplete: true, errors: [proto] })
    expect(answer.errors).toEqual([{ reason: 'invalidQuery', location: 'query', message: expect.stringMatching(/^the warehouse reported error invalidQuery; its message was withheld/) }])
    const job = releaseJob(scope, { status: { state: 'DONE', errorResult: proto, errors: [proto] }, errorResult: proto })
    expect(JSON.stringify(job)).not.toContain('alice')
    expect(job.status?.state).toBe('DONE')
    expect((job.status?.errorResult as { reason: string }).reason).toBe('invalidQuery')
    const clean = { jobComplete: true, rows: [] }
    expect(releaseQueryResults(scope, clean)).toBe(clean)
  })
})
