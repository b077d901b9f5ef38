// The one place that talks to the parser (sqlparser-rs compiled to WebAssembly).
// The WASM module is instantiated once, asynchronously, by `loadParser`; parsing itself is
// synchronous afterwards.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
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

/** The module's linear memory, once loaded (undefined where the package hides it). */
let memory: WebAssembly.Memory | undefined

export function loadParser (): Promise<void> {
  loaded ??= init().then(async () => {
    memory = await parserMemory()
    for (const dialect of Object.keys(DIALECT_NAME) as Dialect[]) {
      for (const sql of WARM_UP) parseSql(sql, dialect)
    }
  })
  return loaded
}

/**
 * Bytes of WebAssembly memory the parser holds. A WebAssembly memory grows and never shrinks:
 * after one huge statement the parser keeps its high-water mark for good, which is why the
 * parser pool replaces a thread whose memory grew past its budget (pool.ts).
 */
export function parserMemoryBytes (): number | undefined {
  return memory?.buffer.byteLength
}

// The package's entry point keeps the instance's exports to itself; its wasm-bindgen module
// (the one that entry point imports, so the same instance) hands them out: called again after
// init(), its init function returns the existing exports without loading anything.
async function parserMemory (): Promise<WebAssembly.Memory | undefined> {
  try {
    const entry = pathToFileURL(createRequire(import.meta.url).resolve('@guanmingchiu/sqlparser-ts'))
    const bindings = await import(new URL('../wasm/sqlparser_rs_wasm.js', entry).href) as { default: () => Promise<{ memory?: unknown }> }
    const exports = await bindings.default()
    return exports.memory instanceof WebAssembly.Memory ? exports.memory : undefined
  } catch {
    return undefined
  }
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
