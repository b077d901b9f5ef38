// A statement admitted on one replica and served on another: the stored record carries no bind
// values, survives JSON (the principal's expiry comes back a Date), and `Pipeline.resume` on a
// second pipeline (its own mask stage and parser pool, the same shared secret) masks a page
// exactly as the admitting pipeline did — tokens included.
import { afterAll, describe, expect, test } from 'vitest'
import { createMaskStage } from '../../src/masking/stage.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { admittedRecord, decodeAdmitted, encodeAdmitted, Pipeline, type RoundTrip } from '../../src/pipeline.js'
import type { ResultPage, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createPooledAnalyzer } from '../../src/sql/pooled-analyzer.js'

const rules = parsePolicySet([{
  name: 'p.yaml',
  text: `
version: 1
masking:
  - { id: pii, columns: ['analytics.public.customers.email'], function: email }
  - { id: tok, columns: ['analytics.public.customers.phone'], function: token }
`
}]).masking

const analyzers = [createPooledAnalyzer(), createPooledAnalyzer()]
afterAll(async () => { await Promise.all(analyzers.map(async (a) => { await a.close() })) })
const secret = Buffer.alloc(32, 7)

function replica (i: number): Pipeline {
  const analyzer = analyzers[i] as (typeof analyzers)[number]
  return new Pipeline({ analyze: analyzeStage(analyzer), decide: passThroughDecide, hold: refuseApprovals, mask: createMaskStage({ rules: () => rules, secret }) })
}

const statement: Statement = {
  requestId: 'r1',
  frontEnd: 'test',
  sql: 'SELECT c.email AS who, UPPER(c.phone) AS p, c.phone FROM customers c WHERE id = ?',
  params: ['secret-bind-value'],
  client: {},
  principal: { subject: 'alice', issuer: 'https://idp', type: 'human', groups: [], roles: ['agent'], delegation: [], expiresAt: new Date('2030-01-01T00:00:00Z') },
  connection: { name: 'sf', kind: 'snowflake', defaults: { database: 'analytics', schema: 'public' } }
}
const schema = { columns: [{ name: 'WHO', type: 'TEXT' }, { name: 'P', type: 'TEXT' }, { name: 'PHONE', type: 'TEXT' }] }
const page = (): ResultPage => ({ rows: [['ann@example.com', '555-0100', '555-0100'], ['bob@example.org', null, '555-0199']] })

async function released (p: Pipeline, admission: Awaited<ReturnType<Pipeline['admit']>>): Promise<unknown[][]> {
  async function * pages (): AsyncIterable<ResultPage> { yield page() }
  const out: unknown[][] = []
  for await (const masked of p.release(statement, admission, { schema, pages: pages() }, {}).pages) out.push(...masked.rows)
  return out
}

describe('a statement admitted on one replica, served on another', () => {
  test('the record keeps no bind values and survives JSON', async () => {
    const first = replica(0)
    const admission = await first.admit(statement, {} satisfies RoundTrip)
    const text = encodeAdmitted(admittedRecord(statement, { ...admission, statementId: 'st-1' }))
    expect(text).not.toContain('secret-bind-value')
    const back = decodeAdmitted(text)
    expect(back.statement.principal.expiresAt).toBeInstanceOf(Date)
    expect(back.statement.principal.expiresAt.toISOString()).toBe('2030-01-01T00:00:00.000Z')
    expect(back.statementId).toBe('st-1')
    expect(back.decision).toEqual(admission.decision)
    // A parsed jsonb value (what a store returns for a jsonb column) decodes the same.
    expect(decodeAdmitted(JSON.parse(text) as never)).toEqual(back)
  })

  test('resume on a second pipeline masks a page exactly as the first did', async () => {
    const first = replica(0)
    const admission = await first.admit(statement, {})
    const there = await released(first, admission)
    expect(there[0]?.[0]).not.toBe('ann@example.com')
    expect(there[0]?.[2]).toMatch(/^tok_/)

    const second = replica(1)
    const resumed = await second.resume(decodeAdmitted(encodeAdmitted(admittedRecord(statement, { ...admission, statementId: 'st-1' }))))
    expect(resumed.statementId).toBe('st-1')
    expect(resumed.decision).toEqual(admission.decision)
    expect(await released(second, resumed)).toEqual(there)
  })
})
