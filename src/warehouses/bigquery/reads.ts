// jobs.get / cancel / list and the catalog reads (tabledata.list, tables.get/list,
// datasets.get/list). Job handles and anonymous result tables are the caller's own; a foreign
// or unknown one reads as 404. tabledata.list is a result path like any other: rows are
// released through the pipeline under the statement that produced them (a job's result table)
// or under a synthetic `SELECT … FROM table` admitted like any query (a named table).
import { ERR_NOT_FOUND } from '../../errors.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import { cancelHeld, heldJobResource, pollHeld } from './held.js'
import { ownerOf } from './registry.js'
import { errorScope, releaseJob, releasing } from './released-errors.js'
import { capPage, pageStartOf, projectFields, releaseRows, timestampForm } from './results.js'
import { upstreamCall } from './run-calls.js'
import type { CallContext, BigQueryService } from './service.js'
import type { BigQueryUpstream } from './upstream.js'
import type { StatementRun } from '../../pipeline.js'
import type { Job, TableDataList, TableReference } from './wire.js'
import type { EncodedRows } from './encoded-rows.js'

type Query = Record<string, string | undefined>

/** Anonymous (hidden) datasets hold query results; their names start with an underscore. */
export function isAnonymousDataset (datasetId: string): boolean {
  return datasetId.startsWith('_')
}

export async function getJob (svc: BigQueryService, ctx: CallContext, projectId: string, jobId: string, query: Query): Promise<Job> {
  const upstream = svc.upstream(projectId, ctx)
  let binding = await svc.ownedJob(ctx, upstream, projectId, jobId)
  if (binding.held !== undefined) {
    // Held for approval: PENDING while nobody decided; approved, this poll starts it.
    const poll = await pollHeld(svc, ctx, upstream, binding)
    if (poll.state !== 'released') {
      if (poll.state !== 'failed') ctx.trip.pending = true
      return heldJobResource(binding, poll)
    }
    binding = poll.binding
  }
  // The rule's timeout counts from when the job started, not from this read.
  const run = svc.pipeline.run(binding.statement, binding.admission, ctx.trip, { startedAt: binding.createdAt })
  let job: Job
  try {
    const location = binding.location
    job = releaseJob(run, await upstreamCall(run, async () => await upstream.getJob(jobId, query.location ?? location)))
    // Still running past the rule's timeout: cancelled, and reported as BigQuery reports a job
    // that timed out (DONE with errorResult reason timeout), which clients raise.
    if (job.status !== undefined && job.status.state !== 'DONE') {
      const timedOut = await svc.cancelOverdue(upstream, run, jobId, job.jobReference?.location ?? location)
      if (timedOut !== undefined) {
        const error = { reason: 'timeout', message: timedOut.message }
        job = { ...job, status: { ...job.status, state: 'DONE', errorResult: error, errors: [error] } }
        ctx.trip.errorCode = 'SLUICE_STATEMENT_TIMEOUT'
        ctx.trip.errorMessage = timedOut.message
      }
    }
  } finally {
    run.close()
  }
  const destination = job.configuration?.query?.destinationTable
  // jobs.query does not name the result table; the job resource does. Clients that page through
  // tabledata.list (google-cloud-bigquery, bq) read the job first, so the table is bound here.
  if (destination !== undefined) await svc.registry.setDestination(binding, destination)
  return job
}

export async function cancelJob (svc: BigQueryService, ctx: CallContext, projectId: string, jobId: string, query: Query): Promise<unknown> {
  const upstream = svc.upstream(projectId, ctx)
  let binding = await svc.ownedJob(ctx, upstream, projectId, jobId)
  if (binding.held !== undefined) {
    // A held job's cancel withdraws its approval; one released meanwhile is cancelled upstream.
    const withdrawn = await cancelHeld(svc, ctx, upstream, binding)
    if (withdrawn !== undefined) return withdrawn
    binding = await svc.ownedJob(ctx, upstream, projectId, jobId)
  }
  const scope = errorScope(svc.pipeline, binding.statement, binding.admission)
  const answer = await releasing(scope, async () => await upstream.cancelJob(jobId, query.location ?? binding.location))
  return answer.job === undefined ? answer : { ...answer, job: releaseJob(scope, answer.job) }
}

