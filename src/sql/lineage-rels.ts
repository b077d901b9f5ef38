// Relations and output lists of the lineage walk: star expansion, derived tables and CTEs as
// relations, set operations, renames, and the names outputs get.
import { identName, isObj, variant } from './lineage-expr.js'
import { columnOf, lin, merge, Scope, wholeRow, type Item, type Lin, type Rel } from './lineage-scope.js'
import type { Dialect } from './types.js'

type Json = Record<string, unknown>

export function star (rels: Rel[], why: string): Item {
  return { kind: 'star', rels, except: new Set(), unresolved: why }
}

/** Expands a star now when every relation's columns are known; otherwise keeps it open. */
export function expandStar (rels: Rel[], except: Set<string>, _dialect: Dialect): Item[] {
  if (rels.some((r) => r.columns === undefined || r.unresolved !== undefined)) {
    const why = rels.find((r) => r.unresolved !== undefined)?.unresolved ?? 'star over relations of unknown width'
    return [{ kind: 'star', rels, except, unresolved: why }]
  }
  const out: Item[] = []
  for (const rel of rels) {
    for (const c of rel.columns ?? []) if (!except.has(c.name.toLowerCase())) out.push({ kind: 'col', name: c.name, lin: c.lin })
  }
  return out
}

/** A derived table / CTE as a relation. */
export function itemsRel (alias: string, items: Item[], dialect: Dialect): Rel {
  if (items.every((i) => i.kind === 'col')) {
    return { alias, columns: items.map((i) => (i.kind === 'col' ? { name: i.name, lin: i.lin } : { name: '', lin: lin() })) }
  }
  const cols = items.filter((i): i is Extract<Item, { kind: 'col' }> => i.kind === 'col').map((i) => ({ name: i.name, lin: i.lin }))
  const stars = items.filter((i): i is Extract<Item, { kind: 'star' }> => i.kind === 'star')
  const why = stars[0]?.unresolved ?? 'unknown width'
  return {
    alias,
    columns: cols,
    unresolved: why,
    open: (name) => {
      const parts: Lin[] = []
      for (const s of stars) {
        if (s.except.has(name.toLowerCase())) continue
        for (const r of s.rels) { const l = columnOf(r, name, dialect); if (l !== undefined) parts.push(l) }
      }
      return parts.length === 0 ? lin([], false, `column ${name} could not be resolved (${why})`) : merge(parts, parts.every((p) => p.direct))
    }
  }
}

/**
 * Set operations combine branches by position. Result names come from the left branch. When
 * a star of unknown width makes positions unknown, a column is still found by its name where
 * the right branch has the same layout as the left (`SELECT * FROM t UNION ALL SELECT * FROM t`);
 * otherwise the right branch's position is unknown and it may carry any of its values.
 */
export function setOperation (left: Item[], right: Item[]): Item[] {
  if (left.every((i) => i.kind === 'col') && right.every((i) => i.kind === 'col') && left.length === right.length) {
    return left.map((l, i) => {
      const r = right[i] as Item
      const ll = (l as Extract<Item, { kind: 'col' }>).lin
      const rl = (r as Extract<Item, { kind: 'col' }>).lin
      return { kind: 'col', name: (l as { name: string }).name, lin: merge([ll, rl], ll.direct && rl.direct) }
    })
  }
  const everything = (items: Item[]): Lin => merge(items.map((i) => (i.kind === 'col' ? i.lin : merge(i.rels.map(wholeRow)))))
  const sameLayout = layoutOf(left) === layoutOf(right)
  const why = 'set operation over branches of unknown width'
  const leftRel = itemsRel('', left, 'snowflake')
  const rightRel = itemsRel('', right, 'snowflake')
  const rightAll = everything(right)
  const open = (name: string): Lin => {
    const l = columnOf(leftRel, name, 'snowflake') ?? lin([], false, `column ${name} could not be resolved (${why})`)
    const r = sameLayout ? columnOf(rightRel, name, 'snowflake') : undefined
    if (r !== undefined) return merge([l, r], l.direct && r.direct)
    return { ...merge([l, rightAll]), unresolved: l.unresolved ?? `${name}: the right branch of a ${why} may hold any of its columns there` }
  }
  return [{ kind: 'star', rels: [{ alias: '', open, unresolved: why }], except: new Set(), unresolved: why }]
}

/** A branch's column layout: equal layouts put the same columns at the same positions. */
function layoutOf (items: Item[]): string {
  return items.map((i) => (i.kind === 'col'
    ? `c:${i.name}:${[...i.lin.sources].sort().join(',')}`
    : `s:${i.rels.map((r) => r.table ?? (r.columns === undefined ? '?' : r.columns.map((c) => c.name).join('|'))).join('+')}:${[...i.except].sort().join(',')}`)).join(';')
}

/** ORDER BY of a set operation sees the output columns only. */
export function outputScope (items: Item[], parent: Scope, dialect: Dialect): Scope {
  const s = new Scope(dialect, parent)
  s.rels.push(itemsRel('', items, dialect))
  s.outputs = items
  return s
}

export function aliasColumns (alias: Json, dialect: Dialect): string[] {
  return (Array.isArray(alias.columns) ? alias.columns : []).map((c) => identName(isObj(c) && 'name' in c ? c.name : c, dialect) ?? '')
}

export function rename (items: Item[], names: string[]): Item[] {
  if (names.length === 0) return items
  return items.map((item, i) => (item.kind === 'col' && names[i] !== undefined ? { ...item, name: names[i] as string } : item))
}

export function renameRel (rel: Rel, names: string[]): Rel {
  if (names.length === 0 || rel.columns === undefined) return rel
  return { ...rel, columns: rel.columns.map((c, i) => ({ name: names[i] ?? c.name, lin: c.lin })) }
}

/** The name a database gives an unaliased output column, as far as it matters here. */
export function exprName (e: unknown, dialect: Dialect): string {
  const v = variant(e)
  if (v?.[0] === 'Identifier') return identName(v[1], dialect) ?? ''
  if (v?.[0] === 'CompoundIdentifier' && Array.isArray(v[1])) return identName(v[1][v[1].length - 1], dialect) ?? ''
  if (v?.[0] === 'Cast' && isObj(v[1])) return exprName(v[1].expr, dialect)
  return ''
}

/** Postgres `FROM ONLY t` reads as table ONLY aliased t in sqlparser 0.62 (see tables.ts). */
export function onlyTable (t: Json, dialect: Dialect): string[] | undefined {
  if (dialect !== 'postgres' || !Array.isArray(t.name) || t.name.length !== 1) return undefined
  const head = t.name[0]
  const ident = isObj(head) && isObj(head.Identifier) ? head.Identifier : undefined
  if (ident === undefined || ident.quote_style != null || String(ident.value).toLowerCase() !== 'only') return undefined
  const alias = isObj(t.alias) && t.alias.explicit !== true ? identName(t.alias.name, dialect) : undefined
  return alias === undefined ? undefined : [alias]
}
