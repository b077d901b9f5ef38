// Upstream error messages are a result path too: warehouses quote cell values in them ("Bad
// int64 value: 'alice@example.com'", "Numeric value 'x' is not recognized", ERROR(col) returns
// the value as the message). Masking cannot rewrite a quoted value it cannot locate, so a
// statement that reads masked data never gets the upstream wording at all; any other statement
// gets it with the value detectors' shapes (emails, SSNs, cards, keys, JWTs) redacted.
import type { CompiledMaskingRule } from '../policy/model.js'
import type { StatementAnalysis } from '../sql/types.js'
import type { Scanner } from './detectors.js'
import { guardRule } from './planner.js'

/** The warehouse's own identifiers of the error: kept, so clients and agents can still act. */
export interface UpstreamErrorCodes {
  /** Snowflake error code (100038), BigQuery reason (invalidQuery), … */
  code?: string
  /** ANSI SQLSTATE (22018), where the warehouse gives one. */
  sqlState?: string
}

export interface UpstreamErrorContext extends UpstreamErrorCodes {
  /** Masking rules in force for this principal on this connection (exempt rules removed). */
  rules: readonly CompiledMaskingRule[]
  /**
   * The analysed statements the error belongs to; undefined when the error came without an
   * admission (catalogue reads, logins), where only the detectors can help.
   */
  statements?: ReadonlyArray<Pick<StatementAnalysis, 'kind' | 'tablesRead' | 'tablesWritten'>>
  /** The value detectors to apply when the text is released. */
  scan: Scanner
}

/** Kinds that may read any table (unparsed SQL, procedures, scripts): rules cannot be ruled out. */
const OPAQUE: ReadonlySet<string> = new Set(['unknown', 'call', 'scripting'])

/** Why the message must be withheld, or undefined when the statement touches no masked data. */
function withholdReason (ctx: UpstreamErrorContext): string | undefined {
  const statements = ctx.statements
  if (statements === undefined || ctx.rules.length === 0) return undefined
  if (statements.length === 0) return 'the statement could not be analysed and masking rules apply on this connection'
  for (const s of statements) {
    if (OPAQUE.has(s.kind)) return 'the statement cannot be fully analysed and masking rules apply on this connection'
    // Written tables count too: UPDATE t SET a = CAST(masked AS INT) fails quoting the value.
    const guard = guardRule([...s.tablesRead, ...s.tablesWritten], ctx.rules)
    if (guard !== undefined) return `the statement reads ${guard.table}, which has masking rule ${guard.rule.id}`
  }
  return undefined
}

function codesOf (ctx: UpstreamErrorCodes): string {
  const code = ctx.code !== undefined && ctx.code !== '' ? ` ${ctx.code}` : ''
  const state = ctx.sqlState !== undefined && ctx.sqlState !== '' ? ` (${ctx.sqlState})` : ''
  return code === '' && state === '' ? 'an error' : `error${code}${state}`
}

/**
 * The upstream error text a client (and the audit record) may see for this statement: a fixed
 * message naming the warehouse's code when the statement reads masked columns, else the text
 * with detector findings redacted. Fail closed: without analysis the detectors always run.
 */
export function safeUpstreamMessage (message: string, ctx: UpstreamErrorContext): string {
  const why = withholdReason(ctx)
  if (why !== undefined) {
    return `the warehouse reported ${codesOf(ctx)}; its message was withheld because ${why} (warehouse messages can quote column values). Check the statement's casts and functions on masked columns; an operator can read the full message in the warehouse's query history`
  }
  return ctx.scan(message)?.text ?? message
}
