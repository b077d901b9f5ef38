// Expression lineage over sqlparser's JSON AST: which source columns a value carries, and how a
// predicate uses the columns it mentions (for inference resistance).
//
// The walk is generic — any node it does not know is searched for column references — so a
// function or operator added to the parser later still carries its inputs' lineage (fail
// closed). Only the shapes that *narrow* lineage (COUNT) or *name* paths (field access, JSON
// paths) are special-cased.
import { normalizeIdent, type IdentJson } from './names.js'
import { columnOf, lin, merge, rowValue, withPath, wholeRow, type Item, type Lin, type Scope } from './lineage-scope.js'
import { argExpr, castKeepsValue, constructorLin, functionValueLin } from './lineage-struct.js'
import type { ColumnUsage, UsageClause } from './lineage.js'
import type { Dialect } from './types.js'

type Json = Record<string, unknown>

export interface Tracer {
  readonly dialect: Dialect
  /** Traces a nested query (subquery) whose outer scope is `scope`. */
  query (q: Json, scope: Scope): Item[]
  /** Records that a predicate / sort / grouping uses the columns of `l`. */
  use (l: Lin, usage: ColumnUsage, clause: UsageClause): void
}

export function isObj (v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** The single variant of a `{ Variant: body }` node. */
export function variant (node: unknown): [string, unknown] | undefined {
  if (!isObj(node)) return undefined
  const keys = Object.keys(node)
  return keys.length === 1 ? [keys[0] as string, node[keys[0] as string]] : undefined
}

export function identName (ident: unknown, dialect: Dialect): string | undefined {
  return isObj(ident) && typeof ident.value === 'string' ? normalizeIdent(ident as unknown as IdentJson, dialect) : undefined
}

/** Keys that never hold column references (names, types, formatting). */
const SKIP = new Set(['span', 'name', 'data_type', 'alias', 'format', 'null_treatment', 'options', 'kind', 'quote_style', 'uses_odbc_syntax', 'parameters'])

/** Aggregates whose result carries no value of their argument. */
const COUNTING = new Set(['count', 'count_big', 'approx_count_distinct'])

/** Lineage of all outputs of a subquery, as one value. */
function itemsLin (items: Item[]): Lin {
  const parts: Lin[] = []
  for (const item of items) {
    if (item.kind === 'col') parts.push(item.lin)
    else for (const rel of item.rels) parts.push(wholeRow(rel))
  }
  const direct = items.length === 1 && items[0]?.kind === 'col' && items[0].lin.direct
  const out = merge(parts, direct)
  if (items.some((i) => i.kind === 'star')) out.unresolved ??= 'subquery selects a star of unknown width'
  return out
}

/** A column reference `a.b.c`: qualifier + column + field path, tried in that order. */
export function refLin (parts: string[], scope: Scope | undefined, dialect: Dialect): Lin | undefined {
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    // Longest qualifier first: `db.s.t.col` before `t.col` before `col.field`.
    for (let q = Math.min(parts.length - 1, 3); q >= 1; q--) {
      const rel = s.relNamed(parts.slice(0, q))
      if (rel === undefined) continue
      const col = parts[q] as string
      if (rel.value !== undefined) return withPath(rel.value, parts.slice(q))
      const l = columnOf(rel, col, dialect)
      if (l !== undefined) return withPath(l, parts.slice(q + 1))
    }
    const first = parts[0] as string
    // A bare relation name is its whole row (`TO_JSON_STRING(t)`), unless a relation surely has
    // a column of that name; an unknown-schema table must not swallow it as a column.
    if (parts.length === 1 && !s.hasKnown(first)) {
      const rel = s.relNamed([first])
      if (rel !== undefined) return rowValue([rel], dialect)
    }
    const col = s.columnSure(first)
    if (col !== undefined) {
      const here = withPath(col.lin, parts.slice(1))
      if (col.sure) return here
      // Only an unknown-schema table may have it: it may as well be an output alias (Snowflake
      // allows them in WHERE) or an outer, correlated column. Keep every candidate.
      const alias = parts.length === 1 ? s.output(first) : undefined
      const outer = s.parent === undefined ? undefined : refLin(parts, s.parent, dialect)
      const all = [here, alias, outer].filter((l): l is Lin => l !== undefined)
      return all.length === 1 ? here : merge(all, all.every((l) => l.direct))
    }
    if (parts.length === 1) {
      const out = s.output(first)
      if (out !== undefined) return out
    }
  }
  return undefined
}

