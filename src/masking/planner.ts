// The mask planner: (lineage, rules in force, result schema) → which output column is masked, by
// which rule and function, and why. Fail closed: a column whose lineage is a guess, on a
// statement that reads a table with masking rules, is masked (or the statement denied).
//
// Two rules keep format-keeping masks honest:
// - a mask that keeps part of a value (email, partial, last4, first4, year) applies only where the
//   output *is* the source value; anything computed from it gets a keep-nothing mask (the rule's
//   `derived` setting, redact by default), since a rearranged value would show the hidden part;
// - a structured value (OBJECT, STRUCT, array, JSON text of a row) is masked part by part, each
//   part by its own rule, so it stays valid and no mask ever runs over a serialised blob.
import type { ColumnMeta, MaskedColumn, ResultSchema } from '../pipeline/types.js'
import type { CompiledMaskingRule, MaskFunctionName, MaskingRuleSpec } from '../policy/model.js'
import { outputColumns, type OutputColumn, type Shape, type StatementLineage } from '../sql/lineage.js'
import { nestedRules, ruleFor, ruleForTable } from './rules.js'

export interface PlanContext {
  /** Lineage of the statement that produced the result; undefined when it could not be traced. */
  lineage: StatementLineage | undefined
  /** Tables the statement reads (analysis), to know whether it touches masked data at all. */
  tablesRead: readonly string[]
  /** Rules in force for this principal and connection (exempt ones already removed). */
  rules: readonly CompiledMaskingRule[]
  /** Rules the principal is exempt from: their columns are shown in clear, detectors included. */
  exempted?: readonly CompiledMaskingRule[]
  schema: ResultSchema
  unresolved: 'mask' | 'deny'
  /** Why lineage is missing, when it is. */
  why?: string
  /**
   * `opaque`: the statement may read any table (unparsed, CALL, scripts): every rule guards it.
   * `metadata`: it returns no table values (SHOW, DESCRIBE, EXPLAIN): lineage cannot fail there.
   */
  reads?: 'tables' | 'opaque' | 'metadata'
}

/** A mask of one whole value. */
export interface PartMask {
  rule: string
  function: MaskFunctionName
  spec: MaskingRuleSpec
  reason: string
}

/** How one value (a column, or a part of a structured one) is masked. */
export interface PartPlan {
  mask?: PartMask
  /** Masks of fields inside a value returned as it is (a rule on `….address.ssn`). */
  nested?: Array<PartMask & { path: string[] }>
  /** The value's structure: each part is planned on its own. */
  shape?: ShapePlan
  /** Value detectors look at this value; `skip` lists paths inside it an exemption shows in clear. */
  scan?: { skip: string[][] }
}

export type ShapePlan =
  | { kind: 'object', fields: ReadonlyArray<{ key: string, plan: PartPlan }>, byPosition: boolean, open?: (key: string) => PartPlan, rest: PartPlan }
  | { kind: 'list', elements: readonly PartPlan[], rest: PartPlan }
  | { kind: 'each', element: PartPlan }

export interface PlannedColumn extends MaskedColumn {
  function: MaskFunctionName
  spec: MaskingRuleSpec
  /** A structured value masked part by part: the entry is for the event; `structured` holds the plan. */
  structured?: true
}

export interface ColumnPlan {
  columns: PlannedColumn[]
  /** Set when `unresolved: deny` and a column could not be traced. */
  deny?: { rule: string, reason: string }
  /** Output columns no rule covers: where the value detectors look. */
  uncovered: number[]
  /** Paths inside uncovered columns that exemptions show in clear (detectors skip them). */
  skip: Map<number, string[][]>
  /** Structured values (OBJECT, STRUCT, arrays, row JSON), masked and scanned part by part. */
  structured: Map<number, PartPlan>
}

/** The function used when lineage fails closed: nothing of the value survives. */
const FAIL_CLOSED: MaskFunctionName = 'redact'

/** Masks that show part of the value they mask. */
const FORMAT_KEEPING: ReadonlySet<MaskFunctionName> = new Set(['email', 'partial', 'last4', 'first4', 'year'])

const DERIVED_FUNCTION: Record<NonNullable<MaskingRuleSpec['derived']>, MaskFunctionName> = {
  redact: 'redact', hash: 'sha256', nullify: 'nullify'
}

/** A rule guarding a table the statement reads: the statement touches masked data. */
export function guardRule (tables: readonly string[], rules: readonly CompiledMaskingRule[]): { rule: CompiledMaskingRule, table: string } | undefined {
  for (const table of tables) {
    const rule = ruleForTable(table, rules)
    if (rule !== undefined) return { rule, table }
  }
  return undefined
}

/** One value's lineage as the planner reads it. */
interface Value { sources: readonly string[], direct: boolean, unresolved?: string, shape?: Shape }

