// Typos are syntax errors, valid SQL the parser lacks is not. A generated family: every
// single-statement read or write of the corpus (all three dialects), broken in several ways an
// agent breaks SQL; each broken text the parser rejects must come back `unparsed` with the
// parser's message and a position inside the text, and be refused as `unparsed` by a policy
// that would otherwise allow unknown statements.
import { beforeAll, describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { Dialect, SqlAnalyzer } from '../../src/sql/types.js'
import { engineFrom, input } from '../policy/fixtures.js'
import { DIALECTS, loadCorpus } from './corpus.js'

let analyzer: SqlAnalyzer
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheSize: 0 })
})

const MUTATIONS: Array<[string, (sql: string) => string | undefined]> = [
  ['misspelt first keyword', (sql) => sql.replace(/^(\s*[A-Za-z]+)[A-Za-z]/, '$1')],
  ['doubled FROM', (sql) => /\bFROM\b/i.test(sql) ? sql.replace(/\bFROM\b/i, 'FROM FROM') : undefined],
  ['unclosed parenthesis', (sql) => `${sql.trimEnd()} AND (1 = 1`],
  ['unterminated string', (sql) => `${sql.trimEnd()} AND x = 'oops`],
  ['dangling operator', (sql) => `${sql.trimEnd()} +`],
  ['keyword for an identifier', (sql) => /\bFROM\s+(?:`[^`]*`|[\w."]+)/i.test(sql) ? sql.replace(/\bFROM\s+(?:`[^`]*`|[\w."]+)/i, 'FROM SELECT') : undefined]
]

const PLAIN = new Set(['select', 'insert', 'update', 'delete', 'merge'])

function family (dialect: Dialect): Array<{ name: string, sql: string }> {
  const out: Array<{ name: string, sql: string }> = []
  for (const c of loadCorpus(dialect)) {
    const only = c.expect[0]
    if (c.expect.length !== 1 || only === undefined || only.gap !== undefined || !PLAIN.has(only.kind)) continue
    for (const [name, mutate] of MUTATIONS) {
      const sql = mutate(c.sql)
      if (sql !== undefined && sql !== c.sql) out.push({ name: `${name}: ${sql.replace(/\s+/g, ' ').slice(0, 70)}`, sql })
    }
  }
  return out
}

const allowUnknown = engineFrom('rules:\n  - { id: yolo, effect: allow, match: { kinds: [unknown, select, insert, update, delete, merge] } }')

describe('typos are unparsed', () => {
  for (const dialect of DIALECTS) {
    it(`${dialect}: every broken statement the parser rejects is a syntax error with its position`, () => {
      const cases = family(dialect)
      expect(cases.length).toBeGreaterThan(40)
      let rejected = 0
      for (const { name, sql } of cases) {
        const [s, more] = analyzer.analyze(sql, dialect).statements
        if (s?.kind !== 'unknown') continue // still valid SQL (e.g. `+` before a unary operand)
        rejected++
        expect(more, name).toBeUndefined()
        expect(s.unparsed, name).toBeDefined()
        const { line, column, message } = s.unparsed as NonNullable<typeof s.unparsed>
        expect(message, name).not.toMatch(/^sql parser error|at Line: \d/)
        const lines = sql.split('\n')
        expect(line, name).toBeGreaterThanOrEqual(1)
        expect(line, name).toBeLessThanOrEqual(lines.length)
        expect(column, name).toBeGreaterThanOrEqual(1)
        expect(column, name).toBeLessThanOrEqual((lines[line - 1] ?? '').length + 1)
        const d = allowUnknown.decide(input({ dialect, statements: [s] }))
        expect(d, name).toMatchObject({ effect: 'deny', ruleId: 'unparsed' })
        expect(d.reason, name).toContain(`Sluice could not parse this statement; it was not run: syntax error at line ${line}, column ${column}`)
      }
      expect(rejected).toBeGreaterThan(30)
    })
  }

  it('points at the word the parser stopped at, also after an earlier statement and at the end of input', () => {
    const at = (sql: string, dialect: Dialect = 'snowflake') => analyzer.analyze(sql, dialect).statements[0]?.unparsed
    expect(at('SELEC * FROM orders')).toEqual({ message: 'Expected: an SQL statement, found: SELEC', line: 1, column: 1 })
    expect(at('SELECT 1; SELEC 2')).toMatchObject({ line: 1, column: 11 })
    expect(at('SELECT a,\n  b\nFROM t WHERE')).toEqual({ message: 'Expected: an expression, found: EOF', line: 3, column: 13 })
    expect(at('SELECT * FORM t', 'bigquery')).toMatchObject({ message: 'Expected: end of statement, found: FORM', column: 10 })
  })
})

describe('valid SQL the parser lacks is not a typo', () => {
  it.each([
    ['snowflake', 'UNDROP TABLE orders', 'UNDROP'],
    ['snowflake', 'SELECT 1; UNDROP TABLE orders', 'UNDROP'],
    ['snowflake', 'CREATE OR REPLACE TASK nightly WAREHOUSE = wh AS SELECT 1', 'CREATE TASK'],
    ['snowflake', 'ALTER WAREHOUSE wh SUSPEND', 'ALTER WAREHOUSE'],
    ['snowflake', 'PUT file:///tmp/x.csv @stage', 'PUT file transfers'],
    ['bigquery', "LOAD DATA INTO ds.t FROM FILES (format = 'CSV', uris = ['gs://b/x.csv'])", 'LOAD DATA'],
    ['bigquery', 'SELECT * FROM ds.events_* WHERE _TABLE_SUFFIX > "2024"', 'wildcard tables written without backticks'],
    ['bigquery', 'CREATE MODEL ds.m OPTIONS (model_type = "linear_reg") AS SELECT 1 AS label', 'CREATE MODEL'],
    ['bigquery', 'FOR x IN (SELECT 1 AS y) DO SELECT x.y; END FOR', 'scripting loops'],
    ['postgres', 'REFRESH MATERIALIZED VIEW mv', 'REFRESH MATERIALIZED VIEW']
  ] as Array<[Dialect, string, string]>)('%s: %s', (dialect, sql, construct) => {
    const [s] = analyzer.analyze(sql, dialect).statements
    expect(s).toMatchObject({ kind: 'unknown', parseError: expect.stringContaining(`Sluice's SQL parser does not read ${construct}`) })
    expect(s?.unparsed).toBeUndefined()
  })

  it('and a statement the parser read but could not classify keeps its policy decision', () => {
    // IDENTIFIER(:name) hides which table is meant: parsed, but its tables cannot be known.
    const [s] = analyzer.analyze('SELECT * FROM IDENTIFIER(:t)', 'snowflake').statements
    expect(s?.kind).toBe('unknown')
    expect(s?.unparsed).toBeUndefined()
    expect(allowUnknown.decide(input({ dialect: 'snowflake', statements: [s as NonNullable<typeof s>] })).ruleId).toBe('yolo')
  })
})
