// Parser evaluation: runs the measured corpus (test/sql/corpus/*.yaml) through each candidate
// parser and prints, per dialect, how many statements each one parsed, classified and resolved
// to the right tables. Run: npx tsx test/bench/parser-eval.ts
//
// Machine: 2 cores, Node 20 (20.20.2), 2026-11-21.
//
// Scoring, per expected statement (the corpus's true kind, not the chosen parser's gaps):
// - parsed: the candidate returned a structured statement for it (a raw-text fallback such as
//   polyglot's `command`/`raw`, or a bare expression, does not count); for the garbage rows,
//   refusing the input is the right answer and counts as parsed.
// - kind: the kind matches. wrong: a structured answer of the wrong kind (fails open).
// - tables: tablesRead and tablesWritten both match.
// The chosen parser (@guanmingchiu/sqlparser-ts) is scored through the production analyzer;
// the others through adapters below that map their ASTs to the same kinds and qualified
// names. Candidates that are not installed are skipped (`npm i --no-save NAME` to include).
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { Dialect, QualifyDefaults, StatementKind } from '../../src/sql/types.js'
import { DIALECTS, loadCorpus, type CorpusCase } from '../sql/corpus.js'

interface Got { kind: StatementKind, read: string[], written: string[] }
type Outcome = { error: string } | { statements: Got[] }
interface Candidate {
  name: string
  dialects: readonly Dialect[]
  run: (sql: string, dialect: Dialect, defaults: QualifyDefaults) => Outcome
}
type Json = Record<string, any>

const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)
const sorted = (s: Iterable<string>): string[] => [...new Set(s)].sort()
const qualifyParts = (parts: string[], d: QualifyDefaults): string => {
  const full = parts.length === 1 ? [d.database, d.schema, ...parts] : parts.length === 2 ? [d.database, ...parts] : parts
  return full.filter((p) => p !== undefined && p !== '').join('.')
}
const norm = (name: string, quoted: boolean, dialect: Dialect): string =>
  !quoted || (dialect === 'snowflake' && name === name.toUpperCase()) ? name.toLowerCase() : name
const tryImport = async (name: string): Promise<any> => {
  try { return await import(name) } catch { return undefined }
}
const errorOf = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// --- @guanmingchiu/sqlparser-ts, through the production analyzer -------------------------
async function sqlparserTs (): Promise<Candidate> {
  const analyzer = await createSqlAnalyzer({ cacheSize: 0 })
  return {
    name: '@guanmingchiu/sqlparser-ts',
    dialects: DIALECTS,
    run (sql, dialect, defaults) {
      const { statements } = analyzer.analyze(sql, dialect, defaults)
      const failed = statements.length === 1 && statements[0]?.kind === 'unknown' && statements[0].parseError !== undefined
      if (failed) return { error: statements[0]?.parseError ?? '' }
      return { statements: statements.map((s) => ({ kind: s.kind, read: [...s.tablesRead], written: [...s.tablesWritten] })) }
    }
  }
}