/** jobs.list: the caller's jobs only (and the child jobs of the caller's scripts). */
export async function listJobs (svc: BigQueryService, ctx: CallContext, projectId: string, query: Query): Promise<unknown> {
  const upstream = svc.upstream(projectId, ctx)
  const owner = ownerOf(ctx.principal)
  const connection = upstream.settings.name
  const page = await upstream.listJobs({
    maxResults: query.maxResults,
    pageToken: query.pageToken,
    projection: query.projection,
    stateFilter: query.stateFilter,
    minCreationTime: query.minCreationTime,
    maxCreationTime: query.maxCreationTime,
    parentJobId: query.parentJobId
  })
  // One store lookup for the page: the listed ids and their parents.
  const all = page.jobs ?? []
  const ids = all.flatMap((job) => [job.jobReference?.jobId, job.statistics?.parentJobId]).filter((id): id is string => id !== undefined)
  const owned = await svc.registry.ownedAmong(connection, owner, ids)
  const jobs: Job[] = []
  for (const job of all) {
    const id = job.jobReference?.jobId
    if (id === undefined) continue
    let binding = owned.get(id)
    const parent = job.statistics?.parentJobId === undefined ? undefined : owned.get(job.statistics.parentJobId)
    // A child job of the caller's script is the caller's, under the script's statement.
    if (binding === undefined && parent !== undefined) {
      binding = await svc.registry.bind({ ...parent, id, kind: 'job', location: job.jobReference?.location ?? parent.location, destination: undefined })
    }
    if (binding === undefined) continue
    // Each job's error text is released under the statement that job ran.
    jobs.push(releaseJob(errorScope(svc.pipeline, binding.statement, binding.admission), job))
  }
  return { ...page, jobs }
}

export async function listTableData (svc: BigQueryService, ctx: CallContext, ref: TableReference, query: Query): Promise<TableDataList<EncodedRows>> {
  const upstream = svc.upstream(ref.projectId, ctx)
  const table = { projectId: upstream.project, datasetId: ref.datasetId, tableId: ref.tableId }
  const owner = ownerOf(ctx.principal)
  const { mine: resultOf, held } = await svc.registry.tableOwner(upstream.settings.name, table, owner)
  let statement: Statement
  let admission: Admission
  if (resultOf !== undefined || held || isAnonymousDataset(ref.datasetId)) {
    if (resultOf === undefined) throw new ERR_NOT_FOUND(`Table ${ref.projectId}:${ref.datasetId}.${ref.tableId}`)
    statement = resultOf.statement
    admission = resultOf.admission
    ctx.trip.sql = statement.sql
    ctx.trip.decision = admission.decision
  } else {
    const columns = query.selectedFields === undefined || query.selectedFields.trim() === ''
      ? '*'
      : query.selectedFields.split(',').map((f) => f.trim().split('.').map(quoteIdentifier).join('.')).join(', ')
    const sql = `SELECT ${columns} FROM ${quoteIdentifier(`${table.projectId}.${table.datasetId}.${table.tableId}`)}`
    statement = svc.statement(ctx, upstream, sql, undefined)
    admission = await svc.pipeline.admit(statement, ctx.trip)
  }
  // tabledata.list pages through the whole table by its own maxResults / startIndex / pageToken:
  // autoLimit (a stand-in for a LIMIT on a SELECT) does not cut it; maxRows does.
  const run = svc.pipeline.run(statement, admission, ctx.trip, { paged: true })
  try {
    return await readTableData(svc, ctx, upstream, table, resultOf?.id, query, run)
  } finally {
    run.close()
  }
}

