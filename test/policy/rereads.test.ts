// Sources that re-read results or other sessions' SQL, through the real analyzer and the policy
// engine: each dialect's family is found, refused by Sluice (rule result-reread) even where a
// rule allows the statement, allowed only by a rule naming it, and a deny rule still names itself.
import { beforeAll, describe, expect, test } from 'vitest'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { Dialect, SqlAnalyzer } from '../../src/sql/types.js'
import { engineFrom, input } from './fixtures.js'

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer({ cacheSize: 0 }) })

const REREADS: Array<[Dialect, string, string]> = [
  ['snowflake', 'SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))', 'result_scan'],
  ['snowflake', "SELECT * FROM TABLE(RESULT_SCAN('01a2b3c4-0000-0000-0000-000000000000'))", 'result_scan'],
  ['snowflake', 'SELECT c.* FROM customers c JOIN TABLE(RESULT_SCAN(LAST_QUERY_ID(-2))) r ON c.id = r.id', 'result_scan'],
  ['snowflake', 'SELECT query_text FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY())', 'query_history'],
  ['snowflake', 'SELECT query_text FROM TABLE(db.INFORMATION_SCHEMA.QUERY_HISTORY_BY_SESSION())', 'query_history'],
  ['snowflake', 'SELECT query_text FROM TABLE(information_schema.query_history_by_user(user_name => \'BOB\'))', 'query_history'],
  ['snowflake', 'SELECT * FROM TABLE(INFORMATION_SCHEMA.TASK_HISTORY())', 'query_history'],
  ['snowflake', 'SELECT query_text FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY', 'account_usage'],
  ['snowflake', 'SELECT * FROM snowflake.account_usage.access_history', 'account_usage'],
  ['snowflake', 'SELECT * FROM SNOWFLAKE.ORGANIZATION_USAGE.QUERY_HISTORY', 'account_usage'],
  ['snowflake', 'WITH h AS (SELECT * FROM snowflake.account_usage.query_history) SELECT COUNT(*) FROM h', 'account_usage'],
  ['bigquery', 'SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS', 'jobs'],
  ['bigquery', 'SELECT query FROM `proj`.`region-eu`.INFORMATION_SCHEMA.JOBS_BY_USER', 'jobs'],
  ['bigquery', 'SELECT query FROM `proj.region-us.INFORMATION_SCHEMA.JOBS_BY_PROJECT`', 'jobs'],
  ['bigquery', 'SELECT * FROM region-us.INFORMATION_SCHEMA.JOBS_TIMELINE', 'jobs'],
  ['bigquery', 'SELECT * FROM `proj._0a1b2c3d.anon1234`', 'anonymous_dataset'],
  ['bigquery', 'SELECT * FROM proj._script5f2e.t', 'anonymous_dataset'],
  ['bigquery', 'SELECT a.* FROM app.t a WHERE a.id IN (SELECT id FROM `proj._abc.anon`)', 'anonymous_dataset'],
  ['postgres', 'SELECT query FROM pg_stat_activity', 'activity'],
  ['postgres', 'SELECT query FROM pg_catalog.pg_stat_activity', 'activity'],
  ['postgres', 'SELECT query FROM public.pg_stat_statements', 'activity']
]

const KIND = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' } as const

function decide (yaml: string, dialect: Dialect, sql: string): ReturnType<ReturnType<typeof engineFrom>['decide']> {
  const analysis = analyzer.analyze(sql, dialect, { database: 'proj', schema: 'app' })
  return engineFrom(yaml).decide(input(analysis, { connection: { name: 'prod', kind: KIND[dialect] } }))
}

const ALLOW_READS = 'rules:\n  - { id: reads, effect: allow, match: { kinds: [select] } }'

describe('re-reading sources', () => {
  test.each(REREADS)('%s: %s is found as %s', (dialect, sql, kind) => {
    const s = analyzer.analyze(sql, dialect, { database: 'proj', schema: 'app' }).statements[0]
    expect(s?.rereads?.map((r) => r.kind)).toContain(kind)
  })

  test.each(REREADS)('%s: %s is refused although a rule allows SELECT', (dialect, sql, kind) => {
    const d = decide(ALLOW_READS, dialect, sql)
    expect(d.effect).toBe('deny')
    expect(d.ruleId).toBe('result-reread')
    expect(d.reason).toMatch(/^denied by rule result-reread: .* is refused: .*query the tables themselves/)
    expect(d.reason).toContain(`rereads: [${kind}]`)
  })

  test.each(REREADS)('%s: %s is allowed by a rule naming %s', (dialect, sql, kind) => {
    const d = decide(`rules:\n  - { id: history-ok, effect: allow, match: { kinds: [select], rereads: [${kind}] } }`, dialect, sql)
    expect(d).toMatchObject({ effect: 'allow', ruleId: 'history-ok' })
  })

  test('a rule naming one source does not allow another', () => {
    const d = decide('rules:\n  - { id: scan-ok, effect: allow, match: { rereads: [result_scan] } }\n  - { id: reads, effect: allow, match: { kinds: [select] } }',
      'snowflake', 'SELECT * FROM snowflake.account_usage.query_history')
    expect(d.ruleId).toBe('result-reread')
  })

  test('a deny rule that matches first still names itself; rereads as a deny condition', () => {
    expect(decide('rules:\n  - { id: no-history, effect: deny, match: { rereads: [query_history, account_usage] } }\n' + ALLOW_READS.slice(7),
      'snowflake', 'SELECT * FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY())').ruleId).toBe('no-history')
    expect(decide('rules:\n  - { id: no-history, effect: deny, match: { rereads: [query_history] } }\n' + ALLOW_READS.slice(7),
      'snowflake', 'SELECT * FROM app.orders').ruleId).toBe('reads')
  })

  test.each([
    ['snowflake', 'SELECT * FROM app.result_scans'],
    ['snowflake', 'SELECT LAST_QUERY_ID()'],
    ['snowflake', 'SELECT * FROM information_schema.tables'],
    ['bigquery', 'SELECT * FROM `proj.app.INFORMATION_SCHEMA.TABLES`'],
    ['bigquery', 'SELECT * FROM proj.app.jobs'],
    ['postgres', 'SELECT * FROM pg_stat_user_tables']
  ] as const)('%s: %s is no re-read', (dialect, sql) => {
    expect(decide(ALLOW_READS, dialect, sql)).toMatchObject({ effect: 'allow', ruleId: 'reads' })
  })

  test('the built-in id is reserved', () => {
    expect(() => parsePolicySet([{ name: 'p.yaml', text: 'version: 1\nrules:\n  - { id: result-reread, effect: allow }' }])).toThrow(/reserved/)
  })
})
