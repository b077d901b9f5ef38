// Tool results as MCP carries them: structured content (matching the tool's output schema) with
// the same JSON as text for clients that only read text, or an error result (`isError`) whose
// text says what failed, under which rule, and what to do next, so the agent can correct itself.
import { isSluiceError, PolicyError } from '../../errors.js'

export interface ToolResult {
  [key: string]: unknown
  content: Array<{ type: 'text', text: string }>
  structuredContent?: Record<string, unknown>
  isError?: boolean
}

export function toolResult (structured: Record<string, unknown>): ToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured }
}

export interface ToolFailure {
  code: string
  message: string
  rule?: string
  next?: string
}

export function errorResult (failure: ToolFailure): ToolResult {
  const lines = [failure.message]
  if (failure.rule !== undefined) lines.push(`rule: ${failure.rule}`)
  lines.push(`code: ${failure.code}`)
  if (failure.next !== undefined) lines.push(`next: ${failure.next}`)
  return { content: [{ type: 'text', text: lines.join('\n') }], isError: true }
}

/** What an agent can do about a refusal, by catalogue code. */
const NEXT: Record<string, string> = {
  SLUICE_POLICY_DENIED: 'policy does not allow this statement for you: call explain to see why, and change the statement (or ask a human to change the policy)',
  SLUICE_SQL_SYNTAX: 'fix the SQL syntax and call query again',
  SLUICE_APPROVAL_REQUIRED: 'the statement needs a human\'s approval that cannot be given now: ask an approver, or change the statement',
  SLUICE_ROWS_LIMIT: 'add a LIMIT or narrow the query',
  SLUICE_UNKNOWN_CONNECTION: 'call list_connections for the names you may use',
  SLUICE_STORE_UNAVAILABLE: 'nothing was run; retry in a few seconds',
  SLUICE_RESULT_UNRECORDED: 'the statement ran but its result could not be recorded, so it is withheld; do not simply retry a write',
  SLUICE_MCP_JUSTIFICATION_REQUIRED: 'call query again with the same connection and sql and a `justification` argument saying why it should run (a client with elicitation is asked for it instead)',
  SLUICE_MCP_ONE_STATEMENT: 'call query once per statement',
  SLUICE_MCP_UPSTREAM: 'fix the statement (names, types, syntax of the warehouse) and call query again'
}

/** A thrown error as the tool result the agent sees; `message` is already safe to show. */
export function failureOf (err: unknown, message?: string, ruleId?: string): ToolFailure {
  const code = isSluiceError(err) ? (err as { code: string }).code : 'SLUICE_INTERNAL'
  const text = message ?? (isSluiceError(err) ? (err as Error).message : 'internal error')
  const rule = ruleId ?? (err instanceof PolicyError ? ruleOf(text) : undefined)
  const next = NEXT[code]
  return { code, message: text, ...(rule !== undefined && { rule }), ...(next !== undefined && { next }) }
}

function ruleOf (message: string): string | undefined {
  return /\bby rule ([^\s:;,)]+)/.exec(message)?.[1] ?? /\brule ([^\s:;,)]+)/.exec(message)?.[1]
}

/** A neutral value as JSON: bytes as base64, big integers and dates as text, records as objects. */
export function jsonValue (v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64')
  if (v instanceof Date) return v.toISOString()
  if (Array.isArray(v)) return v.map(jsonValue)
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, jsonValue(x)]))
  return v
}
