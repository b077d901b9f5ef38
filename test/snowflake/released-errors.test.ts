// A Snowflake statement failure is released once, under its statement (execute.ts), keeping its
// code, SQL state and query id; the protocol renderers add the detectors as a last net for
// upstream wording that arrived without a statement (a refused upstream login).
import { describe, expect, it } from 'vitest'
import { ERR_UPSTREAM_FAILED } from '../../src/errors.js'
import { createMaskStage } from '../../src/masking/stage.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline } from '../../src/pipeline.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { releaseFailure } from '../../src/warehouses/snowflake/execute.js'
import { statementFailed } from '../../src/warehouses/snowflake/statement-failed.js'
import { errorInfo } from '../../src/warehouses/snowflake/wire.js'

const rules = parsePolicySet([{ name: 'p.yaml', text: "version: 1\nmasking:\n  - { id: pii, columns: ['db.s.customers.email'], function: redact }\n" }]).masking
const pipeline = new Pipeline({
  analyze: { name: 'analyze', enforcing: true, analyze: () => ({ dialect: 'snowflake', statements: [] }) },
  decide: passThroughDecide,
  hold: refuseApprovals,
  mask: createMaskStage({ rules: () => rules })
})
const statement = {
  requestId: 'r', frontEnd: 'snowflake-sqlapi', sql: 'SELECT EMAIL::INT FROM CUSTOMERS', client: {},
  principal: { subject: 'alice', roles: ['agent'] } as unknown as Statement['principal'],
  connection: { name: 'sf', kind: 'snowflake', defaults: { database: 'db', schema: 's' } }
} satisfies Statement
const admission = {
  analysis: { dialect: 'snowflake', statements: [{ kind: 'select', text: statement.sql, tablesRead: ['db.s.customers'], tablesWritten: [], functions: [], hasLimit: false }] },
  decision: { effect: 'allow', ruleId: 'r', reason: 'ok', limits: {} }
} satisfies Admission
const release = (message: string, codes: { code: string, sqlState: string }): string => pipeline.releaseError(undefined, undefined, message, codes)
const QUOTED = "Numeric value 'alice@example.com' is not recognized"

describe('Snowflake statement failures', () => {
  it('are withheld under a statement reading a masked table, code, SQL state and query id kept', () => {
    const raw = statementFailed('sf', QUOTED, { snowflakeCode: '100038', sqlState: '22018', upstreamQueryId: 'q-1' })
    const released = releaseFailure(pipeline, statement, admission, raw) as Error & Record<string, unknown>
    expect(released).toMatchObject({ snowflakeCode: '100038', sqlState: '22018', upstreamQueryId: 'q-1', statusCode: 422 })
    expect(released.upstream).toBeUndefined()
    const info = errorInfo(released, 'req', release)
    expect(info).toMatchObject({ code: '100038', sqlState: '22018', catalogueCode: 'SLUICE_SNOWFLAKE_STATEMENT_FAILED' })
    expect(info.message).toBe("statement failed on connection sf: the warehouse reported error 100038 (22018); its message was withheld because the statement reads db.s.customers, which has masking rule pii (warehouse messages can quote column values). Check the statement's casts and functions on masked columns; an operator can read the full message in the warehouse's query history")
    for (const text of [String(released.stack), JSON.stringify(released)]) expect(text).not.toContain('alice')
  })

  it('the renderers\' net redacts detector shapes in upstream wording that came without a statement', () => {
    const login = new ERR_UPSTREAM_FAILED('sf', "login refused (390100): user 'alice@example.com' is locked")
    expect(errorInfo(login, 'req', release).message).toBe("warehouse connection sf returned an error: login refused (390100): user '[redacted:email]' is locked")
    expect(errorInfo(statementFailed('sf', QUOTED, {}), 'req', release).message).not.toContain('alice')
  })
})
