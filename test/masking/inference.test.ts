// Inference corpus: statements that would reveal a masked column through a predicate, a join, a
// sort, a grouping, a window or a copy — denied — and the uses a rule explicitly allows.
// (The lineage corpus under test/sql/lineage holds more, per dialect.)
import { beforeAll, describe, expect, test } from 'vitest'
import { inferenceViolation } from '../../src/masking/inference.js'
import { guardRule } from '../../src/masking/planner.js'
import { activeRules } from '../../src/masking/rules.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { lineageOf } from '../../src/sql/lineage.js'
import type { SqlAnalyzer } from '../../src/sql/types.js'

const rules = parsePolicySet([{
  name: 'i.yaml',
  text: `
version: 1
masking:
  - { id: ssn, columns: ['db.s.people.ssn'], function: redact, exemptRoles: [hr] }
  - { id: email-token, columns: ['db.s.people.email'], function: token, allowEquality: true }
  - { id: salary-range, columns: ['db.s.people.salary'], function: nullify, allowInference: [range] }
  - { id: rank-sort, columns: ['db.s.people.rank'], function: default, allowInference: [ordering] }
  - { id: profile-ssn, columns: ['db.s.people.profile.ssn'], function: redact }
`
}]).masking

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer() })

const SCHEMA: Record<string, string[]> = {
  'db.s.people': ['id', 'name', 'ssn', 'email', 'salary', 'rank', 'profile', 'team_id'],
  'db.s.teams': ['id', 'name']
}

function verdict (sql: string, roles: string[] = ['agent']): string {
  const active = activeRules(rules, roles, 'conn')
  const defaults = { database: 'db', schema: 's' }
  const s = analyzer.analyze(sql, 'snowflake', defaults).statements[0]
  if (s === undefined) return 'no statement'
  const guard = guardRule([...s.tablesRead, ...s.tablesWritten], active)
  if (guard === undefined) return 'allow'
  const lineage = lineageOf(sql, { dialect: 'snowflake', defaults, schemaOf: (t) => SCHEMA[t] })[0]
  const v = lineage === undefined ? undefined : inferenceViolation(lineage.uses, active, guard.rule)
  return v === undefined ? 'allow' : `deny ${v.rule}`
}

const CASES: Array<[string, string]> = [
  // plain redaction: no use at all
  ["SELECT id FROM people WHERE ssn = '123-45-6789'", 'deny ssn'],
  ["SELECT id FROM people WHERE ssn LIKE '123%'", 'deny ssn'],
  ["SELECT id FROM people WHERE ssn > '5'", 'deny ssn'],
  ['SELECT id FROM people WHERE ssn IS NULL', 'deny ssn'],
  ['SELECT id FROM people ORDER BY ssn', 'deny ssn'],
  ['SELECT ssn, COUNT(*) FROM people GROUP BY ssn', 'deny ssn'],
  ['SELECT id, ROW_NUMBER() OVER (PARTITION BY ssn ORDER BY id) FROM people', 'deny ssn'],
  ["SELECT id FROM people WHERE SUBSTR(ssn, 1, 3) = '123'", 'deny ssn'],
  ["SELECT p.id FROM people p JOIN teams t ON t.name = p.ssn", 'deny ssn'],
  ["SELECT team_id FROM people GROUP BY team_id HAVING MAX(ssn) > '5'", 'deny ssn'],
  ["SELECT id FROM teams WHERE id IN (SELECT team_id FROM people WHERE ssn LIKE '9%')", 'deny ssn'],
  ["SELECT id FROM teams t WHERE EXISTS (SELECT 1 FROM people p WHERE p.team_id = t.id AND p.ssn = 'x')", 'deny ssn'],
  ["WITH x AS (SELECT id, ssn AS k FROM people) SELECT id FROM x WHERE k = '1'", 'deny ssn'],
  ['SELECT id FROM people QUALIFY ROW_NUMBER() OVER (ORDER BY ssn) = 1', 'deny ssn'],
  ['INSERT INTO copy_of_people SELECT id, ssn FROM people', 'deny ssn'],
  ['CREATE TABLE leak AS SELECT UPPER(ssn) AS s FROM people', 'deny ssn'],
  ['UPDATE people SET name = ssn', 'deny ssn'],
  ["SELECT id FROM teams LIMIT 1 OFFSET (SELECT COUNT(*) FROM people WHERE ssn LIKE '1%')", 'deny ssn'],
  // the exempt role may do all of it
  ["SELECT id FROM people WHERE ssn LIKE '123%' ORDER BY ssn", 'allow (hr)'],
  // deterministic token: equality and grouping allowed, nothing else
  ["SELECT id FROM people WHERE email = 'tok'", 'allow'],
  ["SELECT id FROM people WHERE email IN ('a', 'b')", 'allow'],
  ['SELECT a.id FROM people a JOIN people b ON a.email = b.email', 'allow'],
  ['SELECT email, COUNT(*) FROM people GROUP BY email', 'allow'],
  ['SELECT id, COUNT(*) OVER (PARTITION BY email) FROM people', 'allow'],
  ["SELECT id FROM teams WHERE name IN (SELECT email FROM people)", 'allow'],
  ["SELECT id FROM people WHERE email LIKE '%@corp.com'", 'deny email-token'],
  ['SELECT id FROM people ORDER BY email', 'deny email-token'],
  ["SELECT id FROM people WHERE LOWER(email) = 'x'", 'deny email-token'],
  ['INSERT INTO t SELECT email FROM people', 'deny email-token'],
  // explicit allowances
  ['SELECT id FROM people WHERE salary > 100000', 'allow'],
  ['SELECT id FROM people WHERE salary BETWEEN 1 AND 2', 'allow'],
  ['SELECT id FROM people ORDER BY salary', 'deny salary-range'],
  ['SELECT id FROM people WHERE salary * 2 > 100000', 'deny salary-range'],
  ['SELECT id FROM people ORDER BY rank', 'allow'],
  ['SELECT id, RANK() OVER (ORDER BY rank) FROM people', 'allow'],
  ['SELECT id FROM people WHERE rank = 3', 'deny rank-sort'],
  // nested fields and semi-structured paths
  ["SELECT id FROM people WHERE profile:ssn = '1'", 'deny profile-ssn'],
  ["SELECT id FROM people WHERE profile:city = 'Paris'", 'allow'],
  ["SELECT id FROM people WHERE TO_JSON(profile) LIKE '%123%'", 'deny profile-ssn'],
  // not masked columns and other tables
  ["SELECT id FROM people WHERE name = 'x' ORDER BY id", 'allow'],
  ["SELECT id FROM teams WHERE name LIKE 'a%' ORDER BY name", 'allow'],
  // an unresolvable column on a statement reading masked data fails closed
  ['SELECT id FROM people WHERE no_such_column = 1', 'deny ssn']
]

describe('inference corpus', () => {
  test.each(CASES)('%s → %s', (sql, expected) => {
    const roles = expected.endsWith('(hr)') ? ['hr'] : ['agent']
    expect(verdict(sql, roles)).toBe(expected.replace(/ \(hr\)$/, ''))
  })
})