interface Planner {
  rules: readonly CompiledMaskingRule[]
  exempted: readonly CompiledMaskingRule[]
  guard: { rule: CompiledMaskingRule, table: string } | undefined
  earlier: (a: CompiledMaskingRule, b: CompiledMaskingRule | undefined) => boolean
  /** Untraceable values seen (for `unresolved: deny`). */
  failed: string[]
}

/** The mask of a value computed from a masked source (or several masked sources). */
function derivedMask (rule: CompiledMaskingRule, why: string): PartMask {
  const own = rule.spec.function
  if (!FORMAT_KEEPING.has(own)) return { rule: rule.id, function: own, spec: rule.spec, reason: why }
  const fn = DERIVED_FUNCTION[rule.spec.derived ?? 'redact']
  return { rule: rule.id, function: fn, spec: rule.spec, reason: `${why}; it is not the value itself, so ${own} (which keeps part of it) does not apply: ${fn === 'sha256' ? 'hashed' : fn === 'nullify' ? 'nulled' : 'redacted'}` }
}

function planValue (v: Value, p: Planner): PartPlan {
  if (v.shape !== undefined) return { shape: planShape(v.shape, v, p) }
  const matched = new Set<CompiledMaskingRule>()
  let whole: CompiledMaskingRule | undefined
  let from = ''
  for (const s of v.sources) {
    const r = ruleFor(s, p.rules)
    if (r === undefined) continue
    matched.add(r)
    if (p.earlier(r, whole)) { whole = r; from = s }
  }
  if (whole !== undefined) {
    // One source value, one rule: the rule's own mask. Several rules could each be the one
    // that fits the value at hand: only a keep-nothing mask fits them all.
    if (v.direct && matched.size === 1) return { mask: { rule: whole.id, function: whole.spec.function, spec: whole.spec, reason: `derived from ${from}` } }
    const why = matched.size > 1 ? `one of ${matched.size} masked sources (${[...matched].map((r) => r.id).join(', ')})` : `computed from ${from}`
    return { mask: derivedMask(whole, why) }
  }
  const nested: Array<PartMask & { path: string[] }> = []
  for (const s of v.sources) {
    for (const n of nestedRules(s, p.rules)) {
      // Only a value returned as it is keeps its fields apart; anything computed from it
      // (TO_JSON_STRING(address), CONCAT) is masked whole. Wildcard depths too.
      if (!v.direct || n.path.includes('**')) {
        if (p.earlier(n.rule, whole)) { whole = n.rule; from = `${s}, which holds ${s}.${n.path.join('.')}` }
      } else {
        nested.push({ rule: n.rule.id, function: n.rule.spec.function, spec: n.rule.spec, path: n.path, reason: `holds ${s}.${n.path.join('.')}` })
      }
    }
  }
  if (whole !== undefined) return { mask: derivedMask(whole, `computed from ${from}`) }
  if (nested.length === 0 && v.unresolved !== undefined && p.guard !== undefined) {
    const reason = `lineage unresolved (${v.unresolved}) on a statement reading ${p.guard.table}, which has masking rules`
    p.failed.push(reason)
    return { mask: { rule: p.guard.rule.id, function: FAIL_CLOSED, spec: p.guard.rule.spec, reason: `fail closed: ${reason}` } }
  }
  if (nested.length > 0) return { nested }
  const exempt = p.exempted.length > 0 && v.sources.some((src) => ruleFor(src, p.exempted) !== undefined)
  if (exempt) return {}
  const skip = p.exempted.length === 0 ? [] : v.sources.flatMap((src) => nestedRules(src, p.exempted).map((n) => n.path))
  return { scan: { skip } }
}

function planShape (shape: Shape, whole: Value, p: Planner): ShapePlan {
  // A part the shape does not foresee (an extra key, a longer array) could be anything the
  // value carries: it is planned as computed from all of it.
  const rest = (): PartPlan => planValue({ sources: whole.sources, direct: false, ...(whole.unresolved !== undefined && { unresolved: whole.unresolved }) }, p)
  const value = (l: { sources: Set<string>, direct: boolean, unresolved?: string, shape?: Shape }): Value => ({ sources: [...l.sources], direct: l.direct, ...(l.unresolved !== undefined && { unresolved: l.unresolved }), ...(l.shape !== undefined && { shape: l.shape }) })
  if (shape.kind === 'each') return { kind: 'each', element: planValue(value(shape.element), p) }
  if (shape.kind === 'list') return { kind: 'list', elements: shape.elements.map((e) => planValue(value(e), p)), rest: rest() }
  const open = shape.open
  const opened = new Map<string, PartPlan>()
  return {
    kind: 'object',
    byPosition: shape.byPosition === true,
    fields: shape.fields.map((f) => ({ key: f.key, plan: planValue(value(f.lin), p) })),
    rest: rest(),
    ...(open !== undefined && {
      open: (key: string) => {
        const k = key.toLowerCase()
        let plan = opened.get(k)
        if (plan === undefined) {
          const l = open(key)
          plan = l === undefined ? rest() : planValue(value(l), p)
          // Keys are column names: bounded by the widest row, not by the data.
          if (opened.size < 10000) opened.set(k, plan)
        }
        return plan
      }
    })
  }
}

