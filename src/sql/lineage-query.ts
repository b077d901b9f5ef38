// Query-level lineage: WITH, set operations, SELECT (FROM relations, projection, stars) and the
// clauses that use columns without returning them (WHERE, JOIN, GROUP BY, HAVING, QUALIFY,
// ORDER BY, windows), recorded for inference resistance.
import { objectNameParts, qualify } from './names.js'
import {
  exprLin, functionName, identName, isObj, predicate, useExpr, variant, windowSpec, type Tracer
} from './lineage-expr.js'
import { columnOf, lin, merge, Scope, wholeRow, type Item, type Lin, type Rel } from './lineage-scope.js'
import {
  aliasColumns, expandStar, exprName, itemsRel, onlyTable, outputScope, rename, renameRel, setOperation, star
} from './lineage-rels.js'
import type { ColumnUse, ColumnUsage, UsageClause } from './lineage.js'
import type { Dialect, QualifyDefaults } from './types.js'

type Json = Record<string, unknown>

export interface TraceOptions {
  dialect: Dialect
  defaults: QualifyDefaults
  /** Column names of a qualified table, in order, when known (for star expansion). */
  schemaOf?: (table: string) => readonly string[] | undefined
}

/** Table-valued functions whose columns carry their input (`FLATTEN(input => t.v)`). */
const FLATTEN_COLUMNS = ['value', 'this', 'key']

/**
 * Built-in table functions that read nothing but their arguments: their rows are computed from
 * the inputs (never a stored value), so every column carries the arguments' lineage, computed.
 * Any other table function (a UDTF, a system function) may read any table: opaque.
 */
const ARGUMENT_ONLY = new Set([
  'generator', 'generate_series', 'sequence', 'range', 'split_to_table', 'strtok_split_to_table', 'unnest',
  'json_each', 'jsonb_each', 'json_each_text', 'jsonb_each_text', 'json_array_elements', 'jsonb_array_elements',
  'json_array_elements_text', 'jsonb_array_elements_text', 'regexp_split_to_table', 'string_to_table',
  'json_to_record', 'json_to_recordset', 'jsonb_to_record', 'jsonb_to_recordset', 'generate_subscripts'
])

export class QueryTracer implements Tracer {
  readonly dialect: Dialect
  readonly uses: ColumnUse[] = []
  /** Table functions whose source Sluice cannot see (UDTFs, system table functions). */
  readonly opaque: string[] = []
  readonly ctes = new Map<Scope, Map<string, Item[]>>()

  constructor (readonly options: TraceOptions) {
    this.dialect = options.dialect
  }

  use (l: Lin, usage: ColumnUsage, clause: UsageClause): void {
    for (const column of l.sources) this.uses.push({ column, usage, clause })
    if (l.unresolved !== undefined && l.sources.size === 0) this.uses.push({ column: '?', usage, clause, unresolved: l.unresolved })
  }

  query (q: Json, outer: Scope): Item[] {
    if (!isObj(q)) return [star([], 'not a query')]
    const scope = new Scope(this.dialect, outer)
    const defs = new Map<string, Item[]>()
    this.ctes.set(scope, defs)
    const w = isObj(q.with) ? q.with : undefined
    for (const cte of Array.isArray(w?.cte_tables) ? w.cte_tables : []) {
      if (!isObj(cte) || !isObj(cte.alias) || !isObj(cte.query)) continue
      const name = identName(cte.alias.name, this.dialect)
      if (name === undefined) continue
      const renames = aliasColumns(cte.alias, this.dialect)
      if (w?.recursive === true) {
        // The recursive part reads the CTE itself: seed it with the anchor (left) branch.
        const body = variant(cte.query.body)
        const anchor = body?.[0] === 'SetOperation' && isObj(body[1]) ? this.body(body[1].left, scope) : [star([], 'recursive CTE')]
        defs.set(name, rename(anchor, renames))
      }
      defs.set(name, rename(this.query(cte.query, scope), renames))
    }
    const { items, select } = this.bodyWithScope(q.body, scope)
    // LIMIT / OFFSET / FETCH may hold subqueries whose predicates count like any other.
    for (const key of ['limit_clause', 'limit', 'offset', 'fetch']) {
      if (q[key] !== undefined && q[key] !== null) useExpr(q[key], select ?? scope, this, 'expression', 'where')
    }
    const order = isObj(q.order_by) ? variant(q.order_by.kind) : undefined
    if (order !== undefined && order[0] === 'Expressions' && Array.isArray(order[1])) {
      const s = select ?? outputScope(items, scope, this.dialect)
      for (const o of order[1]) if (isObj(o)) this.outputRef(o.expr, items, s, 'ordering', 'order')
    }
    return items
  }

  body (node: unknown, scope: Scope): Item[] {
    return this.bodyWithScope(node, scope).items
  }

