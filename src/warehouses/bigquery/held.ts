// A BigQuery job a rule holds for approval, waited on in BigQuery's own protocol: the client gets
// a job id at once (jobs.query: `jobComplete: false`; jobs.insert: state PENDING) and keeps
// polling as it would for a slow query (getQueryResults with timeoutMs, jobs.get), through any
// replica. Nothing runs upstream until an approver releases it; then the next poll, on whichever
// replica it reaches, claims the approval (once, in the store) and inserts exactly the held job
// (its text and query parameters, kept with the binding) under the same id, so every later call
// is the upstream's own job. A claimer that stops before inserting it leaves the job PENDING only
// for the claim's lease: the next poll after it takes the claim over and inserts the same id
// (BigQuery refuses a second job under one id, so it cannot run twice). Denied, expired or withdrawn (jobs.cancel), the job reads DONE with
// the approval's error, and getQueryResults answers that error.
import { ERR_APPROVAL_DENIED, ERR_APPROVAL_EXECUTED, ERR_APPROVAL_EXPIRED, ERR_APPROVAL_WITHDRAWN } from '../../errors.js'
import { waitForDecision } from '../../approvals/wait.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import { pendingApproval } from '../../pipeline/held.js'
import type { StatementRun } from '../../pipeline.js'
import { ownerOf, type JobBinding } from './registry.js'
import { releaseJob } from './released-errors.js'
import { upstreamCall } from './run-calls.js'
import { statementParams } from './requests.js'
import type { BigQueryService, CallContext } from './service.js'
import type { BigQueryUpstream, BigQueryUpstreamError } from './upstream.js'
import type { Job, JobConfiguration, JobConfigurationQuery, QueryRequest, QueryResults } from './wire.js'

/** What a poll of a held job found. */
export type HeldPoll =
  /** Nobody decided yet. */
  | { state: 'pending' }
  /** Approved and claimed by another replica, which is starting the job upstream. */
  | { state: 'running' }
  /** Running upstream now: the binding of the upstream job, under the approved admission. */
  | { state: 'released', binding: JobBinding }
  /** Denied, expired or withdrawn: the approval's own error. */
  | { state: 'failed', error: Error }

/** The longest a getQueryResults poll of a held job waits for a decision (BigQuery's default is 10 s). */
const MAX_WAIT_MS = 60_000

/**
 * How long a poll asking for `timeoutMs` may wait. The client counts its timeout from when it
 * sent the request, Sluice from when it got it, and the answer still has to travel back: the wait
 * ends a margin (a tenth, at most a second) before the client's own deadline, so a client whose
 * clock runs ahead of the request never times the call out while Sluice still holds it.
 */
export function heldWaitMs (timeoutMs: string | number | undefined): number {
  const asked = Number(timeoutMs ?? 10_000)
  const ms = Number.isFinite(asked) && asked >= 0 ? Math.min(asked, MAX_WAIT_MS) : 10_000
  return Math.max(0, ms - Math.min(1000, ms / 10))
}

/** The job configuration a held jobs.query runs as once approved (a query job under Sluice's id). */
export function queryConfiguration (request: QueryRequest): JobConfiguration {
  const query: JobConfigurationQuery = { query: request.query }
  for (const key of ['useLegacySql', 'defaultDataset', 'queryParameters', 'parameterMode', 'maximumBytesBilled', 'useQueryCache', 'connectionProperties'] as const) {
    if (request[key] !== undefined) (query as Record<string, unknown>)[key] = request[key]
  }
  const configuration: JobConfiguration = { query }
  if (request.labels !== undefined) configuration.labels = request.labels
  if (request.jobTimeoutMs !== undefined) configuration.jobTimeoutMs = request.jobTimeoutMs
  return configuration
}

/** The stricter of what the client asked and what policy allows (int64 strings on the wire). */
export function tighter (client: string | undefined, limit: number | undefined): string | undefined {
  if (limit === undefined) return client
  if (client === undefined || !/^\d+$/.test(client)) return String(limit)
  return BigInt(client) < BigInt(limit) ? client : String(limit)
}

/** What the rule bounds a job by, in BigQuery's own terms. */
export interface JobBounds {
  /** The rule's timeout, for a job that starts now. */
  jobTimeoutMs: number | undefined
  maximumBytesBilled: number | undefined
}

/** The bounds a run's job is sent upstream with (BigQuery enforces them too). */
export function jobBounds (run: StatementRun): JobBounds {
  return {
    jobTimeoutMs: run.timeoutSeconds === undefined ? undefined : run.timeoutSeconds * 1000,
    maximumBytesBilled: run.admission.decision.limits.maximumBytesBilled
  }
}

