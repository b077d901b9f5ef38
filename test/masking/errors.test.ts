// Upstream error messages quote cell values ("Could not convert string 'ada@example.com'",
// ERROR(col)); they are released like rows: withheld (codes kept) when the statement reads a
// table with masking rules in force for the caller, detector-redacted otherwise, and redacted
// by the detectors whenever the statement or its admission is unknown (fail closed).
import { beforeAll, describe, expect, test } from 'vitest'
import { createScanner } from '../../src/masking/detectors.js'
import { safeUpstreamMessage } from '../../src/masking/errors.js'
import { createMaskStage } from '../../src/masking/stage.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline } from '../../src/pipeline.js'
import type { Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { SqlAnalyzer } from '../../src/sql/types.js'

const POLICY = `
version: 1
masking:
  - { id: pii, columns: ['analytics.public.customers.email'], function: redact, exemptRoles: [support] }
`
const rules = parsePolicySet([{ name: 'p.yaml', text: POLICY }]).masking
const scan = createScanner()
const CANARY = 'ada.canary-51ab@example.com'
const QUOTING = `100038 (22018): Numeric value '${CANARY}' is not recognized`

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer() })

function statement (sql: string, roles = ['agent']): Statement {
  return {
    requestId: 'r1', frontEnd: 'test', sql, client: {},
    principal: { subject: 'alice', type: 'human', groups: [], roles } as unknown as Statement['principal'],
    connection: { name: 'sf', kind: 'snowflake', defaults: { database: 'analytics', schema: 'public' } }
  }
}

function pipeline (): Pipeline {
  return new Pipeline({ analyze: analyzeStage(analyzer), decide: passThroughDecide, hold: refuseApprovals, mask: createMaskStage({ rules: () => rules }) })
}

describe('safeUpstreamMessage', () => {
  const reads = (...tablesRead: string[]) => [{ kind: 'select' as const, tablesRead, tablesWritten: [] }]

  test('withholds the text of a statement reading a masked table, keeping code and SQL state', () => {
    const out = safeUpstreamMessage(QUOTING, { rules, scan, statements: reads('analytics.public.customers'), code: '100038', sqlState: '22018' })
    expect(out).not.toContain('canary')
    expect(out).toMatch(/^the warehouse reported error 100038 \(22018\); its message was withheld because the statement reads analytics\.public\.customers, which has masking rule pii/)
  })

  test('withholds for tables written too, and for statements it cannot analyse', () => {
    const update = [{ kind: 'update' as const, tablesRead: [], tablesWritten: ['analytics.public.customers'] }]
    expect(safeUpstreamMessage(QUOTING, { rules, scan, statements: update })).toMatch(/^the warehouse reported an error; its message was withheld/)
    const opaque = [{ kind: 'unknown' as const, tablesRead: [], tablesWritten: [] }]
    expect(safeUpstreamMessage(QUOTING, { rules, scan, statements: opaque, code: 'invalidQuery' })).toMatch(/^the warehouse reported error invalidQuery; its message was withheld because the statement cannot be fully analysed/)
  })

  test('redacts detector shapes when no masked table is read', () => {
    const out = safeUpstreamMessage(QUOTING, { rules, scan, statements: reads('analytics.public.orders'), code: '100038' })
    expect(out).toBe("100038 (22018): Numeric value '[redacted:email]' is not recognized")
    const ssn = safeUpstreamMessage("Bad int64 value: '123-45-6789'", { rules, scan, statements: reads('analytics.public.orders') })
    expect(ssn).toBe("Bad int64 value: '[redacted:ssn]'")
  })

  test('fails closed to the detectors without an admission, and keeps harmless text as it is', () => {
    expect(safeUpstreamMessage(QUOTING, { rules, scan })).not.toContain(CANARY)
    expect(safeUpstreamMessage('Syntax error: Unexpected keyword FROM at [1:8]', { rules, scan, statements: reads('analytics.public.orders') }))
      .toBe('Syntax error: Unexpected keyword FROM at [1:8]')
  })

  test('with no rules in force (exempt caller) only the detectors apply', () => {
    const out = safeUpstreamMessage(QUOTING, { rules: [], scan, statements: reads('analytics.public.customers') })
    expect(out).toBe("100038 (22018): Numeric value '[redacted:email]' is not recognized")
  })
})

describe('Pipeline.releaseError through the configured mask stage', () => {
  test('withholds for a statement reading the masked table', async () => {
    const p = pipeline()
    const st = statement('SELECT CAST(email AS INT) FROM customers')
    const admission = await p.admit(st, {})
    const out = p.releaseError(st, admission, QUOTING, { code: '100038', sqlState: '22018' })
    expect(out).toContain('error 100038 (22018)')
    expect(out).toContain('withheld')
    expect(out.toLowerCase()).not.toContain('canary')
  })

  test('an exempt role gets the message with detector shapes redacted', async () => {
    const p = pipeline()
    const st = statement('SELECT CAST(email AS INT) FROM customers', ['support'])
    const out = p.releaseError(st, await p.admit(st, {}), QUOTING, { code: '100038' })
    expect(out).toBe("100038 (22018): Numeric value '[redacted:email]' is not recognized")
  })

  test('without a statement or admission the detectors still run', async () => {
    const p = pipeline()
    expect(p.releaseError(undefined, undefined, QUOTING)).not.toContain(CANARY)
    expect(p.releaseError(statement('SELECT 1'), undefined, QUOTING)).not.toContain(CANARY)
  })

  test('a pass-through mask stage releases the message as it is', () => {
    const p = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
    expect(p.releaseError(undefined, undefined, QUOTING)).toBe(QUOTING)
  })
})