/** One tabledata.list page under its run: the table's rows, capped and released. */
async function readTableData (svc: BigQueryService, ctx: CallContext, upstream: BigQueryUpstream, table: TableReference, resultId: string | undefined, query: Query, run: StatementRun): Promise<TableDataList<EncodedRows>> {
  const upstreamId = resultId ?? `${table.projectId}:${table.datasetId}.${table.tableId}`
  const scope = svc.pageScope(ctx, upstream, upstreamId)
  const start = await pageStartOf(svc.registry, scope, query, run.cap?.rows)
  const meta = await upstreamCall(run, async () => await upstream.getTable(table))
  const fields = projectFields(meta.schema?.fields ?? [], query.selectedFields)
  const cut = await capPage(svc.registry, scope, await upstreamCall(run, async () => await upstream.tableDataPage(table, {
    maxResults: query.maxResults,
    pageToken: query.pageToken,
    startIndex: query.startIndex,
    selectedFields: query.selectedFields,
    'formatOptions.useInt64Timestamp': true
  })), start, run)
  // TableDataList has no field for a warning: the true totalRows and the missing pageToken say it.
  const data = cut.page
  // No rows member: nothing to encode, the page is as the upstream gave it.
  if (data.rows === undefined) return data as unknown as TableDataList<EncodedRows>
  const rows = await releaseRows(run, {
    fields,
    rows: data.rows,
    upstreamId,
    timestamps: timestampForm(query['formatOptions.useInt64Timestamp'], query['formatOptions.timestampOutputFormat'])
  })
  return { ...data, rows }
}

function quoteIdentifier (name: string): string {
  return `\`${name.replace(/[`\\]/g, '\\$&')}\``
}

export async function getTable (svc: BigQueryService, ctx: CallContext, ref: TableReference, query: Query): Promise<unknown> {
  const upstream = svc.upstream(ref.projectId, ctx)
  const table = { projectId: upstream.project, datasetId: ref.datasetId, tableId: ref.tableId }
  if (isAnonymousDataset(ref.datasetId)) {
    const { mine } = await svc.registry.tableOwner(upstream.settings.name, table, ownerOf(ctx.principal))
    if (mine === undefined) throw new ERR_NOT_FOUND(`Table ${ref.projectId}:${ref.datasetId}.${ref.tableId}`)
  }
  return await upstream.getTable(table, { selectedFields: query.selectedFields, view: query.view })
}

export async function listTables (svc: BigQueryService, ctx: CallContext, projectId: string, datasetId: string, query: Query): Promise<unknown> {
  const upstream = svc.upstream(projectId, ctx)
  if (isAnonymousDataset(datasetId)) throw new ERR_NOT_FOUND(`Dataset ${projectId}:${datasetId}`)
  return await upstream.listTables(datasetId, { maxResults: query.maxResults, pageToken: query.pageToken })
}

export async function getDataset (svc: BigQueryService, ctx: CallContext, projectId: string, datasetId: string, query: Query): Promise<unknown> {
  const upstream = svc.upstream(projectId, ctx)
  if (isAnonymousDataset(datasetId)) throw new ERR_NOT_FOUND(`Dataset ${projectId}:${datasetId}`)
  return await upstream.getDataset(datasetId, { datasetView: query.datasetView })
}

export async function listDatasets (svc: BigQueryService, ctx: CallContext, projectId: string, query: Query): Promise<unknown> {
  const upstream = svc.upstream(projectId, ctx)
  const page = await upstream.listDatasets({ maxResults: query.maxResults, pageToken: query.pageToken, filter: query.filter })
  // Hidden result datasets hold every caller's anonymous tables; they are never listed.
  const datasets = page.datasets?.filter((d) => !isAnonymousDataset(d.datasetReference?.datasetId ?? '_'))
  return datasets === undefined ? page : { ...page, datasets }
}
