// A table name part the connection's defaults do not give (the warehouse fills it from its
// session) may be any name: a deny rule over the table claims the statement, an allow rule
// scoped to the table does not cover it. Through the real analyzer and policy engine.
import { beforeAll, expect, test } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { QualifyDefaults, SqlAnalyzer } from '../../src/sql/types.js'
import { engineFrom, input } from './fixtures.js'

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer({ cacheSize: 0 }) })

const POLICY = [
  'rules:',
  '  - { id: no-payroll, effect: deny, match: { tables: ["db.hr.payroll"] } }',
  '  - { id: app-reads, effect: allow, match: { kinds: [select], tables: ["db.app.*"] } }',
  '  - { id: any-schema-reads, effect: allow, match: { kinds: [select], tables: ["db.*.orders"] } }'
].join('\n')

function decide (sql: string, defaults: QualifyDefaults): string {
  return engineFrom(POLICY).decide(input(analyzer.analyze(sql, 'snowflake', defaults))).ruleId
}

test.each([
  [{ database: 'db' }, 'SELECT * FROM payroll', 'no-payroll'],
  [{}, 'SELECT * FROM hr.payroll', 'no-payroll'],
  [{ database: 'db' }, 'SELECT * FROM customers', 'default-deny'],
  [{ database: 'db' }, 'SELECT * FROM orders', 'any-schema-reads'],
  [{ database: 'db', schema: 'app' }, 'SELECT * FROM customers', 'app-reads'],
  [{ database: 'db', schema: 'app' }, 'SELECT * FROM hr.payroll', 'no-payroll']
] as const)('defaults %j: %s is decided by %s', (defaults, sql, rule) => {
  expect(decide(sql, defaults)).toBe(rule)
})
