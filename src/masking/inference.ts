// Inference resistance: a statement may not filter, join, sort, group or window on a column its
// principal sees masked — `WHERE ssn LIKE '123%'` or `ORDER BY salary` would reveal, row by row,
// what the mask hides. Nor may it copy masked values elsewhere (INSERT … SELECT, CTAS, UPDATE
// SET), which would take them out from under the rule. A rule may allow some uses
// (`allowEquality` on a deterministic token: joins and GROUP BY on tokens reveal nothing more).
import type { CompiledMaskingRule } from '../policy/model.js'
import type { ColumnUse } from '../sql/lineage.js'
import { nestedRules, ruleFor } from './rules.js'

const ROUTE_WORDS = /^(?:\s+|--[^\n]*\n|\/\*[\s\S]*?\*\/)*(EXPORT\s+DATA|COPY\s+INTO|COPY|UNLOAD|INSERT\s+(?:INTO|OVERWRITE)|INSERT|MERGE(?:\s+INTO)?|UPDATE|DELETE|CREATE(?:\s+OR\s+REPLACE)?(?:\s+(?:TEMP|TEMPORARY|TRANSIENT))?\s+TABLE|CREATE(?:\s+OR\s+REPLACE)?(?:\s+MATERIALIZED)?\s+VIEW|CALL|EXECUTE\s+IMMEDIATE|BEGIN|DECLARE)\b/i

/** What to do instead of moving masked data out of the warehouse (transfers say it too). */
export const READ_THROUGH_SLUICE = 'query the columns through Sluice instead (masked columns arrive masked)'

const ROUTE_ADVICE: Record<string, string> = {
  copy: `its output leaves the warehouse, where no mask applies; ${READ_THROUGH_SLUICE}, or ask for a role the rule exempts`,
  call: 'Sluice cannot see what a procedure or dynamic SQL reads; run the statements themselves, or ask for a role the rule exempts',
  scripting: 'run the block\'s statements one at a time so each can be checked, or ask for a role the rule exempts',
  write: 'it could store masked values unmasked; name the columns it copies, leaving out the masked ones, or ask for a role the rule exempts'
}

/**
 * The refusal of a statement that reads masked data by a route lineage cannot follow, naming the
 * statement as written (EXPORT DATA, COPY INTO, INSERT INTO …), not its kind, with what to do
 * instead for that kind of statement.
 */
export function untracedRoute (s: { kind: string, text: string }, table: string, why: string): string {
  const words = ROUTE_WORDS.exec(s.text)?.[1]?.replace(/\s+/g, ' ').toUpperCase() ?? s.kind.toUpperCase()
  return `${words} reads ${table}, which has masking rules, by a route Sluice cannot trace (${why}); ${ROUTE_ADVICE[s.kind] ?? ROUTE_ADVICE.write}`
}

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
    const allowed = use.usage === 'copy' ? [] : [...rule.allowInference]
    return {
      rule: rule.id,
      column: use.column,
      reason: `${where} ${USAGE[use.usage](use.column)}, which is masked for you` +
        (allowed.length > 0 ? ` (the rule allows only: ${allowed.join(', ')})` : '') +
        // Advice by what the statement does with the column: a copy is not a predicate.
        (use.usage === 'copy'
          ? '; the copy would hold its clear values, out of the mask\'s reach: leave the column out of the write, or ask for a role the rule exempts'
          : '; select the column without filtering, joining, sorting or grouping on it, or ask for a role the rule exempts')
    }
  }
  return undefined
}
