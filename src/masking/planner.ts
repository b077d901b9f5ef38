// The mask planner: (lineage, rules in force, result schema) → which output column is masked, by
// which rule and function, and why. Fail closed: a column whose lineage is a guess, on a
// statement that reads a table with masking rules, is masked (or the statement denied).
import type { ColumnMeta, MaskedColumn, ResultSchema } from '../pipeline/types.js'
import type { CompiledMaskingRule, MaskFunctionName, MaskingRuleSpec } from '../policy/model.js'
import { outputColumns, type OutputColumn, type StatementLineage } from '../sql/lineage.js'
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

export interface PlannedColumn extends MaskedColumn {
  function: MaskFunctionName
  spec: MaskingRuleSpec
}

export interface ColumnPlan {
  columns: PlannedColumn[]
  /** Set when `unresolved: deny` and a column could not be traced. */
  deny?: { rule: string, reason: string }
  /** Output columns no rule covers: where the value detectors look. */
  uncovered: number[]
}

/** The function used when lineage fails closed: nothing of the value survives. */
const FAIL_CLOSED: MaskFunctionName = 'redact'

/** A rule guarding a table the statement reads: the statement touches masked data. */
export function guardRule (tables: readonly string[], rules: readonly CompiledMaskingRule[]): { rule: CompiledMaskingRule, table: string } | undefined {
  for (const table of tables) {
    const rule = ruleForTable(table, rules)
    if (rule !== undefined) return { rule, table }
  }
  return undefined
}

function sourcesOf (col: OutputColumn, meta: ColumnMeta | undefined): string[] {
  const out = [...col.sources]
  // What the warehouse says (Snowflake rowtype database/schema/table) only ever adds candidates.
  if (meta?.source !== undefined && meta.source.table !== '') out.push(`${meta.source.table}.${meta.source.column}`.toLowerCase())
  return out
}

export function planColumns (ctx: PlanContext): ColumnPlan {
  const { schema, rules } = ctx
  const exempted = ctx.exempted ?? []
  const names = schema.columns.map((c) => c.name)
  const cols: OutputColumn[] = ctx.lineage === undefined
    ? names.map((name) => ({ name, sources: [], direct: false, unresolved: ctx.why ?? 'the statement was not traced' }))
    : outputColumns(ctx.lineage, names)
  const reads = ctx.reads ?? 'tables'
  const first = rules[0]
  const guard = reads === 'metadata' || first === undefined
    ? undefined
    : reads === 'opaque' ? { rule: first, table: 'tables it cannot name (the statement is not analysable)' } : guardRule(ctx.tablesRead, rules)
  const plan: ColumnPlan = { columns: [], uncovered: [] }
  const order = new Map(rules.map((r, i) => [r, i]))
  const earlier = (a: CompiledMaskingRule, b: CompiledMaskingRule | undefined): boolean => b === undefined || (order.get(a) ?? 0) < (order.get(b) ?? 0)

  cols.forEach((col, index) => {
    const meta = schema.columns[index]
    const sources = sourcesOf(col, meta)
    let whole: CompiledMaskingRule | undefined
    let why = ''
    for (const s of sources) {
      const r = ruleFor(s, rules)
      if (r !== undefined && earlier(r, whole)) { whole = r; why = `derived from ${s}` }
    }
    const nested: Array<{ rule: CompiledMaskingRule, path: string[], source: string }> = []
    if (whole === undefined) {
      for (const s of sources) {
        for (const n of nestedRules(s, rules)) {
          // Only a value returned as it is keeps its fields apart; anything computed from it
          // (TO_JSON_STRING(address), CONCAT) is masked whole. Wildcard depths too.
          if (!col.direct || n.path.includes('**')) {
            if (earlier(n.rule, whole)) { whole = n.rule; why = `computed from ${s}, which holds ${s}.${n.path.join('.')}` }
          } else {
            nested.push({ ...n, source: s })
          }
        }
      }
    }
    if (whole === undefined && nested.length === 0 && col.unresolved !== undefined && guard !== undefined) {
      const reason = `lineage unresolved (${col.unresolved}) on a statement reading ${guard.table}, which has masking rules`
      if (ctx.unresolved === 'deny') {
        plan.deny ??= { rule: guard.rule.id, reason: `result column ${meta?.name ?? index}: ${reason}` }
      }
      plan.columns.push({ index, rule: guard.rule.id, function: FAIL_CLOSED, spec: guard.rule.spec, reason: `fail closed: ${reason}` })
      return
    }
    if (whole !== undefined) {
      plan.columns.push({ index, rule: whole.id, function: whole.spec.function, spec: whole.spec, reason: why })
      return
    }
    for (const n of nested) {
      plan.columns.push({ index, rule: n.rule.id, function: n.rule.spec.function, spec: n.rule.spec, path: n.path, reason: `holds ${n.source}.${n.path.join('.')}` })
    }
    const shownByExemption = exempted.length > 0 && sources.some((src) => ruleFor(src, exempted) !== undefined)
    if (nested.length === 0 && !shownByExemption) plan.uncovered.push(index)
  })
  return plan
}
