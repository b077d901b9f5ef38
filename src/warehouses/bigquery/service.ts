// The BigQuery front end, protocol side: decode a REST v2 request into the neutral statement,
// admit it through the pipeline, call the upstream with the connection's credential, and encode
// the masked, recorded result. Fastify-free: the plugin passes a CallContext and sends what
// these methods return.
import { randomUUID } from 'node:crypto'
import { ERR_BIGQUERY_DUPLICATE_JOB, ERR_NOT_FOUND, ERR_RESULT_UNRECORDED, ERR_UNKNOWN_CONNECTION, PolicyError } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { Pipeline, RoundTrip, StatementRun } from '../../pipeline.js'
import type { Admission, ClientInfo, Statement } from '../../pipeline/types.js'
import { selectConnection, type BigQuerySettings } from './connections.js'
import type { BigQueryJobStore } from '../../state/bigquery-jobs.js'
import { JobRegistry, ownerOf, type JobBinding } from './registry.js'
import { checkJob, checkQueryRequest, refuse, statementParams, transferRefusal, type Transfer } from './requests.js'
import { capPage, pageStartOf, releaseRows, timestampForm, warnLimited, type PageScope } from './results.js'
import type { TimestampForm } from './codec.js'
import { releaseJob, releaseQueryResults, releaseThrown, errorScope } from './released-errors.js'
import { jobTimedOut, upstreamCall } from './run-calls.js'
import { renderError, type RenderedError } from './google-errors.js'
import { BigQueryUpstream } from './upstream.js'
import type { DatasetReference, Job, QueryParameter, QueryRequest, QueryResults } from './wire.js'
import type { EncodedRows } from './encoded-rows.js'
import type { UpstreamRows } from './upstream-rows.js'
import type { ApprovalService } from '../../approvals/service.js'
import type { Estimator, WarehouseEstimate } from '../../pipeline/estimate.js'
import { pendingApproval } from '../../pipeline/held.js'
import { heldJobResource, heldWaitMs, holdJob, jobBounds, limitedConfiguration, pendingResults, pollHeld, queryConfiguration, tighter, waitForHeld } from './held.js'

export interface CallContext {
  principal: Principal
  requestId: string
  client: ClientInfo
  trip: RoundTrip
  /** Tells the recording layer which connection the request addressed. */
  onConnection: (name: string) => void
}

export interface BigQueryServiceDeps {
  pipeline: Pipeline
  connections: BigQuerySettings[]
  /** Upstream clients by connection name; built from the settings when absent. */
  upstreams?: Map<string, BigQueryUpstream>
  /** Job bindings and page cursors (the store's, so any replica serves any request). */
  jobs: BigQueryJobStore
  log?: { warn: (obj: object, msg?: string) => void }
  /** Held statements wait on their approvals here (getQueryResults timeoutMs). */
  approvals?: ApprovalService
}

/** A jobs.query / getQueryResults answer as the client gets it: its rows already encoded. */
export type Answer = QueryResults<EncodedRows>

/** A statement a rule holds: admitted later, once an approver releases it (held.ts). */
interface Held { held: string }

export class BigQueryService {
  readonly pipeline: Pipeline
  readonly registry: JobRegistry
  readonly approvals: ApprovalService | undefined
  readonly #connections: BigQuerySettings[]
  readonly #upstreams: Map<string, BigQueryUpstream>

  constructor (deps: BigQueryServiceDeps) {
    this.pipeline = deps.pipeline
    this.approvals = deps.approvals
    this.#connections = deps.connections
    this.#upstreams = deps.upstreams ?? new Map(deps.connections.map((c) => [c.name, new BigQueryUpstream(c)]))
    // One registry serves every connection: it keeps bindings as long as the longest setting.
    const ttl = deps.connections.length === 0 ? 86_400 : Math.max(...deps.connections.map((c) => c.jobTtlSeconds))
    this.registry = new JobRegistry(deps.jobs, deps.pipeline, { ttlSeconds: ttl, log: deps.log })
  }

  /**
   * A failed request in Google's error shape. Calls made under a statement released their
   * upstream text already; one that failed without (catalogue reads) still gets the detectors
   * before the client or the log sees it. The event records what the client was told, never
   * the upstream's own text.
   */
  failure (thrown: unknown, requestId: string, trip: RoundTrip | null | undefined): { error: Error, rendered: RenderedError } {
    const error = releaseThrown(errorScope(this.pipeline), thrown) as Error
    const rendered = renderError(error, requestId)
    if (trip !== null && trip !== undefined) {
      trip.errorCode = rendered.code
      trip.errorMessage = rendered.body.error.message
    }
    return { error, rendered }
  }

