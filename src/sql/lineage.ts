// Column lineage: for each output column of a statement, the source columns its values carry
// (fully qualified: `db.schema.table.column`, `project.dataset.table.column`, nested fields and
// semi-structured paths appended: `….address.ssn`, `….v.email`), and every column a statement
// filters, joins, sorts, groups or windows on (for inference resistance).
//
// Fail closed: lineage over-approximates. A name that could come from several relations keeps
// them all; what cannot be traced says so (`unresolved`) and carries every source it might have,
// so the mask planner can mask it when the statement touches masked data.
import { exprLin, isObj, predicate, variant } from './lineage-expr.js'
import { QueryTracer, type TraceOptions } from './lineage-query.js'
import { columnOf, lin, merge, Scope, wholeRow, type Item, type Lin, type Shape } from './lineage-scope.js'
import { objectNameParts, qualify } from './names.js'
import { parseSql, variantOf, type StatementJson } from './parser.js'
import type { Dialect } from './types.js'

export type { TraceOptions } from './lineage-query.js'
export type { Lin, Shape } from './lineage-scope.js'

/** How a statement uses a column without (necessarily) returning it. */
export type ColumnUsage =
  | 'equality' // =, <>, IN, IS NULL, JOIN … ON a = b, USING
  | 'range' // <, >, BETWEEN
  | 'pattern' // LIKE, ILIKE, SIMILAR TO, RLIKE
  | 'grouping' // GROUP BY, PARTITION BY, DISTINCT ON
  | 'ordering' // ORDER BY, window ORDER BY, WITHIN GROUP
  | 'expression' // any other computation over the column (UPPER(x) = 'A', SUM(x) > 3)
  | 'copy' // the column's values are written elsewhere (INSERT … SELECT, CTAS, UPDATE SET)

export type UsageClause = 'where' | 'join' | 'having' | 'qualify' | 'group' | 'order' | 'window' | 'aggregate' | 'distinct' | 'write'

export interface ColumnUse {
  /** A qualified source column (`….*` = any column of that table), or `?` when unresolved. */
  column: string
  usage: ColumnUsage
  clause: UsageClause
  unresolved?: string
}

export interface OutputColumn {
  /** Output name as the query spells it (normalised), `''` when the database makes one up. */
  name: string
  sources: string[]
  /** The value is a source value unchanged (bare column, field path, cast), not computed. */
  direct: boolean
  /** Why the sources are a guess; set whenever the lineage is not exact. */
  unresolved?: string
  /** Where each part of a structured value (OBJECT, STRUCT, array, JSON text) comes from. */
  shape?: Shape
}

export type LineageOutput =
  | ({ kind: 'column' } & OutputColumn)
  | { kind: 'star', unresolved: string, resolve: (name: string) => OutputColumn, all: OutputColumn }

export interface StatementLineage {
  /** Output columns in order; a `star` of unknown width stands for any number of them. */
  outputs: LineageOutput[]
  uses: ColumnUse[]
  /** Set when the statement as a whole is not traced (its outputs are then unknown). */
  unresolved?: string
  /** Table functions it reads whose sources Sluice cannot see: they may read any table. */
  opaque?: string[]
}

function toColumn (name: string, l: Lin): OutputColumn {
  const out: OutputColumn = { name, sources: [...l.sources].sort(), direct: l.direct }
  if (l.unresolved !== undefined) out.unresolved = l.unresolved
  if (l.shape !== undefined) out.shape = l.shape
  return out
}

function toOutputs (items: Item[], dialect: Dialect): LineageOutput[] {
  return items.map((item): LineageOutput => {
    if (item.kind === 'col') return { kind: 'column', ...toColumn(item.name, item.lin) }
    const all = toColumn('', merge(item.rels.map(wholeRow)))
    all.unresolved = item.unresolved
    return {
      kind: 'star',
      unresolved: item.unresolved,
      all,
      resolve (name) {
        // Result column names come back in the warehouse's case (Snowflake: upper).
        const key = name === name.toUpperCase() ? name.toLowerCase() : name
        if (item.except.has(key.toLowerCase())) return toColumn(name, lin([], false, `${name} is excluded`))
        const parts = item.rels.map((r) => columnOf(r, key, dialect)).filter((l): l is Lin => l !== undefined)
        if (parts.length === 0) return { ...all, name, unresolved: `${name}: ${item.unresolved}` }
        return toColumn(name, merge(parts, parts.every((p) => p.direct)))
      }
    }
  })
}

