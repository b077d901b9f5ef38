// The parse tree as a parser thread sends it (src/sql/tree-json.ts): without positions and with
// a long list's literals collapsed to one. Lineage must not tell the difference, on every
// statement of both corpora and on generated lists that mix literals with column references,
// placeholders, signed and parenthesised literals at every position; and a huge IN list must
// arrive small.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { analyzeWithTrees } from '../../src/sql/analyzer.js'
import { traceStatement } from '../../src/sql/lineage.js'
import { loadParser, type StatementJson } from '../../src/sql/parser.js'
import { compactTree } from '../../src/sql/tree-json.js'
import type { Dialect, QualifyDefaults } from '../../src/sql/types.js'
import { DIALECTS, loadCorpus } from './corpus.js'

beforeAll(async () => { await loadParser() })

interface LineageCorpus { dialect: Dialect, defaults: QualifyDefaults, schemas: Record<string, string[]>, cases: Array<{ sql: string }> }
function lineageCorpus (dialect: Dialect): LineageCorpus {
  return parse(readFileSync(fileURLToPath(new URL(`./lineage/${dialect}.yaml`, import.meta.url)), 'utf8')) as LineageCorpus
}

/** Lineage of every statement of `sql`, traced on the full tree and on the tree as it travels. */
function bothWays (sql: string, dialect: Dialect, defaults: QualifyDefaults, schemas: Record<string, string[]> = {}): { full: string[], sent: string[] } {
  const { trees } = analyzeWithTrees(sql, dialect, defaults)
  const options = { dialect, defaults, schemaOf: (table: string) => schemas[table] }
  const trace = (tree: StatementJson): string => {
    try {
      return JSON.stringify(traceStatement(tree, options))
    } catch (err) {
      return `throws ${(err as Error).message}`
    }
  }
  const present = trees.filter((t): t is StatementJson => t !== undefined)
  return {
    full: present.map(trace),
    sent: present.map((t) => trace(JSON.parse(JSON.stringify(t, compactTree)) as StatementJson))
  }
}

describe('the parse tree as a parser thread sends it', () => {
  it('gives the same lineage on every statement of the lineage corpus', () => {
    let n = 0
    for (const dialect of DIALECTS) {
      const corpus = lineageCorpus(dialect)
      for (const c of corpus.cases) {
        const { full, sent } = bothWays(c.sql, dialect, corpus.defaults, corpus.schemas)
        expect(sent, c.sql).toEqual(full)
        n++
      }
    }
    expect(n).toBeGreaterThan(100)
  })

  it('gives the same lineage on every statement of the parser corpus', () => {
    const cases = DIALECTS.flatMap((d) => loadCorpus(d))
    for (const c of cases) {
      const { full, sent } = bothWays(c.sql, c.dialect, c.defaults)
      expect(sent, c.sql).toEqual(full)
    }
    expect(cases.length).toBeGreaterThan(100)
  })

  // Items of a list: literals of every kind, and the references a literal run may hide.
  const LITERALS = ['1', '-2', "'x'", 'NULL', 'TRUE', '(3)', '2.5', '?']
  const REFERENCES = ['email', 'c.email', 'UPPER(email)', 'email || \'\'', '(SELECT MAX(email) FROM customers)', 'CASE WHEN 1 = 1 THEN email END']

  it('keeps every column reference of long IN lists and VALUES lists, at every position', () => {
    const defaults = { database: 'analytics', schema: 'public' }
    const schemas = { 'analytics.public.customers': ['id', 'name', 'email'] }
    let checked = 0
    for (const dialect of DIALECTS) {
      const literal = (i: number): string => {
        const l = LITERALS[i % LITERALS.length]!
        return l === '?' && dialect !== 'snowflake' ? (dialect === 'postgres' ? `$${1 + (i % 3)}` : '@p') : l
      }
      for (const length of [8, 9, 20]) {
        for (const ref of REFERENCES) {
          for (const at of [0, 1, Math.floor(length / 2), length - 1]) {
            const items = Array.from({ length }, (_, i) => i === at ? ref : literal(i))
            const queries = [
              `SELECT id FROM customers c WHERE c.name IN (${items.join(', ')})`,
              `SELECT id, CASE WHEN id IN (${items.join(', ')}) THEN 1 END AS flag FROM customers c`,
              `SELECT * FROM (VALUES ${items.map((item, i) => `(${i}, ${item})`).join(', ')}) AS v(k, val)`,
              `SELECT COALESCE(${items.join(', ')}) AS picked FROM customers c`
            ]
            for (const sql of queries) {
              const { full, sent } = bothWays(sql, dialect, defaults, schemas)
              expect(sent, `${dialect}: ${sql}`).toEqual(full)
              checked++
            }
          }
        }
      }
    }
    expect(checked).toBe(DIALECTS.length * 3 * REFERENCES.length * 4 * 4)
  })

  it('sends a 1 MB IN list of literals as a few kilobytes', () => {
    const sql = `SELECT id FROM s.t WHERE id IN (${Array.from({ length: 150_000 }, (_, k) => String(k)).join(', ')})`
    const { trees } = analyzeWithTrees(sql, 'snowflake', {})
    const sent = JSON.stringify(trees[0], compactTree)
    expect(sql.length).toBeGreaterThan(1_000_000)
    expect(sent.length).toBeLessThan(4096)
    // Positions and keyword tokens are gone; the literal kept says what the list held.
    expect(sent).not.toContain('"span"')
    expect(sent).toContain('"InList"')
  })
})