/** The first mask a structured plan applies, for the event's column entry. */
export function firstMask (plan: PartPlan): PartMask | undefined {
  if (plan.mask !== undefined) return plan.mask
  if (plan.nested?.[0] !== undefined) return plan.nested[0]
  const s = plan.shape
  if (s === undefined) return undefined
  const parts = s.kind === 'each' ? [s.element] : s.kind === 'list' ? [...s.elements, s.rest] : [...s.fields.map((f) => f.plan), s.rest]
  for (const part of parts) {
    const m = firstMask(part)
    if (m !== undefined) return m
  }
  return undefined
}

/** True when some part of a structured value may be masked (statically, or by key when met). */
export function masksSomething (plan: PartPlan): boolean {
  if (plan.mask !== undefined || (plan.nested?.length ?? 0) > 0) return true
  const s = plan.shape
  if (s === undefined) return false
  if (s.kind === 'each') return masksSomething(s.element)
  if (s.kind === 'list') return s.elements.some(masksSomething) || masksSomething(s.rest)
  return s.fields.some((f) => masksSomething(f.plan)) || s.open !== undefined || masksSomething(s.rest)
}

function sourcesOf (col: OutputColumn, meta: ColumnMeta | undefined): string[] {
  const out = [...col.sources]
  // What the warehouse says (Snowflake rowtype database/schema/table) only ever adds candidates.
  if (meta?.source !== undefined && meta.source.table !== '') out.push(`${meta.source.table}.${meta.source.column}`.toLowerCase())
  return out
}

export function planColumns (ctx: PlanContext): ColumnPlan {
  const { schema, rules } = ctx
  const names = schema.columns.map((c) => c.name)
  const cols: OutputColumn[] = ctx.lineage === undefined
    ? names.map((name) => ({ name, sources: [], direct: false, unresolved: ctx.why ?? 'the statement was not traced' }))
    : outputColumns(ctx.lineage, names)
  const opaque = ctx.lineage?.opaque
  const reads = opaque !== undefined && ctx.reads !== 'metadata' ? 'opaque' : ctx.reads ?? 'tables'
  const first = rules[0]
  const unseen = opaque !== undefined
    ? `table function ${opaque.map((f) => f.toUpperCase()).join(', ')} (Sluice cannot see which tables it reads)`
    : 'tables it cannot name (the statement is not analysable)'
  const order = new Map(rules.map((r, i) => [r, i]))
  const p: Planner = {
    rules,
    exempted: ctx.exempted ?? [],
    guard: reads === 'metadata' || first === undefined
      ? undefined
      : reads === 'opaque' ? guardRule(ctx.tablesRead, rules) ?? { rule: first, table: unseen } : guardRule(ctx.tablesRead, rules),
    earlier: (a, b) => b === undefined || (order.get(a) ?? 0) < (order.get(b) ?? 0),
    failed: []
  }
  const plan: ColumnPlan = { columns: [], uncovered: [], skip: new Map(), structured: new Map() }

  cols.forEach((col, index) => {
    const meta = schema.columns[index]
    const v: Value = { sources: sourcesOf(col, meta), direct: col.direct, ...(col.unresolved !== undefined && { unresolved: col.unresolved }), ...(col.shape !== undefined && { shape: col.shape }) }
    const before = p.failed.length
    const part = planValue(v, p)
    if (ctx.unresolved === 'deny' && p.failed.length > before && p.guard !== undefined) {
      plan.deny ??= { rule: p.guard.rule.id, reason: `result column ${meta?.name ?? index}: ${p.failed[before] as string}` }
    }
    if (part.shape !== undefined) {
      // Parts resolved by key when met (a row of a table without a catalogue) may be masked
      // whenever the statement reads masked data.
      const m = firstMask(part) ?? (p.guard !== undefined && masksSomething(part) ? { rule: p.guard.rule.id, function: FAIL_CLOSED, spec: p.guard.rule.spec } : undefined)
      if (m === undefined && p.exempted.length === 0) { plan.uncovered.push(index); return }
      plan.structured.set(index, part)
      if (m !== undefined) plan.columns.push({ index, rule: m.rule, function: m.function, spec: m.spec, reason: 'a structured value: each part is masked by its own rule', structured: true })
      return
    }
    if (part.mask !== undefined) {
      plan.columns.push({ index, rule: part.mask.rule, function: part.mask.function, spec: part.mask.spec, reason: part.mask.reason })
      return
    }
    for (const n of part.nested ?? []) {
      plan.columns.push({ index, rule: n.rule, function: n.function, spec: n.spec, path: n.path, reason: n.reason })
    }
    if (part.scan !== undefined) {
      plan.uncovered.push(index)
      if (part.scan.skip.length > 0) plan.skip.set(index, part.scan.skip)
    }
  })
  return plan
}
