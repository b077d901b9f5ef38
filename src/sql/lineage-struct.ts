// Lineage of values that hold several values apart: OBJECT / STRUCT / ROW constructors, arrays,
// array aggregates, whole rows, and the functions that only serialise such a value (TO_JSON,
// TO_JSON_STRING, TO_VARIANT …). Their lineage keeps a `shape` — which part carries which
// columns — so the masker can mask each part by its own rule and the value stays a valid
// OBJECT / STRUCT / JSON text. Anything not listed here computes a new value: plain lineage,
// never direct, so only keep-nothing masks apply to it.
//
// Also: functions whose result *is* one of their arguments (MIN, MAX, COALESCE, LAG …), which
// keep the argument direct, so a format-keeping mask still fits it.
import { exprLin, identName, isObj, stringLiteral, variant, type Tracer } from './lineage-expr.js'
import { exprName } from './lineage-rels.js'
import { lin, merge, rowValue, shaped, type Lin, type Scope, type Shape } from './lineage-scope.js'

type Json = Record<string, unknown>

/** Key/value-pair builders: `f('k1', v1, 'k2', v2, …)`. */
const OBJECT_BUILDERS = new Set([
  'object_construct', 'object_construct_keep_null', 'json_build_object', 'jsonb_build_object', 'json_object'
])

/** Positional array builders. */
const ARRAY_BUILDERS = new Set(['array_construct', 'json_build_array', 'jsonb_build_array', 'json_array'])

/** Arrays whose element positions are not the arguments' (nulls dropped, order not kept). */
const ARRAY_BAGS = new Set(['array_construct_compact'])

/** Aggregates whose every element is one argument value. */
const ARRAY_AGGREGATES = new Set(['array_agg', 'arrayagg', 'array_unique_agg', 'json_agg', 'jsonb_agg'])

/** Aggregates building an object of key → value pairs from two arguments. */
const OBJECT_AGGREGATES = new Set(['object_agg', 'json_object_agg', 'jsonb_object_agg'])

/** Same structure, other representation (OBJECT ↔ VARIANT ↔ JSON text). */
const SERIALIZERS = new Set([
  'to_json', 'to_json_string', 'to_jsonb', 'to_variant', 'to_object', 'to_array', 'row_to_json', 'array_to_json',
  'parse_json', 'try_parse_json', 'safe.parse_json', 'json', 'json_parse'
])

/** Functions whose result is one of their arguments unchanged (or NULL). */
const PICKERS = new Set([
  'min', 'max', 'any_value', 'arbitrary', 'first_value', 'last_value', 'nth_value', 'lag', 'lead',
  'coalesce', 'nvl', 'ifnull', 'greatest', 'least', 'mode'
])

/** Row constructors: a record with fields f1, f2, … (Postgres ROW(a, b), `(a, b)`). */
const ROW_BUILDERS = new Set(['row'])

/** The expression inside a function argument (`Unnamed(Expr(e))`, named forms). */
export function argExpr (arg: unknown): unknown {
  const v = variant(arg)
  if (v === undefined) return arg
  const [k, body] = v
  if ((k === 'Named' || k === 'ExprNamed') && isObj(body)) return argExpr(body.arg)
  if (k === 'Unnamed') {
    const inner = variant(body)
    return inner !== undefined && inner[0] === 'Expr' ? inner[1] : body
  }
  if (k === 'Expr') return body
  return arg
}

/** `*` or `t.*` as the only argument: the relations it names, whole. */
function starArg (args: unknown[], scope: Scope, t: Tracer): Lin | undefined {
  if (args.length !== 1) return undefined
  const e = argExpr(args[0])
  if (e === 'Wildcard') return rowValue(scope.rels, t.dialect)
  const q = variant(e)
  if (q?.[0] !== 'QualifiedWildcard') return undefined
  const body = q[1]
  const head = Array.isArray(body) ? body[0] : body
  const name = isObj(head) && Array.isArray(head.ObjectName) ? head.ObjectName : Array.isArray(head) ? head : undefined
  const parts = (name ?? []).map((p: unknown) => identName(isObj(p) && isObj(p.Identifier) ? p.Identifier : p, t.dialect))
  if (parts.length === 0 || parts.some((p: string | undefined) => p === undefined)) return undefined
  const rel = scope.relNamed(parts as string[])
  return rel === undefined ? undefined : rowValue([rel], t.dialect)
}

function positional (keys: string[], lins: Lin[]): Lin {
  return shaped({ kind: 'object', byPosition: true, fields: lins.map((l, i) => ({ key: keys[i] ?? `f${i + 1}`, lin: l })) }, lins)
}

/**
 * Lineage of a function call when the function builds, serialises or picks values; undefined
 * for every other function (the caller merges its arguments).
 */