function identsOf (v: unknown, dialect: Dialect): string[] | undefined {
  if (!Array.isArray(v)) return undefined
  const out: string[] = []
  for (const p of v) {
    const inner = isObj(p) && isObj(p.Identifier) ? p.Identifier : p
    const n = identName(inner, dialect)
    if (n === undefined) return undefined
    out.push(n)
  }
  return out
}

/** A JSON / field path step: `.key`, `['key']`, `:key`; numeric subscripts add nothing. */
function pathKey (step: unknown): string | undefined {
  const v = variant(step)
  if (v === undefined) return undefined
  const [k, body] = v
  if (k === 'Dot' && isObj(body)) {
    if (typeof body.key === 'string') return body.key
    const id = variant(body)
    if (id !== undefined && id[0] === 'Identifier' && isObj(id[1]) && typeof id[1].value === 'string') return id[1].value
  }
  if (k === 'Bracket' && isObj(body)) return stringLiteral(body.key)
  return undefined
}

/** The text of a quoted string literal node, or undefined. */
export function stringLiteral (node: unknown): string | undefined {
  const v = variant(node)
  if (v === undefined || v[0] !== 'Value' || !isObj(v[1])) return undefined
  const inner = variant(v[1].value)
  return inner !== undefined && typeof inner[1] === 'string' && /QuotedString$/.test(inner[0]) ? inner[1] : undefined
}

function unresolvedRef (parts: string[]): Lin {
  return lin([], false, `column ${parts.join('.')} could not be resolved`)
}

/** Lineage of an expression. Runs nested queries (their predicates are recorded as they go). */
export function exprLin (node: unknown, scope: Scope, t: Tracer): Lin {
  if (Array.isArray(node)) return merge(node.map((n) => exprLin(n, scope, t)))
  if (!isObj(node)) return lin()
  const v = variant(node)
  if (v !== undefined) {
    const [k, body] = v
    switch (k) {
      case 'Identifier': {
        const n = identName(body, t.dialect)
        if (n === undefined) break
        return refLin([n], scope, t.dialect) ?? unresolvedRef([n])
      }
      case 'CompoundIdentifier': {
        const parts = identsOf(body, t.dialect)
        if (parts === undefined) break
        return refLin(parts, scope, t.dialect) ?? unresolvedRef(parts)
      }
      case 'Value': {
        // Snowflake `$3`: the third column of the FROM source, not a bind parameter.
        const p = isObj(body) ? variant(body.value) : undefined
        if (t.dialect === 'snowflake' && p?.[0] === 'Placeholder' && typeof p[1] === 'string' && /^\$\d+$/.test(p[1])) {
          return positional(Number(p[1].slice(1)), scope)
        }
        return lin()
      }
      case 'TypedString': case 'Interval':
        return lin()
      case 'Nested': case 'Collate':
        return exprLin(isObj(body) && 'expr' in body ? body.expr : body, scope, t)
      case 'Cast': case 'TryCast': case 'SafeCast': {
        if (!isObj(body)) return lin()
        // Only a cast that shows the value as it is keeps it direct (VARCHAR(3) cuts it).
        const inner = exprLin(body.expr, scope, t)
        return inner.direct && !castKeepsValue(body.data_type) ? { ...inner, direct: false } : { ...inner }
      }
      case 'Struct': case 'Array': case 'Tuple': case 'Dictionary': {
        const built = constructorLin(k, body, scope, t)
        if (built !== undefined) return built
        break
      }
      case 'JsonAccess': {
        if (!isObj(body)) break
        const base = exprLin(body.value, scope, t)
        const steps = isObj(body.path) && Array.isArray(body.path.path) ? body.path.path : []
        return pathLin(base, steps, scope, t)
      }
      case 'CompoundFieldAccess': {
        if (!isObj(body)) break
        const base = exprLin(body.root, scope, t)
        return pathLin(base, Array.isArray(body.access_chain) ? body.access_chain : [], scope, t)
      }
      case 'BinaryOp': {
        if (!isObj(body)) break
        // Postgres `j->'a'`, `j->>'a'`: a path into a JSON column.
        const key = typeof body.op === 'string' && /^(Arrow|LongArrow)$/.test(body.op) ? stringLiteral(body.right) : undefined
        if (key !== undefined) return withPath(exprLin(body.left, scope, t), [key])
        break
      }
      case 'Subquery':
        return itemsLin(t.query(body as Json, scope))
      case 'Exists':
        if (isObj(body)) t.query(body.subquery as Json, scope)
        return lin()
      case 'Function':
        if (isObj(body)) return functionLin(body, scope, t)
        break
      case 'Wildcard':
        return merge(scope.rels.map(wholeRow))
      case 'QualifiedWildcard': {
        const parts = identsOf(Array.isArray(body) ? (isObj(body[0]) && Array.isArray(body[0].ObjectName) ? body[0].ObjectName : body) : undefined, t.dialect)
        const rel = parts === undefined ? undefined : scope.relNamed(parts)
        return rel === undefined ? lin([], false, 'qualified wildcard over an unknown relation') : wholeRow(rel)
      }
    }
  }
  // Anything else: the union of every reference inside, never direct.
  const parts: Lin[] = []
  for (const key in node) {
    if (SKIP.has(key) || key.endsWith('_token')) continue
    const child = node[key]
    if (child !== null && typeof child === 'object') parts.push(exprLin(child, scope, t))
  }
  return merge(parts)
}

