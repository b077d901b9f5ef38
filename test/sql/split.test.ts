// Multi-statement inputs: the parser decides how many statements there are and what each is;
// each statement also carries its own text, exactly one statement, which is what runs upstream.
import { beforeAll, describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { Dialect, SqlAnalyzer } from '../../src/sql/types.js'
import { generate } from '../support/snowflake-statement-texts.js'

let analyzer: SqlAnalyzer
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheSize: 0 })
})

const defaults = { database: 'db', schema: 'sc' }
const split = (sql: string, dialect: Dialect = 'snowflake'): Array<[string, string]> =>
  analyzer.analyze(sql, dialect, defaults).statements.map((s) => [s.kind, s.text])

describe('multi-statement split', () => {
  it('finds a DROP hidden after a SELECT', () => {
    const { statements } = analyzer.analyze('SELECT * FROM orders; DROP TABLE orders', 'snowflake', defaults)
    expect(statements.map((s) => s.kind)).toEqual(['select', 'ddl'])
    expect(statements[1]?.tablesWritten).toEqual(['db.sc.orders'])
    expect(statements[1]?.text).toBe('DROP TABLE orders')
  })

  it('gives each statement its own text, with the comments that precede it', () => {
    expect(split('SELECT * FROM orders;\n-- now the real work\nDROP TABLE orders;')).toEqual([
      ['select', 'SELECT * FROM orders'],
      ['ddl', '-- now the real work\nDROP TABLE orders']
    ])
  })

  it('does not cut at semicolons inside strings, quoted identifiers, dollar quotes or comments', () => {
    expect(split("SELECT 'a;b' AS s, \"c;d\" FROM t; SELECT 2")).toEqual([
      ['select', "SELECT 'a;b' AS s, \"c;d\" FROM t"],
      ['select', 'SELECT 2']
    ])
    expect(split("SELECT $$a;b$$; SELECT ';'", 'postgres')).toEqual([
      ['select', 'SELECT $$a;b$$'],
      ['select', "SELECT ';'"]
    ])
    expect(split('SELECT 1 -- c;\n; /* x; */ DROP TABLE t')).toEqual([
      ['select', 'SELECT 1 -- c;'],
      ['ddl', '/* x; */ DROP TABLE t']
    ])
  })

  it('keeps a BEGIN … END block as one scripting statement', () => {
    const sql = 'BEGIN\n  CREATE TABLE t2 (a INT);\n  INSERT INTO t2 SELECT * FROM t1;\nEND;\nSELECT 1; COMMIT'
    const { statements } = analyzer.analyze(sql, 'snowflake', defaults)
    expect(statements.map((s) => [s.kind, s.text])).toEqual([
      ['scripting', 'BEGIN\n  CREATE TABLE t2 (a INT);\n  INSERT INTO t2 SELECT * FROM t1;\nEND'],
      ['select', 'SELECT 1'],
      ['transaction', 'COMMIT']
    ])
    expect(statements[0]?.tablesWritten).toEqual(['db.sc.t2'])
    expect(statements[0]?.tablesRead).toEqual(['db.sc.t1'])
  })

  it('tells a transaction BEGIN from a block BEGIN', () => {
    expect(split('BEGIN; DELETE FROM orders; COMMIT;')).toEqual([
      ['transaction', 'BEGIN'],
      ['delete', 'DELETE FROM orders'],
      ['transaction', 'COMMIT']
    ])
  })

  it('splits statements that carry no positions of their own (COMMIT, SHOW) and non-ASCII text', () => {
    expect(split("COMMIT; ROLLBACK; SHOW TABLES; SELECT '😀;', \"é;\" FROM t; DROP TABLE x")).toEqual([
      ['transaction', 'COMMIT'],
      ['transaction', 'ROLLBACK'],
      ['show', 'SHOW TABLES'],
      ['select', "SELECT '😀;', \"é;\" FROM t"],
      ['ddl', 'DROP TABLE x']
    ])
  })

  it('treats a trailing comment after the last semicolon as no statement', () => {
    expect(split('SELECT 1; -- trailing')).toEqual([['select', 'SELECT 1; -- trailing']])
  })

  it('leaves empty statements and what follows the last statement out of the texts', () => {
    expect(split('SELECT 1;; SELECT 2')).toEqual([['select', 'SELECT 1'], ['select', 'SELECT 2']])
    expect(split(';; SELECT 1; -- nothing here;\n; SELECT 2;')).toEqual([['select', 'SELECT 1'], ['select', 'SELECT 2']])
    expect(split('SELECT 1; SELECT 2; -- trailing')).toEqual([['select', 'SELECT 1'], ['select', 'SELECT 2']])
    expect(split('SELECT 1; SELECT 2;;\n/* end; */ ;')).toEqual([['select', 'SELECT 1'], ['select', 'SELECT 2']])
    // A comment before a statement (no separator after it) is the statement's.
    expect(split('SELECT 1;\n// why; the next\nSELECT 2 // and its own;\n;')).toEqual([['select', 'SELECT 1'], ['select', '// why; the next\nSELECT 2 // and its own;']])
  })

  it('delimits a generated family of requests exactly as they were built', () => {
    for (const { sql, statements } of generate(300)) {
      const analysis = analyzer.analyze(sql, 'snowflake', defaults)
      expect(analysis.statements.map((s) => s.text), sql).toEqual(statements)
      expect(analysis.undelimited, sql).toBeUndefined()
    }
  })

  it('fails closed on a multi-statement input it cannot read: one unknown with the error, the whole input, marked unread', () => {
    const analysis = analyzer.analyze('SELECT 1; PUT file:///data/x.csv @stage; DROP TABLE t', 'snowflake', defaults)
    expect(analysis.statements).toHaveLength(1)
    expect(analysis.statements[0]?.kind).toBe('unknown')
    expect(analysis.statements[0]?.parseError).toMatch(/PUT/)
    expect(analysis.statements[0]?.text).toBe('SELECT 1; PUT file:///data/x.csv @stage; DROP TABLE t')
    expect(analysis.undelimited).toBe('unread')
    expect(analyzer.analyze('SELECT 1; SELEC 2', 'snowflake', defaults).undelimited).toBe('unread')
  })

  it('answers unknown for input with no statement at all, marked empty', () => {
    for (const sql of ['', '   ', '-- only a comment', ';;']) {
      const analysis = analyzer.analyze(sql, 'postgres', defaults)
      expect(analysis.statements.map((s) => s.kind)).toEqual(['unknown'])
      expect(analysis.statements[0]?.parseError).toBe('no SQL statement found')
      expect(analysis.undelimited).toBe('empty')
    }
  })
})