export function functionValueLin (name: string | undefined, args: unknown[], argLins: Lin[], scope: Scope, t: Tracer): Lin | undefined {
  if (name === undefined) return undefined
  if (OBJECT_BUILDERS.has(name)) {
    const whole = starArg(args, scope, t)
    if (whole !== undefined) return whole
    if (args.length % 2 !== 0) return undefined
    const fields: Array<{ key: string, lin: Lin }> = []
    for (let i = 0; i < args.length; i += 2) {
      const key = stringLiteral(argExpr(args[i]))
      // A computed key: which part is which cannot be known; the value is masked whole.
      if (key === undefined) return undefined
      fields.push({ key, lin: argLins[i + 1] ?? lin() })
    }
    return shaped({ kind: 'object', fields }, argLins)
  }
  if (ARRAY_BUILDERS.has(name)) return shaped({ kind: 'list', elements: argLins }, argLins)
  if (ARRAY_BAGS.has(name)) return shaped({ kind: 'each', element: merge(argLins, directParts(argLins)) }, argLins)
  if (ARRAY_AGGREGATES.has(name) && argLins.length === 1) {
    const element = starArg(args, scope, t) ?? argLins[0] as Lin
    return shaped({ kind: 'each', element }, [element])
  }
  if (OBJECT_AGGREGATES.has(name) && argLins.length === 2) {
    const value = argLins[1] as Lin
    // Keys are data (argument 1); every key carries the value argument.
    return shaped({ kind: 'object', fields: [], open: () => value }, argLins)
  }
  if (ROW_BUILDERS.has(name)) return positional([], argLins)
  if (SERIALIZERS.has(name) && argLins.length >= 1) {
    const whole = starArg(args.slice(0, 1), scope, t)
    if (whole !== undefined) return whole
    const first = argLins[0] as Lin
    if (first.shape !== undefined) return shaped(first.shape, argLins)
    return undefined
  }
  if (PICKERS.has(name) && argLins.length >= 1) return merge(argLins, directParts(argLins))
  return undefined
}

/** Direct when every part that carries a source is a source value unchanged (literals carry none). */
function directParts (parts: Lin[]): boolean {
  const carrying = parts.filter((p) => p.sources.size > 0 || p.unresolved !== undefined)
  return carrying.length > 0 && carrying.every((p) => p.direct)
}

/** Lineage of the AST's own constructor nodes (STRUCT, arrays, tuples, Snowflake `{…}`). */
export function constructorLin (kind: string, body: unknown, scope: Scope, t: Tracer): Lin | undefined {
  switch (kind) {
    case 'Struct': {
      if (!isObj(body)) return undefined
      const values = Array.isArray(body.values) ? body.values : []
      const declared = Array.isArray(body.fields) ? body.fields : []
      const keys: string[] = []
      const lins = values.map((v: unknown, i: number) => {
        const named = variant(v)
        if (named?.[0] === 'Named' && isObj(named[1])) {
          keys.push(identName(named[1].name, t.dialect) ?? '')
          return exprLin(named[1].expr, scope, t)
        }
        const field = declared[i]
        keys.push((isObj(field) ? identName(field.field_name, t.dialect) : undefined) ?? exprName(v, t.dialect))
        return exprLin(v, scope, t)
      })
      return positional(keys, lins)
    }
    case 'Array': {
      const elems = isObj(body) && Array.isArray(body.elem) ? body.elem : []
      const lins = elems.map((e: unknown) => exprLin(e, scope, t))
      return shaped({ kind: 'list', elements: lins }, lins)
    }
    case 'Tuple': {
      const lins = (Array.isArray(body) ? body : []).map((e: unknown) => exprLin(e, scope, t))
      return positional(t.dialect === 'bigquery' ? lins.map(() => '') : [], lins)
    }
    case 'Dictionary': {
      const entries = Array.isArray(body) ? body : []
      const fields = entries.map((e: unknown) => {
        const entry = isObj(e) ? e : {}
        const key = isObj(entry.key) && typeof entry.key.value === 'string' ? entry.key.value : ''
        return { key, lin: exprLin(entry.value, scope, t) }
      })
      return shaped({ kind: 'object', fields }, fields.map((f: { lin: Lin }) => f.lin))
    }
  }
  return undefined
}

/** Casts that leave a value as it is (text to unbounded text, to VARIANT / JSON, dates to dates). */
export function castKeepsValue (dataType: unknown): boolean {
  const [name, params] = typeof dataType === 'string'
    ? [dataType, undefined]
    : isObj(dataType) && Object.keys(dataType).length === 1
      ? [Object.keys(dataType)[0] as string, (dataType as Json)[Object.keys(dataType)[0] as string]]
      : [undefined, undefined]
  if (name === undefined) return false
  let type = name.toLowerCase()
  // TIMESTAMP carries [precision, time zone]: only a precision bounds it.
  let bounded = Array.isArray(params) ? params[0] !== undefined && params[0] !== null : params !== undefined && params !== null
  if (type === 'custom' && Array.isArray(params)) {
    const parts = Array.isArray(params[0]) ? params[0] : []
    const last = parts[parts.length - 1]
    const ident = isObj(last) && isObj(last.Identifier) ? last.Identifier : last
    type = isObj(ident) && typeof ident.value === 'string' ? ident.value.toLowerCase() : ''
    bounded = Array.isArray(params[1]) && params[1].length > 0
  }
  // A length (VARCHAR(3)), CHAR (one character in Postgres) or a byte type changes what is shown.
  if (bounded || KEEP_NOT.has(type)) return false
  return KEEPS.has(type)
}

const KEEPS = new Set([
  'varchar', 'string', 'text', 'charactervarying', 'nvarchar', 'variant', 'json', 'jsonb', 'object', 'array',
  'date', 'datetime', 'timestamp', 'timestampntz', 'timestampltz', 'timestamptz', 'timestamp_ntz', 'timestamp_ltz', 'timestamp_tz',
  'citext', 'name'
])
const KEEP_NOT = new Set(['char', 'character', 'bpchar', 'nchar', 'binary', 'varbinary', 'bytes', 'bytea'])

export type { Shape }
