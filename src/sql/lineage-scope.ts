// The data model of column lineage: what an expression's value is made of (`Lin`), the relations
// a FROM clause makes visible (`Rel`) and how names resolve against them (`Scope`).
//
// Lineage is an over-approximation on purpose: when a name could come from several places, all
// of them are kept, so masking decided from it can only be stricter than the truth, never looser.
import type { Dialect } from './types.js'

/** Lineage of one value: the source columns it carries, and whether it *is* a source value. */
export interface Lin {
  /** Qualified column paths (`db.schema.table.column[.field…]`); `db.schema.table.*` = whole row. */
  sources: Set<string>
  /** True when the value is a source value unchanged (bare reference, field path, cast). */
  direct: boolean
  /** Why this lineage is a guess; set when a name could not be resolved exactly. */
  unresolved?: string
  /**
   * Set when the value is built from several values that stay apart inside it (an OBJECT, a
   * STRUCT, an array, JSON text of either): where each one sits, so each can be masked by its
   * own rule. `sources` still holds every source of every part.
   */
  shape?: Shape
}

/** Where the parts of a structured value sit. */
export type Shape =
  /** Keys (matched case-insensitively) or, `byPosition`, field order (BigQuery STRUCT, ROW). */
  | { kind: 'object', fields: ReadonlyArray<{ key: string, lin: Lin }>, byPosition?: boolean, open?: (key: string) => Lin | undefined }
  /** Elements by position (ARRAY_CONSTRUCT(a, b), [a, b]). */
  | { kind: 'list', elements: readonly Lin[] }
  /** Every element alike (ARRAY_AGG(x)). */
  | { kind: 'each', element: Lin }

/** A structured value: its sources are the union of its parts', and it is never `direct`. */
export function shaped (shape: Shape, parts: Lin[]): Lin {
  const out = merge(parts)
  out.shape = shape
  return out
}

/** The part of a structured value a key names, when the shape knows it. */
export function fieldOf (shape: Shape, key: string): Lin | undefined {
  if (shape.kind === 'object') {
    const lower = key.toLowerCase()
    return shape.fields.find((f) => f.key.toLowerCase() === lower)?.lin ?? shape.open?.(key)
  }
  if (shape.kind === 'each') return /^\d+$/.test(key) ? shape.element : undefined
  return /^\d+$/.test(key) ? shape.elements[Number(key)] : undefined
}

export function lin (sources: Iterable<string> = [], direct = false, unresolved?: string): Lin {
  const out: Lin = { sources: new Set(sources), direct }
  if (unresolved !== undefined) out.unresolved = unresolved
  return out
}

/** Merges lineages: a value built from several inputs is never `direct`. */
export function merge (parts: Lin[], direct = false): Lin {
  const out = lin([], direct)
  for (const p of parts) {
    for (const s of p.sources) out.sources.add(s)
    if (p.unresolved !== undefined) out.unresolved ??= p.unresolved
  }
  return out
}

/**
 * `t.address` + [ssn] → `t.address.ssn`; whole-row sources stay whole rows. A path into a
 * structured value (`OBJECT_CONSTRUCT('e', email):e`) is the part it names.
 */
export function withPath (l: Lin, path: string[]): Lin {
  if (path.length === 0) return l
  if (l.shape !== undefined) {
    const part = fieldOf(l.shape, path[0] as string)
    if (part !== undefined) return withPath(part, path.slice(1))
  }
  const suffix = path.join('.')
  const out = lin([], l.direct, l.unresolved)
  for (const s of l.sources) out.sources.add(s.endsWith('.*') ? s : `${s}.${suffix}`)
  return out
}

/** One projected column of a query, or a star whose width is not known yet. */
export type Item =
  | { kind: 'col', name: string, lin: Lin }
  | { kind: 'star', rels: Rel[], except: Set<string>, unresolved: string }

/** A relation visible in a FROM clause. */
export interface Rel {
  /** The name it is referenced by: its alias, or the last part of its table name. */
  alias: string
  /** Qualified table name, for base tables. */
  table?: string
  /** Known columns, in order; absent when the relation's width is unknown. */
  columns?: Array<{ name: string, lin: Lin }>
  /** Resolves a name the relation may have when `columns` is absent (unknown schema). */
  open?: (name: string) => Lin
  /** Why the relation's columns cannot be listed (star expansion impossible). */
  unresolved?: string
  /** The relation is one value (UNNEST element, FLATTEN input): `alias.field` is a field path. */
  value?: Lin
}

