// Upstream error text on every BigQuery surface, released through the pipeline before a client
// sees it: the 4xx/5xx bodies of failed calls, `errors` of jobs.query / getQueryResults, and a
// job's `status.errorResult` / `status.errors` (jobs.insert, jobs.get, jobs.cancel, jobs.list).
// BigQuery quotes cell values in them, so they are a result path like rows (DESIGN.md §1).
// Reasons, locations and status codes are kept; only the message text is released.
import type { Pipeline } from '../../pipeline.js'
import type { UpstreamErrorCodes } from '../../pipeline/stages.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import { upstreamError, type BigQueryUpstreamError } from './upstream.js'
import type { Job, QueryResults } from './wire.js'

/**
 * Releases an upstream error text under the statement the answer belongs to: the statement's
 * run (StatementRun.releaseError), or `errorScope` for an answer read outside one.
 */
export interface ErrorScope {
  releaseError: (message: string, codes?: UpstreamErrorCodes) => string
}

/**
 * The scope of an answer read outside a run (jobs.list, jobs.cancel): under the statement it
 * belongs to, or none (catalogue reads, the error handler's net), where the detectors still run.
 */
export function errorScope (pipeline: Pipeline, statement?: Statement, admission?: Admission): ErrorScope {
  return { releaseError: (message, codes) => pipeline.releaseError(statement, admission, message, codes) }
}

/** One ErrorProto (`{reason, location, message, debugInfo}`) with its text released. */
function releaseProto (scope: ErrorScope, proto: unknown): unknown {
  if (proto === null || typeof proto !== 'object') return proto
  const p = proto as { message?: unknown, reason?: unknown, debugInfo?: unknown }
  const codes = typeof p.reason === 'string' ? { code: p.reason } : {}
  const out: Record<string, unknown> = { ...p }
  if (typeof p.message === 'string') out.message = scope.releaseError(p.message, codes)
  // debugInfo is Google-internal detail that can repeat the message: never released as is.
  if (typeof p.debugInfo === 'string') out.debugInfo = scope.releaseError(p.debugInfo, codes)
  return out
}

function releaseList (scope: ErrorScope, list: unknown): unknown {
  return Array.isArray(list) ? list.map((e) => releaseProto(scope, e)) : list
}

/** A job resource (or a jobs.list entry, which also carries `errorResult` at its top level). */
export function releaseJob<T extends Job> (scope: ErrorScope, job: T): T {
  const out: T = { ...job }
  if (job.status !== undefined) {
    const status = { ...job.status }
    if (status.errorResult !== undefined) status.errorResult = releaseProto(scope, status.errorResult)
    if (status.errors !== undefined) status.errors = releaseList(scope, status.errors) as unknown[]
    out.status = status
  }
  if ('errorResult' in job) (out as Record<string, unknown>).errorResult = releaseProto(scope, job.errorResult)
  return out
}

/** jobs.query and getQueryResults answers: their `errors` list. */
export function releaseQueryResults<T extends QueryResults<unknown>> (scope: ErrorScope, result: T): T {
  return result.errors === undefined ? result : { ...result, errors: releaseList(scope, result.errors) }
}

/** A failed upstream call's error rebuilt with released text; anything else as it is. */
export function releaseThrown (scope: ErrorScope, err: unknown): unknown {
  const raw = (err as BigQueryUpstreamError | undefined)?.upstream
  if (raw === undefined) return err
  const e = err as BigQueryUpstreamError
  const message = scope.releaseError(raw.message, { code: e.reason })
  return upstreamError(raw.connection, e.statusCode, e.reason, message, true)
}

/** Runs one upstream call; its failure leaves with released text. */
export async function releasing<T> (scope: ErrorScope, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw releaseThrown(scope, err)
  }
}
