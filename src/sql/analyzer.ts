// SqlAnalyzer: SQL text → per-statement kind, tables, functions, limit.
//
// Parsing is done by sqlparser-rs (WebAssembly), one parse per input: the parser decides how
// many statements there are and what each one is. What it cannot read comes back as a single
// `unknown` statement carrying the parser's error — never a guess from the text: `unparsed` (a
// syntax error, with the parser's position) unless it is a statement the warehouse runs that the
// parser lacks (unsupported.ts), which only changes how the refusal is worded.
// Results are cached (LRU, keyed by dialect, defaults and text, up to analysis-key.ts's size) and
// frozen, so callers may share them freely.
import { analysisKey } from './analysis-key.js'
import { attachTree } from './ast.js'
import { rereadsOf } from './rereads.js'
import { actingFunctions } from './system-functions.js'
import { collect } from './tables.js'
import { explainAnalyzes, hasLimit, kindOf } from './kinds.js'
import { Lru } from './lru.js'
import { loadParser, parseSql, variantOf, type StatementJson } from './parser.js'
import { statementTexts } from './split.js'
import type { Analysis, Dialect, QualifyDefaults, SqlAnalyzer, StatementAnalysis } from './types.js'
import { parseFailure, unsupportedConstruct } from './unsupported.js'

export interface SqlAnalyzerOptions {
  /** How many analyses to keep (LRU). 0 disables the cache. Default 1000. */
  cacheSize?: number
}

const DEFAULT_CACHE_SIZE = 1000

/** Loads the parser once (asynchronously), then analyses synchronously. */
export async function createSqlAnalyzer (options: SqlAnalyzerOptions = {}): Promise<SqlAnalyzer> {
  await loadParser()
  const cache = new Lru<string, Analysis>(options.cacheSize ?? DEFAULT_CACHE_SIZE)
  return {
    analyze (sql: string, dialect: Dialect, defaults: QualifyDefaults = {}): Analysis {
      const key = analysisKey(sql, dialect, defaults)
      const hit = key === undefined ? undefined : cache.get(key)
      if (hit !== undefined) return hit
      const analysis = analyzeSql(sql, dialect, defaults)
      if (key !== undefined) cache.set(key, analysis)
      return analysis
    }
  }
}

function analyzeSql (sql: string, dialect: Dialect, defaults: QualifyDefaults): Analysis {
  const { analysis, trees } = analyzeWithTrees(sql, dialect, defaults)
  const frozen = deepFreeze(analysis)
  frozen.statements.forEach((s, i) => { const tree = trees[i]; if (tree !== undefined) attachTree(s, tree) })
  return frozen
}

/**
 * The analysis and, per statement, the parse tree it was made from (for lineage), unfrozen:
 * what the worker pool's threads run (analysis-worker.ts).
 */
export function analyzeWithTrees (sql: string, dialect: Dialect, defaults: QualifyDefaults): { analysis: Analysis, trees: Array<StatementJson | undefined> } {
  const parsed = parseSql(sql, dialect)
  let statements: StatementAnalysis[]
  let undelimited: Analysis['undelimited']
  if (!parsed.ok) {
    statements = [unreadable(sql, parsed.error, dialect)]
    undelimited = 'unread'
  } else if (parsed.statements.length === 0) {
    statements = [unknown(sql.trim(), 'no SQL statement found')]
    undelimited = 'empty'
  } else {
    const { texts, exact } = statementTexts(sql, parsed.statements, parsed.comments, (text) => {
      const r = parseSql(text, dialect)
      return r.ok ? r.statements : undefined
    })
    statements = parsed.statements.map((stmt, i) => analyzeStatement(stmt, texts[i] ?? '', dialect, defaults))
    const analysis: Analysis = { dialect, statements }
    if (!exact) analysis.undelimited = 'unattributed'
    return { analysis, trees: parsed.statements }
  }
  return { analysis: { dialect, statements, undelimited }, trees: [] }
}

function analyzeStatement (
  stmt: StatementJson,
  text: string,
  dialect: Dialect,
  defaults: QualifyDefaults
): StatementAnalysis {
  const { kind: parsedKind, unclassified } = kindOf(stmt)
  const found = collect(stmt, dialect, defaults)
  let kind = parsedKind
  const variant = variantOf(stmt)
  if (variant === 'Query' && kind === 'select') {
    // SELECT … INTO t creates t (Postgres); a data-modifying CTE makes the statement a write.
    if (found.selectInto) kind = 'ddl'
    else if (found.dml.length > 0) kind = found.dml[0] ?? kind
  }
  const read = new Set(found.read)
  let written = found.written
  if (variant === 'Explain' && !explainAnalyzes((stmt.Explain ?? {}) as Record<string, unknown>)) {
    // Plain EXPLAIN only plans: whatever the statement would touch is reported as read.
    for (const t of written) read.add(t)
    written = new Set()
  }
  const result: StatementAnalysis = {
    kind,
    text,
    tablesRead: [...read].sort(),
    tablesWritten: [...written].sort(),
    functions: [...found.functions].sort(),
    hasLimit: kind === 'select' && hasLimit(stmt)
  }
  const rereads = rereadsOf(result.tablesRead, result.functions, dialect)
  if (rereads.length > 0) result.rereads = rereads
  // A read (or a SET of one) that calls a function with effects is a call: see system-functions.ts.
  const acting = actingFunctions(result.functions, dialect)
  if (acting.length > 0) {
    result.acting = acting
    if (kind === 'select' || kind === 'session') result.kind = 'call'
  }
  if (unclassified !== undefined) {
    result.kind = 'unknown'
    result.parseError = unclassified
  } else if (found.unresolved !== undefined) {
    result.kind = 'unknown'
    result.parseError = found.unresolved
  }
  return result
}

function unreadable (sql: string, error: string, dialect: Dialect): StatementAnalysis {
  const failure = parseFailure(sql, error)
  const construct = unsupportedConstruct(sql, failure, dialect)
  if (construct !== undefined) return unknown(sql.trim(), `Sluice's SQL parser does not read ${construct}`)
  return { ...unknown(sql.trim(), error), unparsed: failure }
}

function unknown (text: string, parseError: string): StatementAnalysis {
  return { kind: 'unknown', text, tablesRead: [], tablesWritten: [], functions: [], hasLimit: false, parseError }
}

export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
