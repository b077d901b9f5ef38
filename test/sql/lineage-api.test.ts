// The lineage API itself: sources and `direct` per output column, star alignment against the
// result's column names, and what it says when it cannot trace (always with a reason).
import { beforeAll, describe, expect, test } from 'vitest'
import { lineageOf, outputColumns, type StatementLineage } from '../../src/sql/lineage.js'
import { loadParser } from '../../src/sql/parser.js'

beforeAll(async () => { await loadParser() })

const SCHEMAS: Record<string, string[]> = { 'db.s.t': ['id', 'email', 'address'], 'db.s.u': ['id', 'ssn'] }
const trace = (sql: string, dialect: 'snowflake' | 'bigquery' | 'postgres' = 'snowflake'): StatementLineage => {
  const l = lineageOf(sql, { dialect, defaults: { database: 'db', schema: 's' }, schemaOf: (t) => SCHEMAS[t] })[0]
  if (l === undefined) throw new Error('no lineage')
  return l
}

describe('output columns', () => {
  test('direct references, field paths and computed values', () => {
    const cols = outputColumns(trace('SELECT email, address.zip AS z, UPPER(email) AS e, CAST(id AS TEXT) AS i FROM t'), ['EMAIL', 'Z', 'E', 'I'])
    expect(cols).toEqual([
      { name: 'EMAIL', sources: ['db.s.t.email'], direct: true },
      { name: 'Z', sources: ['db.s.t.address.zip'], direct: true },
      { name: 'E', sources: ['db.s.t.email'], direct: false },
      { name: 'I', sources: ['db.s.t.id'], direct: true }
    ])
  })

  test('a star of unknown width takes the columns between the known ones, resolved by name', () => {
    const cols = outputColumns(trace('SELECT t.id, w.*, u.ssn FROM t JOIN w ON w.id = t.id JOIN u ON u.id = t.id'), ['ID', 'A', 'B', 'SSN'])
    expect(cols.map((c) => c.sources)).toEqual([['db.s.t.id'], ['db.s.w.a'], ['db.s.w.b'], ['db.s.u.ssn']])
    expect(cols.every((c) => c.unresolved === undefined)).toBe(true)
  })

  test('a result that does not line up is reported unresolved, with every possible source', () => {
    const cols = outputColumns(trace('SELECT id, email FROM t'), ['A', 'B', 'C'])
    expect(cols).toHaveLength(3)
    for (const c of cols) {
      expect(c.unresolved).toBe('the result has 3 columns, the query projects 2')
      expect(c.sources).toEqual(['db.s.t.email', 'db.s.t.id'])
    }
  })

  test('statements that are not traced, and text that does not parse, say why', () => {
    expect(trace('CALL my_proc(1)').unresolved).toBe('Call statements are not traced')
    expect(lineageOf('SELEC nope', { dialect: 'postgres', defaults: {} })[0]?.unresolved).toMatch(/^the statement could not be parsed/)
  })

  test('whole-row constructors carry every column; an unknown table is `table.*`', () => {
    expect(outputColumns(trace('SELECT OBJECT_CONSTRUCT(*) AS o FROM u'), ['O'])[0]?.sources).toEqual(['db.s.u.id', 'db.s.u.ssn'])
    expect(outputColumns(trace('SELECT TO_JSON_STRING(w) AS j FROM w', 'bigquery'), ['j'])[0]?.sources).toEqual(['db.s.w.*'])
  })

  test('a correlated name an unknown-schema table might also have keeps both candidates', () => {
    const cols = outputColumns(trace('SELECT (SELECT MAX(k) FROM w WHERE w.x = ssn) AS m FROM u'), ['M'])
    expect(cols[0]?.sources).toEqual(['db.s.w.k'])
    const l = trace('SELECT (SELECT MAX(k) FROM w WHERE w.x = ssn) AS m FROM u')
    expect(l.uses.map((u) => u.column).sort()).toEqual(['db.s.u.ssn', 'db.s.w.ssn', 'db.s.w.x'])
  })
})

describe('uses', () => {
  test('each clause is recorded with its usage', () => {
    const l = trace("SELECT id FROM t WHERE email LIKE 'a%' AND id > 3 GROUP BY id HAVING COUNT(*) > 1 ORDER BY id")
    expect(l.uses).toEqual([
      { column: 'db.s.t.email', usage: 'pattern', clause: 'where' },
      { column: 'db.s.t.id', usage: 'range', clause: 'where' },
      { column: 'db.s.t.id', usage: 'grouping', clause: 'group' },
      { column: 'db.s.t.id', usage: 'ordering', clause: 'order' }
    ])
  })

  test('window partitions and orders, joins, and writes', () => {
    expect(trace('SELECT ROW_NUMBER() OVER (PARTITION BY email ORDER BY id) FROM t').uses).toEqual([
      { column: 'db.s.t.email', usage: 'grouping', clause: 'window' },
      { column: 'db.s.t.id', usage: 'ordering', clause: 'window' }
    ])
    expect(trace('SELECT t.id FROM t JOIN u USING (id)').uses).toEqual([
      { column: 'db.s.t.id', usage: 'equality', clause: 'join' },
      { column: 'db.s.u.id', usage: 'equality', clause: 'join' }
    ])
    expect(trace('INSERT INTO x SELECT ssn FROM u').uses).toEqual([{ column: 'db.s.u.ssn', usage: 'copy', clause: 'write' }])
  })
})
