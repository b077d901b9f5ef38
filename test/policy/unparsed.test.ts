// How the policy engine treats statements it cannot fully know: a typo (`unparsed`) is refused
// before any rule as a syntax error; a statement the parser read but could not classify, or a
// valid one the parser lacks, is `unknown` and decided by rules about unknown statements; a rule
// about tables alone never names itself for either, but still keeps a laxer rule from running one.
import { describe, expect, test } from 'vitest'
import { policyError } from '../../src/policy/evaluator.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { analysis, engineFrom, input, stmt } from './fixtures.js'

const typo = stmt('unknown', {
  text: 'SELEC * FROM hr.salaries',
  parseError: 'sql parser error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1',
  unparsed: { message: 'Expected: an SQL statement, found: SELEC', line: 1, column: 1 }
})
const undrop = stmt('unknown', { text: 'UNDROP TABLE hr.salaries', parseError: "Sluice's SQL parser does not read UNDROP" })

const SHIPPED_LIKE = [
  'rules:',
  '  - { id: guard-hr, effect: deny, match: { tables: ["hr.**"] }, message: HR tables are off limits. }',
  '  - { id: deny-unknown, effect: deny, match: { kinds: [unknown] }, message: Rewrite it as plain SQL. }',
  '  - { id: reads, effect: allow, match: { kinds: [select] } }'
].join('\n')

describe('statements the parser could not read (unparsed)', () => {
  test('are refused as a syntax error before any rule, naming the parser\'s message and position', () => {
    const d = engineFrom(SHIPPED_LIKE).decide(input(analysis(typo)))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'unparsed', statementIndex: 0 })
    expect(d.reason).toMatch(/^Sluice could not parse this statement; it was not run: syntax error at line 1, column 1 \(Expected: an SQL statement, found: SELEC\)\. Correct the statement/)
    expect(d.reason).not.toContain('guard-hr')
  })

  test('even where a rule allows unknown statements: nothing unreadable is forwarded', () => {
    const d = engineFrom('rules:\n  - { id: yolo, effect: allow, match: { kinds: [unknown] } }').decide(input(analysis(typo)))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'unparsed' })
  })

  test('become the syntax-error catalogue error, whose message is the reason', () => {
    const d = engineFrom(SHIPPED_LIKE).decide(input(analysis(typo)))
    const err = policyError(d) as Error & { code: string, statusCode: number }
    expect(err).toMatchObject({ code: 'SLUICE_SQL_SYNTAX', statusCode: 400, message: d.reason })
  })

  test('"unparsed" is reserved: a policy file may not name a rule so', () => {
    expect(() => parsePolicySet([{ name: 'p.yaml', text: 'version: 1\nrules:\n  - { id: unparsed, effect: deny }' }])).toThrow(/"unparsed" is reserved/)
  })
})

describe('unknown statements and rules about tables', () => {
  test('a rule about tables alone does not claim an unknown statement; the rule about unknown ones does', () => {
    const d = engineFrom(SHIPPED_LIKE).decide(input(analysis(undrop)))
    expect(d.ruleId).toBe('deny-unknown')
    expect(d.reason).toContain("a statement Sluice could not analyse (Sluice's SQL parser does not read UNDROP)")
    expect(d.reason).toContain('Rewrite it as plain SQL.')
  })

  test('without one, the default denial decides, not the rule about tables', () => {
    const e = engineFrom('rules:\n  - { id: guard-hr, effect: deny, match: { tables: ["hr.**"] } }\n  - { id: reads, effect: allow, match: { kinds: [select] } }')
    expect(e.decide(input(analysis(undrop))).ruleId).toBe('default-deny')
  })

  test('it still fails closed: a later rule that would run the statement yields to the rule about tables', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: hold-hr, effect: require_approval, match: { tables: ["hr.**"] } }',
      '  - { id: yolo, effect: allow, match: { kinds: [unknown] } }'
    ].join('\n'))
    const d = e.decide(input(analysis(undrop)))
    expect(d).toMatchObject({ effect: 'require_approval', ruleId: 'hold-hr' })
    expect(d.reason).toContain('whose tables are unknown and may include the tables this rule guards')
  })

  test('a rule about unknown statements and tables is about them, and decides as before', () => {
    const e = engineFrom('rules:\n  - { id: hr-unknown, effect: deny, match: { kinds: [unknown], tables: ["hr.**"] } }')
    expect(e.decide(input(analysis(undrop))).ruleId).toBe('hr-unknown')
  })
})

describe('refusal texts chosen by the statement', () => {
  const ddl = engineFrom('rules:\n  - { id: deny-ddl, effect: deny, match: { kinds: [ddl] }, message: Schema changes go through migrations. }')

  test('a temporary table is named as one, with what to do instead', () => {
    const temp = stmt('ddl', { text: 'CREATE TEMPORARY TABLE t (a INT)', tablesWritten: ['analytics.public.t'] })
    const d = ddl.decide(input(analysis(temp)))
    expect(d.reason).toContain('DDL (CREATE TEMPORARY TABLE) on analytics.public.t is not allowed')
    expect(d.reason).toContain('use a CTE (WITH …) or a subquery instead of a temporary table')
  })

  test('a name qualified without a schema says so instead of passing for schema.table', () => {
    const temp = stmt('ddl', { text: 'CREATE TEMP TABLE t (a INT)', tablesWritten: ['sluice_ho.t'] })
    const d = ddl.decide(input(analysis(temp)))
    expect(d.reason).toContain('on sluice_ho.t (not fully qualified: the session\'s current database or schema is not known to Sluice; name it as database.schema.table)')
    const plain = ddl.decide(input(analysis(stmt('ddl', { text: 'DROP TABLE a.b.c', tablesWritten: ['a.b.c'] }))))
    expect(plain.reason).toContain('DDL (DROP) on a.b.c is not allowed')
  })
})