  /** The upstream a path's `{projectId}` selects (see connections.ts for the rule). */
  upstream (projectId: string, ctx: CallContext): BigQueryUpstream {
    const settings = selectConnection(this.#connections, projectId)
    const upstream = settings === undefined ? undefined : this.#upstreams.get(settings.name)
    if (upstream === undefined) {
      throw new ERR_UNKNOWN_CONNECTION(`for project ${projectId}: no BigQuery connection has this project, name or alias, and there is no default BigQuery connection`)
    }
    ctx.onConnection(upstream.settings.name)
    return upstream
  }

  statement (ctx: CallContext, upstream: BigQueryUpstream, sql: string, params: Statement['params'], defaultDataset?: DatasetReference, queryParameters?: QueryParameter[], location?: string): Statement {
    return {
      estimate: dryRunEstimate(upstream, sql, { defaultDataset, queryParameters, location: location ?? upstream.settings.location }),
      requestId: ctx.requestId,
      frontEnd: 'bigquery',
      principal: ctx.principal,
      connection: {
        name: upstream.settings.name,
        kind: 'bigquery',
        defaults: { database: defaultDataset?.projectId ?? upstream.project, schema: defaultDataset?.datasetId }
      },
      sql,
      params,
      client: ctx.client
    }
  }

  /** The caller's binding for a job id, or the 404 a job that does not exist would get. */
  async ownedJob (ctx: CallContext, upstream: BigQueryUpstream, projectId: string, jobId: string): Promise<JobBinding> {
    const binding = await this.registry.find(upstream.settings.name, 'job', jobId, ownerOf(ctx.principal))
    if (binding === undefined) throw new ERR_NOT_FOUND(`Job ${projectId}:${jobId}`)
    ctx.trip.sql = binding.statement.sql
    ctx.trip.decision = binding.admission.decision
    ctx.trip.upstreamId = jobId
    return binding
  }

  /** jobs.query */
  async query (ctx: CallContext, projectId: string, body: unknown): Promise<Answer> {
    const upstream = this.upstream(projectId, ctx)
    const { request, transfer } = checkQueryRequest(body)
    const statement = this.statement(ctx, upstream, request.query as string, statementParams(request.queryParameters), request.defaultDataset, request.queryParameters, request.location)
    const admitted = await this.#admit(ctx, statement, transfer, request.dryRun === true)
    if ('held' in admitted) {
      // Held: a Sluice job id now, and the client polls it as a query still running.
      const id = `sluice_${randomUUID().replace(/-/g, '')}`
      const location = request.location ?? upstream.settings.location
      await holdJob(this, ctx, upstream, { id, ...(location !== undefined && { location }), statement, configuration: queryConfiguration(request), approvalId: admitted.held })
      const answer = await this.getQueryResults(ctx, projectId, id, {
        timeoutMs: String(request.timeoutMs ?? 10_000),
        ...(request.maxResults !== undefined && { maxResults: String(request.maxResults) }),
        ...(location !== undefined && { location }),
        'formatOptions.useInt64Timestamp': request.formatOptions?.useInt64Timestamp === true ? 'true' : undefined,
        'formatOptions.timestampOutputFormat': request.formatOptions?.timestampOutputFormat as string | undefined
      })
      return { ...answer, kind: 'bigquery#queryResponse' }
    }
    const admission = admitted
    const run = this.pipeline.run(statement, admission, ctx.trip)
    try {
      return await this.#query(ctx, upstream, request, run)
    } finally {
      run.close()
    }
  }

  /** jobs.query of an admitted statement: the first answer, its job bound to the caller. */
  async #query (ctx: CallContext, upstream: BigQueryUpstream, request: QueryRequest, run: StatementRun): Promise<Answer> {
    const { statement, admission } = run
    const timestamps = timestampForm(request.formatOptions?.useInt64Timestamp, request.formatOptions?.timestampOutputFormat)
    const bounds = jobBounds(run)
    const left = run.remainingMs()
    const result = await upstreamCall(run, async () => await upstream.queryPage({
      ...request,
      // A small first answer (the client pages the rest): it is masked and recorded before it leaves.
      maxResults: request.maxResults ?? upstream.settings.firstPageRows,
      // Answered "not done yet" by the time the rule's timeout runs out, so Sluice can keep it.
      timeoutMs: left === undefined ? request.timeoutMs : Math.min(request.timeoutMs ?? 10_000, left),
      location: request.location ?? upstream.settings.location,
      // Sluice reads int64 timestamps (exact) and writes the form the client asked for.
      formatOptions: { ...request.formatOptions, useInt64Timestamp: true, timestampOutputFormat: undefined },
      maximumBytesBilled: tighter(request.maximumBytesBilled, bounds.maximumBytesBilled),
      jobTimeoutMs: tighter(request.jobTimeoutMs, bounds.jobTimeoutMs)
    }))
    const jobId = result.jobReference?.jobId
    const location = result.jobReference?.location ?? request.location ?? upstream.settings.location
    const bind = { owner: ownerOf(ctx.principal), connection: upstream.settings.name, projectId: upstream.project, location, statement, admission }
    // The upstream chose these ids for this caller; held by another principal, they are not
    // bound to this one (the store keeps the first owner), and its later reads answer 404.
    await afterRun(ctx, async () => {
      if (jobId !== undefined) await this.registry.bind({ ...bind, kind: 'job', id: jobId })
      // JOB_CREATION_OPTIONAL: a query BigQuery answered without creating a job has only a queryId.
      if (result.queryId !== undefined) await this.registry.bind({ ...bind, kind: 'query', id: result.queryId })
    })
    ctx.trip.upstreamId = jobId ?? result.queryId
    await this.#keepTimeout(upstream, run, jobId ?? '', location, result)
    return await this.#withRows(ctx, result, run, 0, timestamps, this.pageScope(ctx, upstream, jobId ?? result.queryId))
  }