// --- @polyglot-sql/sdk -------------------------------------------------------------------
const POLYGLOT_KIND: Record<string, StatementKind> = {
  select: 'select', union: 'select', intersect: 'select', except: 'select', values: 'select',
  insert: 'insert', multitable_inserts: 'insert', update: 'update', delete: 'delete', merge: 'merge',
  grant: 'dcl', revoke: 'dcl', copy: 'copy', put: 'copy', export: 'copy', execute: 'call',
  transaction: 'transaction', commit: 'transaction', rollback: 'transaction',
  use: 'session', set_statement: 'session', alter_session: 'session', declare: 'session',
  show: 'show', describe: 'show', truncate: 'ddl', undrop: 'ddl', comment: 'ddl', refresh: 'ddl'
}
async function polyglot (): Promise<Candidate | undefined> {
  const pg = await tryImport('@polyglot-sql/sdk')
  if (pg === undefined) return undefined
  await pg.init?.()
  const DIALECT = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgresql' }
  const refName = (ref: Json, dialect: Dialect, defaults: QualifyDefaults): string | undefined => {
    const parts: string[] = []
    for (const k of ['catalog', 'schema', 'name']) {
      const id = ref[k]
      if (!isObj(id) || typeof id.name !== 'string') continue
      if (id.quoted === true && id.name.includes('.')) parts.push(...id.name.split('.'))
      else parts.push(norm(id.name, id.quoted === true, dialect))
    }
    return parts.length > 0 ? qualifyParts(parts, defaults) : undefined
  }
  const isRef = (v: unknown): v is Json => isObj(v) && isObj(v.name) && typeof v.name.name === 'string'
  const walk = (node: unknown, visit: (key: string, v: unknown) => boolean): void => {
    if (Array.isArray(node)) { node.forEach((n) => walk(n, visit)); return }
    if (!isObj(node)) return
    for (const [k, v] of Object.entries(node)) if (!visit(k, v)) walk(v, visit)
  }
  return {
    name: '@polyglot-sql/sdk',
    dialects: DIALECTS,
    run (sql, dialect, defaults) {
      const r = pg.parse(sql, DIALECT[dialect])
      if (r.success !== true) return { error: String(r.error) }
      return {
        statements: (r.ast as Json[]).map((stmt) => {
          const key = Object.keys(stmt)[0] ?? ''
          const v = stmt[key] as Json
          let kind: StatementKind = POLYGLOT_KIND[key] ?? (/^(create|drop|alter)_/.test(key) ? 'ddl' : 'unknown')
          if (kind === 'select' && isObj(v?.into)) kind = 'ddl'
          const targets: Json[] = []
          const add = (t: unknown): void => { if (isRef(t)) targets.push(t); else if (isObj(t) && isRef(t.table)) targets.push(t.table) }
          if (['insert', 'update', 'delete', 'truncate', 'undrop'].includes(key)) add(v.table)
          if (key === 'merge' || key === 'copy') add(v.this)
          if (['create_table', 'create_view', 'alter_table'].includes(key)) add(v.name)
          if (key === 'drop_table' || key === 'drop_view') (v.names ?? []).forEach(add)
          if (kind === 'ddl' && key === 'select') add(v.into?.this)
          const ctes = new Set<string>()
          walk(stmt, (k, x) => { if (k === 'ctes' && Array.isArray(x)) x.forEach((c: Json) => ctes.add(String(c?.alias?.name).toLowerCase())); return false })
          const read: string[] = []
          walk(stmt, (k, x) => {
            if (k !== 'table' || !isRef(x) || targets.includes(x)) return false
            if (!(x.schema == null && ctes.has(x.name.name.toLowerCase()))) read.push(refName(x, dialect, defaults) ?? '?')
            return true
          })
          const written = targets.map((t) => refName(t, dialect, defaults) ?? '?')
          if (key === 'alter_table') {
            for (const a of v.actions ?? []) if (isObj(a?.RenameTable?.name)) written.push(qualifyParts([norm(a.RenameTable.name.name, a.RenameTable.name.quoted === true, dialect)], defaults))
          }
          if (key === 'describe' && v.kind === null) kind = 'show' // EXPLAIN
          return { kind, read: sorted(read), written: sorted(written) }
        })
      }
    }
  }
}

// --- node-sql-parser ---------------------------------------------------------------------
const NSP_KIND: Record<string, StatementKind> = {
  select: 'select', insert: 'insert', replace: 'insert', update: 'update', delete: 'delete',
  merge: 'merge', create: 'ddl', drop: 'ddl', alter: 'ddl', truncate: 'ddl', rename: 'ddl',
  grant: 'dcl', revoke: 'dcl', use: 'session', set: 'session', declare: 'session', show: 'show',
  desc: 'show', explain: 'show', transaction: 'transaction', call: 'call', exec: 'call',
  lock: 'transaction', load_data: 'copy'
}
async function nodeSqlParser (): Promise<Candidate | undefined> {
  const mod = await tryImport('node-sql-parser')
  if (mod === undefined) return undefined
  const parser = new (mod.Parser ?? mod.default.Parser)()
  const DB = { snowflake: 'Snowflake', bigquery: 'BigQuery', postgres: 'PostgresQL' }
  const tables = (list: string[], defaults: QualifyDefaults): { read: string[], written: string[] } => {
    const read: string[] = []
    const written: string[] = []
    for (const entry of list) {
      const [type = '', db = 'null', table = ''] = entry.split('::')
      const parts = [...(db === 'null' ? [] : db.split('.')), ...table.split('.')].map((p) => p.toLowerCase())
      ;(type.toLowerCase() === 'select' ? read : written).push(qualifyParts(parts, defaults))
    }
    return { read: sorted(read), written: sorted(written) }
  }
  return {
    name: 'node-sql-parser',
    dialects: DIALECTS,
    run (sql, dialect, defaults) {
      const opt = { database: DB[dialect] }
      let r: Json
      try { r = parser.parse(sql, opt) } catch (e) { return { error: errorOf(e) } }
      const asts: Json[] = Array.isArray(r.ast) ? r.ast : [r.ast]
      return {
        statements: asts.map((ast) => {
          let kind = NSP_KIND[String(ast?.type).toLowerCase()] ?? 'unknown'
          if (kind === 'ddl' && ['user', 'role'].includes(String(ast.keyword))) kind = 'dcl'
          if (kind === 'select' && isObj(ast.into) && ast.into.expr != null) kind = 'ddl'
          let list: string[] = r.tableList
          if (asts.length > 1) {
            try { list = parser.tableList(parser.sqlify(ast, opt), opt) } catch { list = [] }
          }
          return { kind, ...tables(list, defaults) }
        })
      }
    }
  }
}