function positional (n: number, scope: Scope): Lin {
  const only = scope.rels.length === 1 ? scope.rels[0] : undefined
  const col = only?.unresolved === undefined ? only?.columns?.[n - 1] : undefined
  if (col !== undefined) return col.lin
  const all = merge(scope.rels.map(wholeRow))
  all.unresolved = `positional column $${n} over relations of unknown columns`
  return all
}

function pathLin (base: Lin, steps: unknown[], scope: Scope, t: Tracer): Lin {
  const keys: string[] = []
  const extra: Lin[] = []
  for (const step of steps) {
    const key = pathKey(step)
    if (key !== undefined) keys.push(key)
    else extra.push(exprLin(step, scope, t)) // a computed subscript: its inputs flow in too
  }
  const out = withPath(base, keys)
  if (extra.some((e) => e.sources.size > 0)) return merge([out, ...extra])
  return out
}

function functionLin (f: Json, scope: Scope, t: Tracer): Lin {
  const name = functionName(f)
  const args = isObj(f.args) ? variant(f.args) : undefined
  const list = args !== undefined && args[0] === 'List' && isObj(args[1]) ? args[1] : undefined
  // Clauses that only order or filter what an aggregate sees are inference, not value flow.
  if (f.filter !== undefined && f.filter !== null) predicate(f.filter, scope, t, 'where')
  if (Array.isArray(f.within_group)) orderItems(f.within_group, scope, t, 'aggregate')
  for (const clause of Array.isArray(list?.clauses) ? list.clauses : []) {
    const c = variant(clause)
    if (c !== undefined && c[0] === 'OrderBy' && Array.isArray(c[1])) orderItems(c[1], scope, t, 'aggregate')
  }
  if (f.over !== undefined && f.over !== null) windowSpec(f.over, scope, t)
  const argList: unknown[] = Array.isArray(list?.args) ? list.args : []
  const argLins = argList.map((a) => argLin(a, scope, t))
  if (args !== undefined && args[0] === 'Subquery') argLins.push(itemsLin(t.query(args[1] as Json, scope)))
  const counted = (l: Lin, i: number): boolean => l.direct || l.sources.size === 0 || isWildcardArg(argList[i])
  if (name !== undefined && COUNTING.has(name) && argLins.every(counted)) {
    return lin() // COUNT(x), COUNT(DISTINCT x), COUNT(*): a number, not a value of x
  }
  return (args?.[0] === 'List' ? functionValueLin(name, argList, argLins, scope, t) : undefined) ?? merge(argLins)
}

/** `*` or `t.*` as a function argument (COUNT(*), COUNT(t.*)). */
function isWildcardArg (arg: unknown): boolean {
  const v = variant(arg)
  if (v === undefined || v[0] !== 'Unnamed') return false
  return v[1] === 'Wildcard' || variant(v[1])?.[0] === 'QualifiedWildcard'
}

function argLin (arg: unknown, scope: Scope, t: Tracer): Lin {
  const e = argExpr(arg)
  if (e === 'Wildcard') return merge(scope.rels.map(wholeRow))
  return exprLin(e, scope, t)
}

