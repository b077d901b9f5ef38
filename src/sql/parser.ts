// The one place that talks to the parser (sqlparser-rs compiled to WebAssembly).
// The WASM module is instantiated once, asynchronously, by `loadParser`; parsing itself is
// synchronous afterwards.
import { init, parseWithComments, type DialectName } from '@guanmingchiu/sqlparser-ts'
import type { Dialect } from './types.js'

const DIALECT_NAME: Record<Dialect, DialectName> = {
  snowflake: 'snowflake',
  bigquery: 'bigquery',
  postgres: 'postgresql'
}

/** A statement as sqlparser serialises it: `{ VariantName: body }`. */
export type StatementJson = Record<string, unknown>

export interface SourceComment {
  startLine: number
  startColumn: number
  endLine: number
  endColumn: number
}

export type ParseOutcome =
  | { ok: true, statements: StatementJson[], comments: SourceComment[] }
  | { ok: false, error: string }

let loaded: Promise<void> | undefined

// WebAssembly functions are compiled lazily, on first call: the first SELECT a process parses
// costs tens of milliseconds. Parsing a few common shapes at load time moves that cost to start.
const WARM_UP = [
  'SELECT a, f(b) FROM s.t JOIN u ON t.id = u.id WHERE x IN (SELECT y FROM v) GROUP BY 1 ORDER BY 2 LIMIT 10',
  "WITH c AS (SELECT 1 AS n) INSERT INTO t SELECT n FROM c; UPDATE t SET a = 'x' WHERE b = 1",
  'DELETE FROM t WHERE a = 1; CREATE TABLE t2 AS SELECT * FROM t; DROP TABLE t2; COMMIT'
]

export function loadParser (): Promise<void> {
  loaded ??= init().then(() => {
    for (const dialect of Object.keys(DIALECT_NAME) as Dialect[]) {
      for (const sql of WARM_UP) parseSql(sql, dialect)
    }
  })
  return loaded
}

export function parseSql (sql: string, dialect: Dialect): ParseOutcome {
  try {
    const result = parseWithComments(sql, DIALECT_NAME[dialect]) as unknown as {
      statements: StatementJson[]
      comments?: SourceComment[]
    }
    return { ok: true, statements: result.statements, comments: result.comments ?? [] }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) }
  }
}

/** The variant name of a serialised statement (`Query`, `Insert`, …). */
export function variantOf (stmt: unknown): string | undefined {
  if (typeof stmt === 'string') return stmt // unit variants serialise as a bare string
  if (stmt === null || typeof stmt !== 'object') return undefined
  const keys = Object.keys(stmt)
  return keys.length === 1 ? keys[0] : undefined
}