  /**
   * A statement through the pipeline. A data transfer must, in addition, be allowed by an
   * enforcing policy: with no policy in force, or any other verdict, it is refused, and the
   * refusal says what the transfer is, what the policy (or masking) said and what to do instead.
   */
  async #admit (ctx: CallContext, statement: Statement, transfer: Transfer | undefined, dryRun = false): Promise<Admission | Held> {
    if (transfer !== undefined) {
      if (!transfer.allowable) {
        ctx.trip.sql = statement.sql
        refuse(transferRefusal(transfer))
      }
      if (this.pipeline.notEnforcing().includes('decide')) refuse(transferRefusal(transfer, 'no policy is enforcing, so no rule can allow it'))
    }
    try {
      return await this.pipeline.admit(statement, ctx.trip)
    } catch (err) {
      // Held for a human: the client waits for the decision in BigQuery's own protocol.
      // A dry run is never held: holding it would run the statement for real once approved.
      const approvalId = dryRun ? undefined : pendingApproval(err, ctx.trip)
      if (approvalId !== undefined) {
        await ctx.trip.onHeld?.(ctx.trip)
        return { held: approvalId }
      }
      if (transfer !== undefined && err instanceof PolicyError) refuse(transferRefusal(transfer, err.message))
      throw err
    }
  }

  /** jobs.insert: query jobs; transfer jobs only when a policy allows them. */
  async insertJob (ctx: CallContext, projectId: string, body: unknown): Promise<Job> {
    const upstream = this.upstream(projectId, ctx)
    const checked = checkJob(body)
    const owner = ownerOf(ctx.principal)
    let statement: Statement
    let job: Job
    if (checked.type === 'query') {
      const q = checked.job.configuration.query
      statement = this.statement(ctx, upstream, q.query as string, statementParams(q.queryParameters), q.defaultDataset, q.queryParameters, checked.job.jobReference?.location)
      job = checked.job
    } else {
      statement = this.statement(ctx, upstream, checked.transfer.sql, undefined)
      job = checked.job
    }
    const admitted = await this.#admit(ctx, statement, checked.transfer, job.configuration?.dryRun === true)
    const jobId = job.jobReference?.jobId ?? `sluice_${randomUUID().replace(/-/g, '')}`
    const location = job.jobReference?.location ?? upstream.settings.location
    if ('held' in admitted) {
      const held = await holdJob(this, ctx, upstream, { id: jobId, ...(location !== undefined && { location }), statement, configuration: job.configuration ?? {}, approvalId: admitted.held })
      if (held === undefined) throw new ERR_BIGQUERY_DUPLICATE_JOB(`${projectId}:${jobId}`)
      return heldJobResource(held, { state: 'pending' })
    }
    const admission = admitted
    const bind = { owner, connection: upstream.settings.name, projectId: upstream.project, kind: 'job' as const, statement, admission }
    // BigQuery refuses a reused job id with 409; not every upstream does (bqemulator reruns it),
    // and another principal's id must never be rerun into its results. The id is bound before
    // the upstream sees it, atomically in the store, so two replicas cannot both let it run.
    let binding = await this.registry.bind({ ...bind, id: jobId, location })
    if (binding === undefined) throw new ERR_BIGQUERY_DUPLICATE_JOB(`${projectId}:${jobId}`)
    const run = this.pipeline.run(statement, admission, ctx.trip)
    let created: Job
    try {
      const configuration = limitedConfiguration(job.configuration ?? {}, jobBounds(run))
      // BigQuery (and bqemulator) may answer a query that failed at once with a DONE job whose
      // errorResult quotes the value that broke it.
      created = releaseJob(run, await upstreamCall(run, async () => await upstream.insertJob({ ...job, jobReference: { projectId: upstream.project, jobId, location }, configuration })))
    } finally {
      run.close()
    }
    const id = created.jobReference?.jobId ?? jobId
    const placed = created.jobReference?.location ?? location
    // Where BigQuery placed the job is what later calls must name; an id it chose is bound too.
    await afterRun(ctx, async () => {
      if (id !== jobId || placed !== location) binding = await this.registry.bind({ ...bind, id, location: placed })
      const destination = created.configuration?.query?.destinationTable
      if (destination !== undefined && binding !== undefined) await this.registry.setDestination(binding, destination)
    })
    ctx.trip.upstreamId = id
    // The job's rows are released by later reads (getQueryResults, tabledata.list): they complete it.
    if (created.status?.state !== 'DONE' || created.status?.errorResult === undefined) ctx.trip.pending = true
    return created
  }

  /**
   * Caps the page to the policy's row limit, then releases its rows (and any upstream error
   * text in `errors`) through the pipeline.
   */
  async #withRows (ctx: CallContext, result: QueryResults<UpstreamRows>, run: StatementRun, start: number, timestamps: TimestampForm, scope: PageScope): Promise<Answer> {
    const admission = run.admission
    // A page of the admitted statement's result completes it; "not done yet" does not.
    if (admission.statementId !== undefined) ctx.trip.statementId ??= admission.statementId
    if (result.jobComplete === false) ctx.trip.pending = true
    const released = releaseQueryResults(run, result)
    // A statement that failed in a 200 answer (`errors`) is recorded with the text released.
    const failure = (released.errors as Array<{ message?: unknown }> | undefined)?.[0]?.message
    if (typeof failure === 'string') ctx.trip.errorMessage = failure
    const cut = await capPage(this.registry, scope, released, start, run)
    const capped = cut.limited === undefined ? cut.page : warnLimited(cut.page, cut.limited)
    // No rows member: nothing to encode, the answer is as the upstream gave it.
    if (capped.rows === undefined) return capped as unknown as Answer
    const rows = await releaseRows(run, {
      fields: capped.schema?.fields ?? [], rows: capped.rows, upstreamId: scope.resultId || undefined, timestamps
    })
    return { ...capped, rows }
  }

  /** jobs.getQueryResults */
  async getQueryResults (ctx: CallContext, projectId: string, jobId: string, asked: Record<string, string | undefined>): Promise<Answer> {
    const upstream = this.upstream(projectId, ctx)
    let binding = await this.ownedJob(ctx, upstream, projectId, jobId)
    let query = asked
    if (binding.held !== undefined) {
      // Waits for a decision up to the client's timeoutMs, as BigQuery waits for a running query.
      const until = Date.now() + heldWaitMs(query.timeoutMs)
      await waitForHeld(this, ctx, binding, until)
      const poll = await pollHeld(this, ctx, upstream, binding)
      if (poll.state === 'failed') throw poll.error
      if (poll.state !== 'released') {
        ctx.trip.pending = true
        return pendingResults(binding, 'bigquery#getQueryResultsResponse') as unknown as Answer
      }
      binding = poll.binding
      // Pending until this answer says otherwise: a complete page completes the statement.
      delete ctx.trip.pending
      // The job just started: what is left of the client's wait is the upstream's.
      query = { ...query, timeoutMs: String(Math.max(0, until - Date.now())) }
    }
    // The rule's timeout counts from when the job started, not from this poll.
    const run = this.pipeline.run(binding.statement, binding.admission, ctx.trip, { startedAt: binding.createdAt })
    try {
      return await this.#results(ctx, upstream, binding, jobId, query, run)
    } finally {
      run.close()
    }
  }

  /** One getQueryResults poll or page of a running (or finished) upstream job. */
  async #results (ctx: CallContext, upstream: BigQueryUpstream, binding: JobBinding, jobId: string, query: Record<string, string | undefined>, run: StatementRun): Promise<Answer> {
    const scope = this.pageScope(ctx, upstream, jobId)
    const start = await pageStartOf(this.registry, scope, query, run.cap?.rows)
    const left = run.remainingMs()
    const result = await upstreamCall(run, async () => await upstream.queryResultsPage(jobId, {
      pageToken: query.pageToken,
      startIndex: query.startIndex,
      maxResults: query.maxResults,
      // A poll waits no longer than what is left of the rule's timeout.
      timeoutMs: left === undefined ? query.timeoutMs : String(Math.min(Number(query.timeoutMs ?? 10_000) || 10_000, left)),
      location: query.location ?? binding.location,
      'formatOptions.useInt64Timestamp': true
    }))
    await this.#keepTimeout(upstream, run, result.jobReference?.jobId ?? binding.id, result.jobReference?.location ?? binding.location, result)
    const timestamps = timestampForm(query['formatOptions.useInt64Timestamp'], query['formatOptions.timestampOutputFormat'])
    return await this.#withRows(ctx, result, run, start, timestamps, scope)
  }

  /** Store writes after the upstream ran the statement (see afterRun below). */
  async afterRun<T> (ctx: CallContext, write: () => Promise<T>): Promise<T> {
    let out: T | undefined
    await afterRun(ctx, async () => { out = await write() })
    return out as T
  }

  /** Page tokens are placed per caller and per result: a job (its result table included) or a table. */
  pageScope (ctx: CallContext, upstream: BigQueryUpstream, resultId: string | undefined): PageScope {
    return { owner: ownerOf(ctx.principal), connection: upstream.settings.name, resultId: resultId ?? '' }
  }

  /**
   * The rule's statementTimeoutSeconds, kept by Sluice as well as sent as jobTimeoutMs: a job
   * still running when it has run out is cancelled upstream and answered as a job timeout.
   */
  async #keepTimeout (upstream: BigQueryUpstream, run: StatementRun, jobId: string, location: string | undefined, result: QueryResults<unknown>): Promise<void> {
    if (result.jobComplete !== false) return
    const timedOut = await this.cancelOverdue(upstream, run, jobId, location)
    if (timedOut !== undefined) throw timedOut
  }

  /**
   * A running job past its run's timeout is cancelled upstream (best effort); the answer is the
   * timeout error to report, or undefined while there is time left (or no timeout).
   */
  async cancelOverdue (upstream: BigQueryUpstream, run: StatementRun, jobId: string, location: string | undefined): Promise<Error | undefined> {
    if (run.remainingMs() !== 0) return undefined
    if (jobId !== '') await upstream.cancelJob(jobId, location).catch(() => undefined)
    return jobTimedOut(run)
  }
}