/** A job configuration under the rule's bounds (timeout, bytes billed), as it goes upstream. */
export function limitedConfiguration (configuration: JobConfiguration, bounds: JobBounds): JobConfiguration {
  const out: JobConfiguration = { ...configuration, jobTimeoutMs: tighter(configuration.jobTimeoutMs, bounds.jobTimeoutMs) }
  if (configuration.query !== undefined) out.query = { ...configuration.query, maximumBytesBilled: tighter(configuration.query.maximumBytesBilled, bounds.maximumBytesBilled) }
  return out
}

function jobType (configuration: JobConfiguration): string {
  for (const type of ['query', 'extract', 'copy', 'load'] as const) if (configuration[type] !== undefined) return type.toUpperCase()
  return 'QUERY'
}

/** BigQuery's reason for the job's errorResult: a withdrawn job was cancelled (`stopped`). */
function errorReason (error: Error): string {
  return error instanceof ERR_APPROVAL_WITHDRAWN ? 'stopped' : 'accessDenied'
}

/** The job resource of a held job, as jobs.get and jobs.insert answer it. */
export function heldJobResource (binding: JobBinding, poll: Exclude<HeldPoll, { state: 'released' }>): Job {
  const configuration = binding.held?.configuration as JobConfiguration
  const reference = { projectId: binding.projectId, jobId: binding.id, ...(binding.location !== undefined && { location: binding.location }) }
  const status = poll.state === 'failed'
    ? { state: 'DONE', errorResult: { reason: errorReason(poll.error), message: poll.error.message }, errors: [{ reason: errorReason(poll.error), message: poll.error.message }] }
    : { state: poll.state === 'pending' ? 'PENDING' : 'RUNNING' }
  return {
    kind: 'bigquery#job',
    // BigQuery's own form: project:location.job, or project:job without a location.
    id: binding.location === undefined ? `${binding.projectId}:${binding.id}` : `${binding.projectId}:${binding.location}.${binding.id}`,
    jobReference: reference,
    configuration: { ...configuration, jobType: jobType(configuration) },
    status,
    statistics: { creationTime: String(binding.createdAt) }
  }
}

/** A getQueryResults / jobs.query answer for a job still waiting. */
export function pendingResults (binding: JobBinding, kind: string): QueryResults {
  return {
    kind,
    jobReference: { projectId: binding.projectId, jobId: binding.id, ...(binding.location !== undefined && { location: binding.location }) },
    jobComplete: false
  }
}

/** The statement a held job was held as, with its binds, polling its approval. */
function heldStatement (svc: BigQueryService, ctx: CallContext, upstream: BigQueryUpstream, binding: JobBinding): Statement {
  const held = binding.held as NonNullable<JobBinding['held']>
  const query = (held.configuration as JobConfiguration).query
  const fresh = svc.statement(ctx, upstream, binding.statement.sql, statementParams(query?.queryParameters), query?.defaultDataset, query?.queryParameters)
  // A claim whose replica stopped before inserting the job may be taken over: the job id is
  // fixed, and BigQuery refuses a second job under it, so the statement still runs once.
  return { ...fresh, connection: binding.statement.connection, approvalId: held.approvalId, reclaimStaleClaim: true }
}

/**
 * Inserts the held job under its id. A 409 `duplicate` means a replica that claimed it before
 * (and then stopped) did insert it: that job is the one, read back instead of run again.
 */
async function insertOnce (upstream: BigQueryUpstream, job: Job): Promise<Job> {
  try {
    return await upstream.insertJob(job)
  } catch (err) {
    const e = err as BigQueryUpstreamError
    if (e.statusCode !== 409 || e.reason !== 'duplicate') throw err
    return await upstream.getJob(job.jobReference?.jobId as string, job.jobReference?.location)
  }
}

/** Binds a new held job: nothing runs upstream, its binds wait in the store with the approval id. */
export async function holdJob (svc: BigQueryService, ctx: CallContext, upstream: BigQueryUpstream, job: { id: string, location?: string, statement: Statement, configuration: JobConfiguration, approvalId: string }): Promise<JobBinding | undefined> {
  const trip = ctx.trip
  // The admission it was held under: what analysis and policy said (nothing was admitted yet).
  const admission = { analysis: trip.analysis, decision: trip.decision } as Admission
  ctx.trip.pending = true
  return await svc.registry.bind({
    owner: ownerOf(ctx.principal),
    connection: upstream.settings.name,
    projectId: upstream.project,
    kind: 'job',
    id: job.id,
    ...(job.location !== undefined && { location: job.location }),
    statement: job.statement,
    admission,
    held: { approvalId: job.approvalId, configuration: job.configuration }
  })
}

