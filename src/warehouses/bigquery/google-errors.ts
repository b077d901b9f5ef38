// Errors in Google's JSON error shape, which every BigQuery client parses:
// `{error: {code, message, errors: [{reason, message, domain}], status}}`. The Sluice catalogue
// code rides along as a google.rpc.ErrorInfo detail, so an agent or auditor can act on it.
import { isSluiceError } from '../../errors.js'
import type { GoogleErrorBody } from './wire.js'

const BY_STATUS: Record<number, { reason: string, status: string }> = {
  400: { reason: 'invalid', status: 'INVALID_ARGUMENT' },
  401: { reason: 'authError', status: 'UNAUTHENTICATED' },
  403: { reason: 'accessDenied', status: 'PERMISSION_DENIED' },
  404: { reason: 'notFound', status: 'NOT_FOUND' },
  409: { reason: 'duplicate', status: 'ALREADY_EXISTS' },
  413: { reason: 'invalid', status: 'INVALID_ARGUMENT' },
  415: { reason: 'invalid', status: 'INVALID_ARGUMENT' },
  429: { reason: 'rateLimitExceeded', status: 'RESOURCE_EXHAUSTED' },
  500: { reason: 'internalError', status: 'INTERNAL' },
  502: { reason: 'backendError', status: 'UNAVAILABLE' },
  503: { reason: 'backendError', status: 'UNAVAILABLE' }
}

export function googleErrorBody (code: number, message: string, sluiceCode: string, reason?: string): GoogleErrorBody {
  const known = BY_STATUS[code] ?? (code >= 500 ? BY_STATUS[500] : BY_STATUS[400]) as { reason: string, status: string }
  return {
    error: {
      code,
      message,
      errors: [{ reason: reason ?? known.reason, message, domain: 'global' }],
      status: known.status,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: sluiceCode, domain: 'sluice' }]
    }
  }
}

/** Catalogue errors BigQuery itself answers with a more specific reason than their status's. */
const REASONS: Record<string, string> = {
  // BigQuery's own 403 for a result too large to return (maxRowsAction: refuse).
  SLUICE_ROWS_LIMIT: 'responseTooLarge',
  // What BigQuery says of a query it cannot parse; clients treat it as the caller's mistake.
  SLUICE_SQL_SYNTAX: 'invalidQuery',
  // What BigQuery says of a query over its own size or complexity limits.
  SLUICE_STATEMENT_TOO_LARGE: 'invalidQuery',
  SLUICE_STATEMENT_TOO_COMPLEX: 'invalidQuery'
}

export interface RenderedError {
  statusCode: number
  code: string
  body: GoogleErrorBody
}

/** Any error raised on a BigQuery route, as the client sees it. */
export function renderError (err: unknown, requestId: string): RenderedError {
  if (isSluiceError(err)) {
    const status = err.statusCode ?? 500
    const reason = (err as { reason?: unknown }).reason ?? REASONS[err.code]
    return { statusCode: status, code: err.code, body: googleErrorBody(status, err.message, err.code, typeof reason === 'string' ? reason : undefined) }
  }
  const status = (err as { statusCode?: number }).statusCode ?? 500
  if (status < 500) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large).
    const message = `malformed request: ${(err as Error).message}`
    return { statusCode: status, code: 'SLUICE_BAD_REQUEST', body: googleErrorBody(status, message, 'SLUICE_BAD_REQUEST') }
  }
  return { statusCode: 500, code: 'SLUICE_INTERNAL', body: googleErrorBody(500, `internal error; quote request id ${requestId}`, 'SLUICE_INTERNAL') }
}

/**
 * A body already sent in Sluice's own shape (`{code, message}`: the auth plugin's 401, the
 * recording layer's 503) rewritten in Google's; anything else is returned unchanged.
 */
export function rewriteSluiceBody (statusCode: number, payload: unknown): unknown {
  if (statusCode < 400 || typeof payload !== 'string' || !payload.startsWith('{"code":"SLUICE_')) return payload
  try {
    const parsed = JSON.parse(payload) as { code?: unknown, message?: unknown }
    if (typeof parsed.code !== 'string' || typeof parsed.message !== 'string') return payload
    return JSON.stringify(googleErrorBody(statusCode, parsed.message, parsed.code))
  } catch {
    return payload
  }
}
