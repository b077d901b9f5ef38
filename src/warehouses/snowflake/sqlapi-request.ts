// What a SQL API v2 request may carry (specs/snowflake-sqlapi.yaml), checked before anything is
// admitted: a malformed value is a 400 naming it, never silently read as its default (`async=yes`
// must not run the statement synchronously, an empty requestId must not disable idempotency).
// Query parameters the spec does not declare are ignored, as Snowflake ignores them (drivers add
// retryCount, request_guid and the like).
import { ERR_BAD_REQUEST } from '../../errors.js'
import { sqlApiRequestId } from './idempotency.js'
import type { SessionContext } from './query-data.js'

export interface SubmitQuery {
  requestId?: string
  async: boolean
  /** false: nulls are sent as the string 'null'. */
  nullable: boolean
}

export interface SubmitBody {
  statement: string
  /** Seconds; 0 for none. */
  timeout: number
  context: SessionContext
  bindings?: Record<string, unknown>
  parameters?: unknown
}

function once (query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new ERR_BAD_REQUEST(`${name} must be given once`)
  return value
}

function flag (query: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = once(query, name)
  if (value === undefined) return fallback
  if (value === 'true') return true
  if (value === 'false') return false
  throw new ERR_BAD_REQUEST(`${name} must be true or false (got ${JSON.stringify(value.slice(0, 32))})`)
}

export function submitQuery (query: Record<string, unknown> | undefined): SubmitQuery {
  const q = query ?? {}
  // `retry=true` marks a resubmission in Snowflake's docs; a repeated requestId is treated as one
  // either way (idempotency.ts), so the flag is only checked.
  flag(q, 'retry', false)
  const out: SubmitQuery = { async: flag(q, 'async', false), nullable: flag(q, 'nullable', true) }
  const requestId = sqlApiRequestId(q.requestId)
  if (requestId !== undefined) out.requestId = requestId
  return out
}

export function statusQuery (query: Record<string, unknown> | undefined): { partition: number, nullable: boolean } {
  const q = query ?? {}
  sqlApiRequestId(q.requestId)
  const text = once(q, 'partition')
  if (text !== undefined && !/^\d+$/.test(text)) throw new ERR_BAD_REQUEST(`partition must be a non-negative integer (got ${JSON.stringify(text.slice(0, 32))})`)
  return { partition: text === undefined ? 0 : Number(text), nullable: flag(q, 'nullable', true) }
}

function optionalText (body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new ERR_BAD_REQUEST(`"${name}" must be a string`)
  return value
}

function optionalObject (body: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const value = body[name]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) throw new ERR_BAD_REQUEST(`"${name}" must be an object`)
  return value as Record<string, unknown>
}

export function submitBody (body: unknown): SubmitBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ERR_BAD_REQUEST('the request body must be a JSON object with "statement"')
  const b = body as Record<string, unknown>
  if (typeof b.statement !== 'string') throw new ERR_BAD_REQUEST('"statement" (a string) is required')
  const timeout = b.timeout ?? 0
  // The spec's upper bound is 604800 (7 days); 0 means that maximum.
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > 604800) {
    throw new ERR_BAD_REQUEST('"timeout" must be an integer number of seconds from 0 to 604800')
  }
  const context: SessionContext = {}
  for (const name of ['database', 'schema', 'warehouse', 'role'] as const) {
    const value = optionalText(b, name)
    if (value !== undefined) context[name] = value
  }
  const out: SubmitBody = { statement: b.statement, timeout, context }
  const bindings = optionalObject(b, 'bindings')
  if (bindings !== undefined) out.bindings = bindings
  if (b.parameters !== undefined && b.parameters !== null) out.parameters = b.parameters
  return out
}