/**
 * Waits (bounded) for an approver, then polls: what a getQueryResults on a held job does. The
 * wait is a store poll (approvals/wait.ts), so a decision made through any replica ends it.
 */
export async function waitForHeld (svc: BigQueryService, ctx: CallContext, binding: JobBinding, until: number): Promise<void> {
  const id = binding.held?.approvalId
  if (id === undefined || svc.approvals === undefined || until <= Date.now()) return
  await waitForDecision(svc.approvals, id, ctx.principal, { until })
}

/**
 * One poll of a held job: admits the same statement again under its approval. Approved, this
 * replica claimed it: the held job is inserted upstream under its id, and the id bound again
 * (the binds leave the store) under the approved admission.
 */
export async function pollHeld (svc: BigQueryService, ctx: CallContext, upstream: BigQueryUpstream, binding: JobBinding): Promise<HeldPoll> {
  const statement = heldStatement(svc, ctx, upstream, binding)
  let admission: Admission
  try {
    admission = await svc.pipeline.admit(statement, ctx.trip)
  } catch (err) {
    if (pendingApproval(err, ctx.trip) !== undefined) return { state: 'pending' }
    if (err instanceof ERR_APPROVAL_EXECUTED) {
      // Claimed elsewhere: running once that replica has inserted it and bound the id again.
      const now = await svc.registry.find(binding.connection, 'job', binding.id, binding.owner)
      return now !== undefined && now.held === undefined ? { state: 'released', binding: now } : { state: 'running' }
    }
    if (err instanceof ERR_APPROVAL_DENIED || err instanceof ERR_APPROVAL_EXPIRED || err instanceof ERR_APPROVAL_WITHDRAWN) {
      ctx.trip.errorCode = (err as Error & { code: string }).code
      ctx.trip.errorMessage = err.message
      // The trail names the approval that ended it, and who decided (a denial).
      const approvalId = binding.held?.approvalId as string
      const decided = await svc.approvals?.get(approvalId).catch(() => undefined)
      ctx.trip.approvalAction = { approvalId, ...(decided?.decidedBy !== undefined && { approver: decided.decidedBy }), summary: err.message }
      return { state: 'failed', error: err }
    }
    throw err
  }
  const base = { owner: binding.owner, connection: binding.connection, projectId: binding.projectId, kind: 'job' as const, id: binding.id, statement, admission }
  // The job starts now: the rule's timeout counts from here (the next poll's run from the new binding).
  const run = svc.pipeline.run(statement, admission, ctx.trip)
  let created: Job
  try {
    const configuration = limitedConfiguration(binding.held?.configuration as JobConfiguration, jobBounds(run))
    created = releaseJob(run, await upstreamCall(run, async () => await insertOnce(upstream, {
      jobReference: { projectId: upstream.project, jobId: binding.id, ...(binding.location !== undefined && { location: binding.location }) },
      configuration
    })))
  } catch (err) {
    // The approval is used; the id now reads as the upstream has it (the job failed to start).
    await svc.registry.bind({ ...base, ...(binding.location !== undefined && { location: binding.location }) }).catch(() => undefined)
    throw err
  } finally {
    run.close()
  }
  const location = created.jobReference?.location ?? binding.location
  const next = await svc.afterRun(ctx, async () => {
    const bound = await svc.registry.bind({ ...base, ...(location !== undefined && { location }) })
    const destination = created.configuration?.query?.destinationTable
    if (bound !== undefined && destination !== undefined) await svc.registry.setDestination(bound, destination)
    return bound
  })
  ctx.trip.upstreamId = binding.id
  if (created.status?.state !== 'DONE') ctx.trip.pending = true
  return next === undefined ? { state: 'running' } : { state: 'released', binding: next }
}

/** jobs.cancel of a held job: the requester withdraws the approval; the job reads cancelled. */
export async function cancelHeld (svc: BigQueryService, ctx: CallContext, upstream: BigQueryUpstream, binding: JobBinding): Promise<{ kind: string, job: Job } | undefined> {
  const id = binding.held?.approvalId
  if (id === undefined || svc.approvals === undefined) return undefined
  try {
    await svc.approvals.withdraw(id, ctx.principal)
  } catch {
    // Already decided: the poll below says what it became (running, denied, expired).
  }
  const poll = await pollHeld(svc, ctx, upstream, binding)
  if (poll.state === 'released') return undefined
  return { kind: 'bigquery#jobCancelResponse', job: heldJobResource(binding, poll) }
}