/**
 * Store writes after the upstream ran the statement: a store that fails now must not answer
 * "nothing was executed; retry" (the statement may have changed data, and a retrying client
 * would run it twice). It is BigQuery's 400 failedPrecondition, which no client retries.
 */
async function afterRun (ctx: CallContext, write: () => Promise<void>): Promise<void> {
  try {
    await write()
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'SLUICE_STORE_UNAVAILABLE') throw err
    const unrecorded = new ERR_RESULT_UNRECORDED(`its job binding could not be stored, request ${ctx.requestId}: ${(err as Error).message}`) as InstanceType<typeof ERR_RESULT_UNRECORDED> & { statusCode: number, reason: string }
    unrecorded.statusCode = 400
    unrecorded.reason = 'failedPrecondition'
    throw unrecorded
  }
}


/**
 * The statement's estimate by a dry run upstream (totalBytesProcessed, referenced tables), asked
 * at most once per statement (a cost-aware rule and the approval's preview share it); a dry run
 * that fails gives no estimate, which the rules asking for one treat as they say (fail closed).
 */
function dryRunEstimate (upstream: BigQueryUpstream, sql: string, options: { defaultDataset?: DatasetReference, queryParameters?: QueryParameter[], location?: string }): Estimator {
  let asked: Promise<WarehouseEstimate | undefined> | undefined
  return async () => {
    asked ??= upstream.dryRun(sql, options).then((dry) => {
      const bytes = dry.totalBytesProcessed === undefined ? undefined : Number(dry.totalBytesProcessed)
      return {
        ...(bytes !== undefined && Number.isFinite(bytes) && { bytes }),
        source: 'bigquery-dry-run' as const,
        detail: {
          totalBytesProcessed: dry.totalBytesProcessed ?? null,
          statementType: dry.statementType ?? null,
          referencedTables: dry.referencedTables.map((t) => `${t.projectId}.${t.datasetId}.${t.tableId}`)
        }
      }
    }, () => undefined)
    return await asked
  }
}