// --- pgsql-parser (libpg_query), Postgres only ---------------------------------------------
const PG_KIND: Record<string, StatementKind> = {
  SelectStmt: 'select', InsertStmt: 'insert', UpdateStmt: 'update', DeleteStmt: 'delete',
  MergeStmt: 'merge', CreateStmt: 'ddl', CreateTableAsStmt: 'ddl', ViewStmt: 'ddl', IndexStmt: 'ddl',
  DropStmt: 'ddl', AlterTableStmt: 'ddl', RenameStmt: 'ddl', TruncateStmt: 'ddl', CommentStmt: 'ddl',
  CreateSchemaStmt: 'ddl', CreateExtensionStmt: 'ddl', CreateFunctionStmt: 'ddl', RefreshMatViewStmt: 'ddl',
  GrantStmt: 'dcl', GrantRoleStmt: 'dcl', CreateRoleStmt: 'dcl', CopyStmt: 'copy', CallStmt: 'call',
  ExecuteStmt: 'call', DoStmt: 'scripting', TransactionStmt: 'transaction', VariableSetStmt: 'session',
  DeclareCursorStmt: 'session', PrepareStmt: 'session', VariableShowStmt: 'show', ExplainStmt: 'show'
}
async function pgsqlParser (): Promise<Candidate | undefined> {
  const mod = await tryImport('pgsql-parser')
  if (mod === undefined) return undefined
  await mod.loadModule()
  const rv = (r: Json, d: QualifyDefaults): string =>
    qualifyParts([r.catalogname, r.schemaname, r.relname].filter((p) => typeof p === 'string'), d)
  const walk = (node: unknown, visit: (key: string, v: Json) => boolean): void => {
    if (Array.isArray(node)) { node.forEach((n) => walk(n, visit)); return }
    if (!isObj(node)) return
    for (const [k, v] of Object.entries(node)) if (!(isObj(v) && visit(k, v))) walk(v, visit)
  }
  const classify = (stmt: Json, defaults: QualifyDefaults): Got => {
    const key = Object.keys(stmt)[0] ?? ''
    const v = stmt[key] as Json
    if (key === 'ExplainStmt' && (v.options ?? []).some((o: Json) => o?.DefElem?.defname === 'analyze')) {
      return classify(v.query, defaults)
    }
    let kind = PG_KIND[key] ?? 'unknown'
    const targets = new Set<Json>()
    const rel = (x: unknown): void => { if (isObj(x)) targets.add(x) }
    if (['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CreateStmt', 'IndexStmt', 'AlterTableStmt', 'RenameStmt', 'RefreshMatViewStmt'].includes(key)) rel(v.relation)
    if (key === 'CopyStmt' && v.is_from === true) rel(v.relation)
    if (key === 'CreateTableAsStmt') rel(v.into?.rel)
    if (key === 'ViewStmt') rel(v.view)
    if (key === 'SelectStmt' && isObj(v.intoClause)) { kind = 'ddl'; rel(v.intoClause.rel) }
    ;(v.relations ?? []).forEach((r: Json) => rel(r.RangeVar))
    ;(key === 'GrantStmt' ? v.objects ?? [] : []).forEach((r: Json) => rel(r.RangeVar))
    const written = [...targets].map((t) => rv(t, defaults))
    if (key === 'DropStmt' && ['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW'].includes(v.removeType)) {
      for (const o of v.objects ?? []) written.push(qualifyParts((o.List?.items ?? []).map((i: Json) => i.String?.sval), defaults))
    }
    if (key === 'CommentStmt' && v.objtype === 'OBJECT_TABLE') written.push(qualifyParts((v.object?.List?.items ?? []).map((i: Json) => i.String?.sval), defaults))
    if (key === 'RenameStmt' && typeof v.newname === 'string') written.push(qualifyParts([v.newname], defaults))
    const ctes = new Set<string>()
    const read: string[] = []
    walk(v, (k, x) => { if (k === 'CommonTableExpr') ctes.add(x.ctename); return false })
    walk(v, (k, x) => {
      if (k === 'CommonTableExpr' && isObj(x.ctequery)) {
        const inner = classify(x.ctequery, defaults)
        if (kind === 'select' && inner.kind !== 'select') kind = inner.kind
      }
      if (k !== 'RangeVar' || targets.has(x)) return false
      if (!(x.schemaname === undefined && ctes.has(x.relname))) read.push(rv(x, defaults))
      return true
    })
    return { kind, read: sorted(read), written: sorted(written) }
  }
  return {
    name: 'pgsql-parser',
    dialects: ['postgres'],
    run (sql, _dialect, defaults) {
      let r: Json
      try { r = mod.parseSync(sql) } catch (e) { return { error: errorOf(e) } }
      return { statements: (r.stmts ?? []).map((s: Json) => classify(s.stmt, defaults)) }
    }
  }
}