/** Lineage of the whole row of a relation, as one unstructured value (what it may carry). */
export function wholeRow (rel: Rel): Lin {
  if (rel.value !== undefined) return merge([rel.value])
  if (rel.columns !== undefined && rel.unresolved === undefined) return merge(rel.columns.map((c) => c.lin))
  const parts = (rel.columns ?? []).map((c) => c.lin)
  if (rel.table !== undefined) parts.push(lin([`${rel.table}.*`]))
  return merge(parts)
}

/**
 * The rows of relations as one structured value keyed by column name (`TO_JSON_STRING(t)`,
 * `OBJECT_CONSTRUCT(*)`, `row_to_json(t)`, BigQuery `SELECT t`): each key carries its own
 * column's lineage; for relations of unknown width a key is resolved by name when met.
 */
export function rowValue (rels: readonly Rel[], dialect: Dialect): Lin {
  if (rels.length === 1 && rels[0]?.value !== undefined) return rels[0].value
  const fields = rels.flatMap((r) => r.columns ?? [])
  const open = rels.some((r) => r.columns === undefined || r.unresolved !== undefined)
    ? (key: string): Lin | undefined => {
        const parts = rels.map((r) => columnOf(r, key, dialect)).filter((l): l is Lin => l !== undefined)
        return parts.length === 0 ? undefined : merge(parts, parts.every((p) => p.direct))
      }
    : undefined
  const shape: Shape = { kind: 'object', fields: fields.map((c) => ({ key: c.name, lin: c.lin })), ...(open !== undefined && { open }) }
  return shaped(shape, rels.map(wholeRow))
}

/** Lineage of `name` in `rel`, or undefined when the relation surely has no such column. */
export function columnOf (rel: Rel, name: string, dialect: Dialect): Lin | undefined {
  const found = rel.columns?.find((c) => sameName(c.name, name, dialect))
  if (found !== undefined) return found.lin
  if (rel.value !== undefined) return undefined
  return rel.open?.(name)
}

/** Column names compare case-insensitively except where both sides were quoted differently. */
export function sameName (a: string, b: string, _dialect: Dialect): boolean {
  return a === b || a.toLowerCase() === b.toLowerCase()
}

export class Scope {
  readonly rels: Rel[] = []
  /** Output aliases of the SELECT this scope belongs to (ORDER BY / GROUP BY / HAVING may use them). */
  outputs: Item[] = []

  constructor (readonly dialect: Dialect, readonly parent?: Scope) {}

  /** The relation a qualifier names: its alias, or a suffix of its qualified table name. */
  relNamed (parts: string[]): Rel | undefined {
    const joined = parts.join('.').toLowerCase()
    for (const rel of this.rels) {
      if (parts.length === 1 && rel.alias.toLowerCase() === joined) return rel
    }
    for (const rel of this.rels) {
      const t = rel.table?.toLowerCase()
      if (t !== undefined && (t === joined || t.endsWith(`.${joined}`))) return rel
    }
    return undefined
  }

  /**
   * An unqualified column name. Relations that surely have it win; relations of unknown width
   * are candidates only when none does. Several candidates are all kept (over-approximation).
   */
  column (name: string): Lin | undefined {
    return this.columnSure(name)?.lin
  }

  /** Like `column`, and says whether a relation surely has the name (not only maybe). */
  columnSure (name: string): { lin: Lin, sure: boolean } | undefined {
    const sure: Lin[] = []
    const maybe: Lin[] = []
    for (const rel of this.rels) {
      const known = rel.columns?.find((c) => sameName(c.name, name, this.dialect))
      if (known !== undefined) sure.push(known.lin)
      else if (rel.open !== undefined && rel.value === undefined) maybe.push(rel.open(name))
    }
    if (sure.length === 1) return { lin: sure[0] as Lin, sure: true }
    if (sure.length > 1) return { lin: merge(sure, true), sure: true }
    if (maybe.length === 1) return { lin: maybe[0] as Lin, sure: false }
    if (maybe.length > 1) return { lin: merge(maybe, true), sure: false }
    return undefined
  }

  /** True when a relation surely has a column of this name. */
  hasKnown (name: string): boolean {
    return this.rels.some((rel) => rel.columns?.some((c) => sameName(c.name, name, this.dialect)) === true)
  }

  /** An output alias of this SELECT. */
  output (name: string): Lin | undefined {
    for (const item of this.outputs) {
      if (item.kind === 'col' && item.name !== '' && sameName(item.name, name, this.dialect)) return item.lin
    }
    return undefined
  }
}