/** Lineage of one parsed statement. */
export function traceStatement (stmt: StatementJson, given: TraceOptions): StatementLineage {
  // Defaults come from configuration in the warehouse's spelling (ANALYTICS.PUBLIC); they name
  // what unquoted identifiers name, compared in lower case — as the analyzer does.
  const { database, schema } = given.defaults
  const options: TraceOptions = {
    ...given,
    defaults: { ...(database !== undefined && { database: database.toLowerCase() }), ...(schema !== undefined && { schema: schema.toLowerCase() }) }
  }
  const t = new QueryTracer(options)
  const root = new Scope(options.dialect)
  const name = variantOf(stmt) ?? 'unknown'
  const body = (stmt as Record<string, unknown>)[name]
  const copy = (items: Item[]): void => {
    for (const i of items) t.use(i.kind === 'col' ? i.lin : merge(i.rels.map(wholeRow)), 'copy', 'write')
  }
  switch (name) {
    case 'Query': {
      const outputs = toOutputs(t.query(body as Record<string, unknown>, root), options.dialect)
      return { outputs, uses: t.uses, ...(t.opaque.length > 0 && { opaque: [...new Set(t.opaque)] }) }
    }
    case 'Insert':
      if (isObj(body) && isObj(body.source)) copy(t.query(body.source, root))
      return { outputs: [], uses: t.uses }
    case 'CreateTable': case 'CreateView':
      if (isObj(body) && isObj(body.query)) copy(t.query(body.query, root))
      // CREATE TABLE … CLONE t copies every value of t.
      if (isObj(body) && body.clone !== undefined && body.clone !== null) {
        const parts = objectNameParts(body.clone, options.dialect)
        t.uses.push(parts === undefined
          ? { column: '?', usage: 'copy', clause: 'write', unresolved: 'clone source is not a plain name' }
          : { column: `${qualify(parts, options.defaults)}.*`, usage: 'copy', clause: 'write' })
      }
      return { outputs: [], uses: t.uses }
    case 'Update': case 'Delete': {
      if (!isObj(body)) break
      const scope = new Scope(options.dialect, root)
      for (const rel of writeTargets(body, options)) scope.rels.push(t.tableRel(rel, undefined, root))
      if (body.selection !== undefined && body.selection !== null) predicate(body.selection, scope, t, 'where')
      for (const a of Array.isArray(body.assignments) ? body.assignments : []) {
        if (isObj(a)) t.use(exprLin(a.value, scope, t), 'copy', 'write')
      }
      return { outputs: [], uses: t.uses }
    }
  }
  return { outputs: [], uses: t.uses, unresolved: `${name} statements are not traced` }
}

function writeTargets (body: Record<string, unknown>, options: TraceOptions): string[][] {
  const out: string[][] = []
  const collect = (factor: unknown): void => {
    const v = variant(factor)
    if (v?.[0] === 'Table' && isObj(v[1])) {
      const parts = objectNameParts(v[1].name, options.dialect)
      if (parts !== undefined) out.push(parts)
    }
  }
  const table = body.table
  if (isObj(table)) { collect(table.relation); for (const j of Array.isArray(table.joins) ? table.joins : []) if (isObj(j)) collect(j.relation) }
  const from = isObj(body.from) ? (variant(body.from)?.[1] ?? body.from) : body.from
  for (const twj of Array.isArray(from) ? from : []) {
    if (!isObj(twj)) continue
    collect(twj.relation)
    for (const j of Array.isArray(twj.joins) ? twj.joins : []) if (isObj(j)) collect(j.relation)
  }
  return out
}

/** Parses `sql` and traces every statement; a parse failure is one unresolved lineage. */
export function lineageOf (sql: string, options: TraceOptions): StatementLineage[] {
  const parsed = parseSql(sql, options.dialect)
  if (!parsed.ok) return [{ outputs: [], uses: [], unresolved: `the statement could not be parsed: ${parsed.error}` }]
  return parsed.statements.map((s) => traceStatement(s, options))
}

/**
 * The lineage of each result column, aligned with the column names the warehouse returned.
 * A star of unknown width takes the columns the others leave, each resolved by its name.
 */
export function outputColumns (lineage: StatementLineage, names: readonly string[]): OutputColumn[] {
  const outs = lineage.outputs
  const stars = outs.filter((o) => o.kind === 'star')
  const fixed = outs.length - stars.length
  const fallback = (why: string): OutputColumn[] => {
    const every = merge(outs.map((o) => lin(o.kind === 'column' ? o.sources : o.all.sources)))
    return names.map((name) => ({ ...toColumn(name, every), unresolved: why }))
  }
  if (lineage.unresolved !== undefined) return fallback(lineage.unresolved)
  if (stars.length === 0) {
    if (fixed !== names.length) return fallback(`the result has ${names.length} columns, the query projects ${fixed}`)
    return outs.map((o, i) => {
      const { kind: _k, ...col } = o as Extract<LineageOutput, { kind: 'column' }>
      return { ...col, name: names[i] ?? '' }
    })
  }
  if (stars.length > 1 || names.length < fixed) return fallback('several stars of unknown width: columns cannot be aligned')
  const at = outs.findIndex((o) => o.kind === 'star')
  const width = names.length - fixed
  const result: OutputColumn[] = []
  names.forEach((name, i) => {
    let o: LineageOutput | undefined
    if (i < at) o = outs[i]
    else if (i >= at + width) o = outs[i - width + 1]
    else o = outs[at]
    if (o === undefined) return
    if (o.kind === 'star') result.push(o.resolve(name))
    else {
      const { kind: _k, ...col } = o
      result.push({ ...col, name })
    }
  })
  return result
}
