// Sources that re-read results or other sessions' SQL: an earlier (unmasked) upstream result
// (Snowflake RESULT_SCAN, BigQuery anonymous result datasets) or the query history of every
// session (Snowflake QUERY_HISTORY* and ACCOUNT_USAGE, BigQuery INFORMATION_SCHEMA.JOBS*,
// Postgres pg_stat_activity / pg_stat_statements). Lineage cannot see through them — they have
// no table whose masking rules would apply, and they are not bound to the caller — so the
// policy engine denies them unless a rule names them (`match.rereads`).
import type { Dialect } from './types.js'

export const REREAD_KINDS = ['result_scan', 'query_history', 'account_usage', 'jobs', 'anonymous_dataset', 'activity'] as const
export type RereadKind = typeof REREAD_KINDS[number]

export interface Reread {
  kind: RereadKind
  /** The table or table function as the statement names it (qualified, lower case). */
  name: string
}

export const REREAD_WHAT: Record<RereadKind, string> = {
  result_scan: 'RESULT_SCAN re-reads an earlier statement\'s result as the warehouse returned it, unmasked',
  query_history: 'QUERY_HISTORY returns the SQL text (and literals) of other statements and sessions',
  account_usage: 'ACCOUNT_USAGE / ORGANIZATION_USAGE views return every session\'s SQL text and activity',
  jobs: 'INFORMATION_SCHEMA.JOBS returns every caller\'s SQL text and the tables holding their results',
  anonymous_dataset: 'anonymous datasets (names starting with `_`) hold other queries\' cached, unmasked results',
  activity: 'pg_stat_activity / pg_stat_statements return the SQL text of other sessions'
}

const USAGE_SCHEMAS = new Set(['account_usage', 'organization_usage', 'reader_account_usage', 'data_sharing_usage'])
const HISTORY_FUNCTIONS = /^(query_history|task_history|serverless_task_history)/

/** The re-reading sources among a statement's tables and table functions. */
export function rereadsOf (tables: readonly string[], functions: readonly string[], dialect: Dialect): Reread[] {
  const out: Reread[] = []
  for (const fn of functions) {
    const last = fn.slice(fn.lastIndexOf('.') + 1)
    if (last === 'result_scan') out.push({ kind: 'result_scan', name: fn })
    else if (dialect === 'snowflake' && HISTORY_FUNCTIONS.test(last)) out.push({ kind: 'query_history', name: fn })
  }
  for (const table of tables) {
    const segs = table.toLowerCase().split('.')
    const last = segs[segs.length - 1] ?? ''
    if (segs.slice(0, -1).some((s) => USAGE_SCHEMAS.has(s))) out.push({ kind: 'account_usage', name: table })
    else if (dialect === 'snowflake' && segs.includes('information_schema') && HISTORY_FUNCTIONS.test(last)) out.push({ kind: 'query_history', name: table })
    else if (dialect === 'bigquery' && segs.includes('information_schema') && last.startsWith('jobs')) out.push({ kind: 'jobs', name: table })
    else if (dialect === 'bigquery' && segs.length >= 3 && (segs[segs.length - 2] ?? '').startsWith('_')) out.push({ kind: 'anonymous_dataset', name: table })
    else if (dialect === 'postgres' && (last === 'pg_stat_activity' || last === 'pg_stat_statements')) out.push({ kind: 'activity', name: table })
  }
  return out
}