export function functionName (f: Json): string | undefined {
  const parts = Array.isArray(f.name) ? f.name : []
  const last = parts[parts.length - 1]
  const ident = isObj(last) && isObj(last.Identifier) ? last.Identifier : last
  return isObj(ident) && typeof ident.value === 'string' ? ident.value.toLowerCase() : undefined
}

// ── predicates, ordering, grouping, windows ──────────────────────────────────────────────

const EQUALITY_OPS = new Set(['Eq', 'NotEq', 'Spaceship'])
const RANGE_OPS = new Set(['Lt', 'LtEq', 'Gt', 'GtEq'])
const PATTERNS = new Set(['Like', 'ILike', 'SimilarTo', 'RLike', 'Regexp'])

/** A predicate (WHERE, ON, HAVING, QUALIFY, FILTER): records how each column is used. */
export function predicate (node: unknown, scope: Scope, t: Tracer, clause: UsageClause): void {
  const v = variant(node)
  if (v === undefined || !isObj(v[1])) {
    useExpr(node, scope, t, 'expression', clause)
    return
  }
  const [k, b] = v
  switch (k) {
    case 'BinaryOp':
      if (b.op === 'And' || b.op === 'Or' || b.op === 'Xor') {
        predicate(b.left, scope, t, clause)
        predicate(b.right, scope, t, clause)
        return
      }
      if (typeof b.op === 'string' && (EQUALITY_OPS.has(b.op) || RANGE_OPS.has(b.op))) {
        const usage: ColumnUsage = EQUALITY_OPS.has(b.op) ? 'equality' : 'range'
        useExpr(b.left, scope, t, usage, clause)
        useExpr(b.right, scope, t, usage, clause)
        return
      }
      break
    case 'UnaryOp':
      if (b.op === 'Not') return predicate(b.expr, scope, t, clause)
      break
    case 'Nested':
      return predicate(b, scope, t, clause)
    case 'IsNull': case 'IsNotNull': case 'IsTrue': case 'IsFalse': case 'IsNotTrue': case 'IsNotFalse': case 'IsUnknown': case 'IsNotUnknown':
      return useExpr(b, scope, t, 'equality', clause)
    case 'IsDistinctFrom': case 'IsNotDistinctFrom':
      break
    case 'InList':
      useExpr(b.expr, scope, t, 'equality', clause)
      for (const item of Array.isArray(b.list) ? b.list : []) useExpr(item, scope, t, 'equality', clause)
      return
    case 'InSubquery':
      useExpr(b.expr, scope, t, 'equality', clause)
      t.use(itemsLin(t.query(b.subquery as Json, scope)), 'equality', clause)
      return
    case 'InUnnest':
      useExpr(b.expr, scope, t, 'equality', clause)
      useExpr(b.array_expr, scope, t, 'equality', clause)
      return
    case 'Between':
      for (const key of ['expr', 'low', 'high']) useExpr(b[key], scope, t, 'range', clause)
      return
    case 'Exists':
      t.query(b.subquery as Json, scope)
      return
  }
  if (PATTERNS.has(k)) {
    useExpr(b.expr, scope, t, 'pattern', clause)
    useExpr(b.pattern, scope, t, 'expression', clause)
    return
  }
  if (k === 'IsDistinctFrom' || k === 'IsNotDistinctFrom') {
    const sides = Array.isArray(b) ? b : []
    for (const side of sides) useExpr(side, scope, t, 'equality', clause)
    return
  }
  useExpr(node, scope, t, 'expression', clause)
}

/** Records a use of every column in `node`; a value that is not a plain column is an `expression`. */
export function useExpr (node: unknown, scope: Scope, t: Tracer, usage: ColumnUsage, clause: UsageClause): void {
  const l = exprLin(node, scope, t)
  t.use(l, l.direct ? usage : 'expression', clause)
}

export function orderItems (items: unknown[], scope: Scope, t: Tracer, clause: UsageClause): void {
  for (const item of items) {
    if (isObj(item) && 'expr' in item) useExpr(item.expr, scope, t, 'ordering', clause)
  }
}

export function windowSpec (over: unknown, scope: Scope, t: Tracer): void {
  const v = variant(over)
  const spec = v !== undefined && v[0] === 'WindowSpec' ? v[1] : over
  if (!isObj(spec)) return
  for (const e of Array.isArray(spec.partition_by) ? spec.partition_by : []) useExpr(e, scope, t, 'grouping', 'window')
  orderItems(Array.isArray(spec.order_by) ? spec.order_by : [], scope, t, 'window')
}
