// Catalogue errors as PostgreSQL ErrorResponse fields: the SQLSTATE a driver branches on, the
// catalogue code in the detail so an agent can act on it, and what to do as the hint.
import { isSluiceError } from '../../errors.js'
import { BinaryFormatRefused } from '../../warehouses/postgres/codec.js'
import type { WireError } from './messages.js'

const SQLSTATE: Record<string, string> = {
  SLUICE_POLICY_DENIED: '42501',
  SLUICE_APPROVAL_REQUIRED: '42501',
  SLUICE_MASKING_INFERENCE: '42501',
  SLUICE_MASKING_UNRESOLVED: '42501',
  SLUICE_ROWS_LIMIT: '42501',
  SLUICE_FORBIDDEN: '42501',
  SLUICE_SQL_SYNTAX: '42601',
  SLUICE_STATEMENT_TOO_LARGE: '54000',
  SLUICE_STATEMENT_TOO_COMPLEX: '54001',
  SLUICE_STORE_UNAVAILABLE: '57P03',
  SLUICE_RESULT_UNRECORDED: '58000',
  SLUICE_POSTGRES_UNSUPPORTED: '0A000',
  SLUICE_AUTH_INVALID: '28P01',
  SLUICE_AUTH_MISSING: '28P01',
  SLUICE_AUTH_ISSUER_UNAVAILABLE: '08004'
}

const HINT: Record<string, string> = {
  '42501': 'The statement was not run. Change it to something the policy allows, or ask the gateway administrators for access.',
  '57P03': 'Nothing was run: retry in a few seconds.',
  '58000': 'The statement ran but its result is withheld because it could not be recorded; do not simply retry it.'
}

export function wireError (err: unknown, requestId?: string): WireError {
  if (isSluiceError(err)) {
    const code = SQLSTATE[err.code] ?? 'XX000'
    const out: WireError = { severity: 'ERROR', code, message: err.message, detail: `Sluice error code ${err.code}` }
    const hint = HINT[code]
    if (hint !== undefined) out.hint = hint
    return out
  }
  return { severity: 'ERROR', code: 'XX000', message: `internal error${requestId === undefined ? '' : `; quote request id ${requestId}`}` }
}

/**
 * Any error of a session as ErrorResponse fields: an upstream error keeps its SQLSTATE and its
 * texts pass through `release` (they quote values); a format Sluice does not serve is 0A000.
 */
export function sessionWireError (err: unknown, release: (text: string, sqlState: string) => string): WireError {
  if (err instanceof BinaryFormatRefused || err instanceof RangeError) return { severity: 'ERROR', code: '0A000', message: err.message }
  const upstream = err as { code?: string, message?: string, detail?: string, hint?: string, position?: string }
  if (!isSluiceError(err) && typeof upstream.code === 'string' && /^[0-9A-Z]{5}$/.test(upstream.code)) {
    const code = upstream.code
    const out: WireError = { severity: 'ERROR', code, message: release(upstream.message ?? '', code) }
    if (upstream.detail !== undefined) out.detail = release(upstream.detail, code)
    if (upstream.hint !== undefined) out.hint = release(upstream.hint, code)
    if (upstream.position !== undefined) out.position = upstream.position
    return out
  }
  return wireError(err)
}

/** `DEALLOCATE [PREPARE] name | ALL` as one statement, or undefined. */
export function deallocateTarget (sql: string): { name: string, quoted: boolean, all: boolean } | undefined {
  const m = /^\s*deallocate\s+(?:prepare\s+)?(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*;?\s*$/i.exec(sql)
  if (m === null) return undefined
  if (m[1] !== undefined) return { name: m[1].replace(/""/g, '"'), quoted: true, all: false }
  const name = m[2] as string
  return { name, quoted: false, all: name.toLowerCase() === 'all' }
}