  private bodyWithScope (node: unknown, scope: Scope): { items: Item[], select?: Scope } {
    const v = variant(node)
    if (v === undefined || !isObj(v[1])) return { items: [star([], 'unsupported query body')] }
    const [k, b] = v
    switch (k) {
      case 'Select': return this.select(b, scope)
      case 'Query': return { items: this.query(b, scope) }
      case 'SetOperation': return { items: setOperation(this.body(b.left, scope), this.body(b.right, scope)) }
      case 'Values': {
        const rows = Array.isArray(b.rows) ? b.rows : []
        const width = Math.max(0, ...rows.map((r) => (isObj(r) && Array.isArray(r.content) ? r.content.length : 0)))
        const cols: Item[] = Array.from({ length: width }, (_, i) => ({ kind: 'col', name: `column${i + 1}`, lin: lin() }))
        for (const r of rows) {
          const content = isObj(r) && Array.isArray(r.content) ? r.content : []
          content.forEach((e, i) => { const c = cols[i]; if (c?.kind === 'col') c.lin = merge([c.lin, exprLin(e, scope, this)]) })
        }
        return { items: cols }
      }
      case 'Table': {
        const parts = [b.schema_name, b.table_name].filter((p): p is string => typeof p === 'string')
        const rel = this.tableRel(parts.map((p) => p.toLowerCase()), undefined, scope)
        return { items: expandStar([rel], new Set(), this.dialect) }
      }
      default:
        return { items: [star([], `query body ${k} is not traced`)] }
    }
  }

  private select (s: Json, outer: Scope): { items: Item[], select: Scope } {
    const scope = new Scope(this.dialect, outer)
    for (const twj of Array.isArray(s.from) ? s.from : []) this.tableWithJoins(twj, scope)
    const items: Item[] = []
    // Filled as the projection is read: Snowflake / BigQuery let a later item name an earlier
    // alias (`ssn AS s, UPPER(s) AS u`), which must carry the earlier item's lineage.
    scope.outputs = items
    for (const p of Array.isArray(s.projection) ? s.projection : []) items.push(...this.projection(p, scope))
    if (s.selection !== undefined && s.selection !== null) predicate(s.selection, scope, this, 'where')
    if (s.prewhere !== undefined && s.prewhere !== null) predicate(s.prewhere, scope, this, 'where')
    const group = variant(s.group_by)
    if (group?.[0] === 'Expressions' && Array.isArray(group[1])) {
      for (const e of Array.isArray(group[1][0]) ? group[1][0] : []) this.outputRef(e, items, scope, 'grouping', 'group')
    } else if (group?.[0] === 'All') {
      for (const item of items) if (item.kind === 'col') this.use(item.lin, item.lin.direct ? 'grouping' : 'expression', 'group')
    }
    if (s.having !== undefined && s.having !== null) predicate(s.having, scope, this, 'having')
    if (s.qualify !== undefined && s.qualify !== null) predicate(s.qualify, scope, this, 'qualify')
    for (const w of Array.isArray(s.named_window) ? s.named_window : []) {
      if (isObj(w)) windowSpec(w, scope, this)
      else if (Array.isArray(w)) for (const part of w) windowSpec(isObj(part) && 'NamedWindowExpression' in part ? part.NamedWindowExpression : part, scope, this)
    }
    const distinct = variant(s.distinct)
    if (distinct?.[0] === 'On' && Array.isArray(distinct[1])) for (const e of distinct[1]) useExpr(e, scope, this, 'grouping', 'distinct')
    for (const c of Array.isArray(s.connect_by) ? s.connect_by : []) useExpr(c, scope, this, 'expression', 'where')
    if (isObj(s.connect_by)) useExpr(s.connect_by, scope, this, 'expression', 'where')
    return { items, select: scope }
  }

  /** ORDER BY / GROUP BY item: a position, an output alias, or an expression. */
  private outputRef (e: unknown, items: Item[], scope: Scope, usage: ColumnUsage, clause: UsageClause): void {
    const v = variant(e)
    if (v?.[0] === 'Value' && isObj(v[1])) {
      const num = variant(v[1].value)
      if (num?.[0] === 'Number' && Array.isArray(num[1])) {
        const item = items[Number(num[1][0]) - 1]
        if (item?.kind === 'col') return this.use(item.lin, item.lin.direct ? usage : 'expression', clause)
        if (item?.kind === 'star') return this.use(merge(item.rels.map(wholeRow)), 'expression', clause)
        return
      }
    }
    if (v?.[0] === 'Identifier') {
      const name = identName(v[1], this.dialect)
      const out = name === undefined || scope.hasKnown(name) ? undefined : scope.output(name)
      if (out !== undefined) return this.use(out, out.direct ? usage : 'expression', clause)
    }
    useExpr(e, scope, this, usage, clause)
  }

