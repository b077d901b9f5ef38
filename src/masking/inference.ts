// Inference resistance: a statement may not filter, join, sort, group or window on a column its
// principal sees masked — `WHERE ssn LIKE '123%'` or `ORDER BY salary` would reveal, row by row,
// what the mask hides. Nor may it copy masked values elsewhere (INSERT … SELECT, CTAS, UPDATE
// SET), which would take them out from under the rule. A rule may allow some uses
// (`allowEquality` on a deterministic token: joins and GROUP BY on tokens reveal nothing more).
import type { CompiledMaskingRule } from '../policy/model.js'
import type { ColumnUse } from '../sql/lineage.js'
import { nestedRules, ruleFor } from './rules.js'

export interface InferenceViolation {
  rule: string
  column: string
  /** A sentence an agent can act on. */
  reason: string
}

const CLAUSE: Record<ColumnUse['clause'], string> = {
  where: 'WHERE', join: 'JOIN', having: 'HAVING', qualify: 'QUALIFY', group: 'GROUP BY', order: 'ORDER BY',
  window: 'a window (OVER)', aggregate: 'an aggregate ORDER BY / FILTER', distinct: 'DISTINCT ON', write: 'a write'
}

const USAGE: Record<ColumnUse['usage'], (column: string) => string> = {
  equality: (c) => `compares ${c} for equality`,
  range: (c) => `compares ${c} as a range`,
  pattern: (c) => `matches ${c} against a pattern`,
  grouping: (c) => `groups or partitions by ${c}`,
  ordering: (c) => `sorts by ${c}`,
  expression: (c) => `computes with ${c}`,
  copy: (c) => `copies the values of ${c} into a table`
}

/**
 * The first use of a masked column the rule does not allow, or undefined. `guarded` is the rule
 * guarding a table the statement reads, used when a column in a clause could not be resolved.
 */
export function inferenceViolation (
  uses: readonly ColumnUse[],
  rules: readonly CompiledMaskingRule[],
  guarded?: CompiledMaskingRule
): InferenceViolation | undefined {
  for (const use of uses) {
    const where = CLAUSE[use.clause]
    if (use.column === '?') {
      if (guarded === undefined) continue
      return {
        rule: guarded.id,
        column: '?',
        reason: `a column in ${where} could not be resolved (${use.unresolved ?? 'unknown'}) and the statement reads masked data; qualify the column with its table`
      }
    }
    const rule = ruleFor(use.column, rules) ?? nestedRules(use.column, rules)[0]?.rule
    if (rule === undefined) continue
    if (use.usage !== 'copy' && rule.allowInference.has(use.usage)) continue
    const allowed = [...rule.allowInference]
    return {
      rule: rule.id,
      column: use.column,
      reason: `${where} ${USAGE[use.usage](use.column)}, which is masked for you` +
        (allowed.length > 0 ? ` (the rule allows only: ${allowed.join(', ')})` : '') +
        '; select the column without filtering, joining, sorting or grouping on it, or ask for a role the rule exempts'
    }
  }
  return undefined
}
