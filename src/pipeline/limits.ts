// Row limits a policy decision puts on a result, shared by every front end so each applies the
// same cap whatever its paging looks like.
import type { Admission } from './types.js'

export interface RowLimitOptions {
  /**
   * A paging read of a whole table (BigQuery tabledata.list): every page is bounded by the
   * client's maxResults, so autoLimit (a stand-in for a LIMIT) does not cut it; maxRows does.
   */
  paged?: boolean
}

/**
 * The most rows a result may hand out under its admission: the policy's maxRows, and its
 * autoLimit when every statement is a SELECT without a LIMIT of its own. The answer is cut
 * rather than the SQL rewritten, so what runs is exactly what the policy analysed; the rule's
 * statement timeout and maximumBytesBilled bound what the full query may cost.
 */
export function rowLimit (admission: Admission, options: RowLimitOptions = {}): number | undefined {
  const { maxRows, autoLimit } = admission.decision.limits
  const statements = admission.analysis.statements
  const unlimitedSelect = options.paged !== true && statements.length > 0 && statements.every((s) => s.kind === 'select' && !s.hasLimit)
  const limits = [maxRows, unlimitedSelect ? autoLimit : undefined].filter((n): n is number => typeof n === 'number')
  return limits.length === 0 ? undefined : Math.min(...limits)
}

/** The cap a result runs into, and what the rule says to do with the rows past it. */
export interface RowCap {
  rows: number
  /** maxRowsAction: refuse, and maxRows (not autoLimit, which only stands in for a LIMIT) is the cap. */
  refuse: boolean
  by: 'maxRows' | 'autoLimit'
  rule: string
}

export function rowCap (admission: Admission, options: RowLimitOptions = {}): RowCap | undefined {
  const rows = rowLimit(admission, options)
  if (rows === undefined) return undefined
  const { maxRows, maxRowsAction } = admission.decision.limits
  const by = maxRows === rows ? 'maxRows' : 'autoLimit'
  return { rows, by, refuse: by === 'maxRows' && maxRowsAction === 'refuse', rule: admission.decision.ruleId }
}

/** What the client is told (and the trail records) when a result was cut at its cap. */
export function limitedNotice (cap: RowCap): string {
  return `The result was limited to its first ${cap.rows} rows by rule ${cap.rule} (limits.${cap.by}); more rows exist: add a LIMIT or narrow the query to see the rest.`
}