// --- scoring -----------------------------------------------------------------------------
interface Score { n: number, parsed: number, kind: number, wrong: number, tables: number, ms: number }

function score (candidate: Candidate, cases: CorpusCase[]): Score {
  const s: Score = { n: 0, parsed: 0, kind: 0, wrong: 0, tables: 0, ms: 0 }
  for (const c of cases) {
    const t0 = performance.now()
    let out: Outcome
    try { out = candidate.run(c.sql, c.dialect, c.defaults) } catch (e) { out = { error: errorOf(e) } }
    s.ms += performance.now() - t0
    const got = 'statements' in out ? out.statements : undefined
    const refused = got === undefined || got.every((g) => g.kind === 'unknown')
    const countOk = got !== undefined && got.length === c.expect.length
    c.expect.forEach((e, i) => {
      s.n++
      if (e.kind === 'unknown') {
        if (refused) { s.parsed++; s.kind++; s.tables++ } else s.wrong++
        return
      }
      const g = countOk ? got[i] : undefined
      if (g === undefined || g.kind === 'unknown') return
      s.parsed++
      if (g.kind === e.kind) s.kind++
      else s.wrong++
      if (JSON.stringify(g.read) === JSON.stringify(e.read) && JSON.stringify(g.written) === JSON.stringify(e.written)) s.tables++
    })
  }
  return s
}

async function main (): Promise<void> {
  const factories: Array<[string, () => Promise<Candidate | undefined>]> = [
    ['@guanmingchiu/sqlparser-ts', sqlparserTs],
    ['@polyglot-sql/sdk', polyglot],
    ['node-sql-parser', nodeSqlParser],
    ['pgsql-parser', pgsqlParser]
  ]
  const corpus = new Map(DIALECTS.map((d) => [d, loadCorpus(d)] as const))
  const rows: string[] = []
  const head = '| parser | dialect | statements | parsed OK | kind correct | wrong kind (fails open) | tables correct | ms / statement |'
  rows.push(head, head.replace(/[^|]+/g, (m) => '-'.repeat(m.length)))
  const init: string[] = []
  for (const [name, factory] of factories) {
    const t0 = performance.now()
    const candidate = await factory()
    if (candidate === undefined) { init.push(`- ${name}: not installed, skipped`); continue }
    init.push(`- ${name}: initialised in ${(performance.now() - t0).toFixed(0)} ms`)
    let total: Score = { n: 0, parsed: 0, kind: 0, wrong: 0, tables: 0, ms: 0 }
    for (const dialect of candidate.dialects) {
      const cases = corpus.get(dialect) ?? []
      score(candidate, cases) // warm-up pass: the timing column then measures steady state
      const s = score(candidate, cases)
      total = { n: total.n + s.n, parsed: total.parsed + s.parsed, kind: total.kind + s.kind, wrong: total.wrong + s.wrong, tables: total.tables + s.tables, ms: total.ms + s.ms }
      rows.push(row(candidate.name, dialect, s))
    }
    if (candidate.dialects.length > 1) rows.push(row(candidate.name, '**all**', total))
  }
  console.log(rows.join('\n'))
  console.log(`\n${init.join('\n')}`)
}

function row (name: string, dialect: string, s: Score): string {
  const pct = (k: number): string => `${k} (${Math.round((100 * k) / s.n)}%)`
  return `| ${name} | ${dialect} | ${s.n} | ${pct(s.parsed)} | ${pct(s.kind)} | ${s.wrong} | ${pct(s.tables)} | ${(s.ms / s.n).toFixed(3)} |`
}

await main()