  private projection (p: unknown, scope: Scope): Item[] {
    const v = variant(p)
    if (v === undefined) return [star([], 'unreadable projection')]
    const [k, b] = v
    if (k === 'UnnamedExpr') return [{ kind: 'col', name: exprName(b, this.dialect), lin: exprLin(b, scope, this) }]
    if (k === 'ExprWithAlias' && isObj(b)) {
      return [{ kind: 'col', name: identName(b.alias, this.dialect) ?? '', lin: exprLin(b.expr, scope, this) }]
    }
    if (k === 'Wildcard') return this.star(scope.rels, b, scope)
    if (k === 'QualifiedWildcard' && Array.isArray(b)) {
      const head = b[0]
      const parts = objectNameParts(isObj(head) && 'ObjectName' in head ? head.ObjectName : head, this.dialect)
      const rel = parts === undefined ? undefined : scope.relNamed(parts)
      if (rel === undefined) return [{ kind: 'col', name: '', lin: exprLin(head, scope, this) }]
      return this.star([rel], b[1], scope)
    }
    return [star(scope.rels, `projection ${k} is not traced`)]
  }

  /** `*` with EXCLUDE / EXCEPT / REPLACE / RENAME. */
  private star (rels: Rel[], opts: unknown, scope: Scope): Item[] {
    const o = isObj(opts) ? opts : {}
    const except = new Set<string>()
    const add = (i: unknown): void => { const n = identName(isObj(i) && 'Identifier' in i ? i.Identifier : i, this.dialect); if (n !== undefined) except.add(n.toLowerCase()) }
    for (const key of ['opt_exclude', 'opt_except']) {
      const e = o[key]
      if (!isObj(e)) continue
      const ev = variant(e)
      if (ev !== undefined) {
        const list = Array.isArray(ev[1]) ? ev[1] : [ev[1]]
        for (const item of list.flat(2)) add(item)
      } else {
        add(e.first_element)
        for (const item of Array.isArray(e.additional_elements) ? e.additional_elements : []) add(item)
      }
    }
    const replaced = new Map<string, Lin>()
    const rep = isObj(o.opt_replace) && Array.isArray(o.opt_replace.items) ? o.opt_replace.items : []
    for (const r of rep) {
      if (!isObj(r)) continue
      const n = identName(r.column_name, this.dialect)
      if (n !== undefined) replaced.set(n.toLowerCase(), exprLin(r.expr, scope, this))
    }
    const renamed = new Map<string, string>()
    const ren = variant(o.opt_rename)
    for (const r of ren === undefined ? [] : (Array.isArray(ren[1]) ? ren[1] : [ren[1]])) {
      if (!isObj(r)) continue
      const from = identName(r.ident, this.dialect)
      const to = identName(r.alias, this.dialect)
      if (from !== undefined && to !== undefined) renamed.set(from.toLowerCase(), to)
    }
    let items = expandStar(rels, except, this.dialect)
    if (replaced.size === 0 && renamed.size === 0) return items
    items = items.map((item) => {
      if (item.kind !== 'col') {
        // Unknown width: a replaced column may still be one of the unknown ones.
        const open = (name: string): Lin => replaced.get(name.toLowerCase()) ?? merge(item.rels.map((r) => columnOf(r, [...renamed].find(([, to]) => to === name)?.[0] ?? name, this.dialect) ?? lin()), true)
        return { ...item, rels: [{ alias: '', open, unresolved: item.unresolved }] }
      }
      const key = item.name.toLowerCase()
      return { kind: 'col', name: renamed.get(key) ?? item.name, lin: replaced.get(key) ?? item.lin }
    })
    return items
  }

  private tableWithJoins (twj: unknown, scope: Scope): void {
    if (!isObj(twj)) return
    this.relation(twj.relation, scope)
    for (const join of Array.isArray(twj.joins) ? twj.joins : []) {
      if (!isObj(join)) continue
      const before = scope.rels.length
      this.relation(join.relation, scope)
      this.joinConstraint(join.join_operator, scope, scope.rels.slice(0, before), scope.rels.slice(before))
    }
  }

  private joinConstraint (op: unknown, scope: Scope, left: Rel[], right: Rel[]): void {
    const v = variant(op)
    const c = v === undefined ? undefined : (isObj(v[1]) ? v[1] : v[1] === 'Natural' ? { Natural: true } : undefined)
    if (!isObj(c)) return
    const inner = variant(c) ?? ['', undefined]
    if (inner[0] === 'On') return predicate(inner[1], scope, this, 'join')
    if (inner[0] === 'Using' && Array.isArray(inner[1])) {
      for (const name of inner[1]) {
        const parts = objectNameParts(name, this.dialect) ?? objectNameParts([name], this.dialect)
        const col = parts?.[parts.length - 1]
        if (col === undefined) continue
        for (const rel of [...left, ...right]) {
          const l = columnOf(rel, col, this.dialect)
          if (l !== undefined) this.use(l, l.direct ? 'equality' : 'expression', 'join')
        }
      }
      return
    }
    if (inner[0] === 'Natural') {
      // The joined columns are the common names, unknown without both schemas: whole rows.
      for (const rel of [...left, ...right]) this.use(wholeRow(rel), 'equality', 'join')
    }
  }

  private relation (factor: unknown, scope: Scope): void {
    const v = variant(factor)
    if (v === undefined || !isObj(v[1])) return
    const [k, b] = v
    const alias = isObj(b.alias) ? identName(b.alias.name, this.dialect) : undefined
    const renames = isObj(b.alias) ? aliasColumns(b.alias, this.dialect) : []
    if (k === 'Table') {
      if (b.args !== undefined && b.args !== null) return this.tableFunction(functionName(b), b.args, alias, scope)
      const only = onlyTable(b, this.dialect)
      const parts = only ?? objectNameParts(b.name, this.dialect)
      if (only !== undefined) { scope.rels.push(this.tableRel(only, undefined, scope)); return }
      if (parts === undefined) { scope.rels.push({ alias: alias ?? '', open: () => lin([], false, 'table name is not a plain identifier'), unresolved: 'table name is not a plain identifier' }); return }
      const rel = this.tableRel(parts, alias, scope)
      scope.rels.push(renameRel(rel, renames))
      return
    }
    if (k === 'Derived') {
      const items = rename(this.query(b.subquery as Json, scope), renames)
      scope.rels.push(itemsRel(alias ?? '', items, this.dialect))
      return
    }
    if (k === 'UNNEST') {
      const value = merge((Array.isArray(b.array_exprs) ? b.array_exprs : []).map((e) => exprLin(e, scope, this)), true)
      const columns = [{ name: renames[0] ?? alias ?? '', lin: value }]
      const offset = identName(b.with_offset_alias, this.dialect)
      if (offset !== undefined) columns.push({ name: offset, lin: lin() })
      scope.rels.push({ alias: alias ?? '', value, columns })
      return
    }
    if (k === 'Function') return this.tableFunction(functionName(b), b.args, alias, scope)
    if (k === 'TableFunction') {
      // Snowflake TABLE(f(…)): FLATTEN and friends are ordinary table functions here.
      const fn = variant(b.expr)
      if (fn?.[0] === 'Function' && isObj(fn[1])) return this.tableFunction(functionName(fn[1]), fn[1].args, alias, scope)
    }
    if (k === 'NestedJoin') return this.tableWithJoins(b.table_with_joins, scope)
    // PIVOT, UNPIVOT, MATCH_RECOGNIZE, JSON_TABLE…: everything inside may flow out.
    const all = exprLin(b, scope, this)
    scope.rels.push({ alias: alias ?? '', open: () => ({ ...all, unresolved: `${k} is not traced` }), unresolved: `${k} is not traced` })
  }

  private tableFunction (name: string | undefined, args: unknown, alias: string | undefined, scope: Scope): void {
    const input = exprLin(args, scope, this)
    if (name === 'flatten') {
      const value = { ...input, direct: true }
      scope.rels.push({
        alias: alias ?? '',
        columns: ['seq', 'key', 'path', 'index', 'value', 'this'].map((c) => ({ name: c, lin: FLATTEN_COLUMNS.includes(c) ? value : lin() }))
      })
      return
    }
    if (name !== undefined && ARGUMENT_ONLY.has(name)) {
      const computed = { ...input, direct: false }
      scope.rels.push({ alias: alias ?? name, open: () => computed, unresolved: `the columns of table function ${name} are not known` })
      return
    }
    const why = `table function ${name ?? '?'} is not traced`
    this.opaque.push(name ?? '?')
    scope.rels.push({ alias: alias ?? name ?? '', open: () => ({ ...input, unresolved: why }), unresolved: why })
  }

  tableRel (parts: string[], alias: string | undefined, scope: Scope): Rel {
    if (parts.length === 1) {
      for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
        const items = this.ctes.get(s)?.get(parts[0] as string)
        if (items !== undefined) return itemsRel(alias ?? (parts[0] as string), items, this.dialect)
      }
    }
    const table = qualify(parts, this.options.defaults)
    const names = this.options.schemaOf?.(table)
    const rel: Rel = { alias: alias ?? (parts[parts.length - 1] as string), table }
    if (names !== undefined) {
      rel.columns = names.map((n) => ({ name: n, lin: lin([`${table}.${n}`], true) }))
    } else {
      rel.open = (name) => lin([`${table}.${name}`], true)
      rel.unresolved = `the columns of ${table} are not known`
    }
    return rel
  }
}
