// The warehouse port (src/warehouses/port.ts) for a BigQuery connection, on the REST client the
// front end uses: jobs.query with the rule's limits (jobTimeoutMs, maximumBytesBilled), polled
// with getQueryResults until the job is done, each page of f/v rows decoded to neutral rows
// (codec.ts) as it is pulled, a slice of ~64 KB at a time (upstream-rows.ts); cancelling
// cancels the job. The catalogue is the REST API's own datasets / tables resources.
import type { Principal } from '../../identity/principal.js'
import type { NeutralResult, ResultPage } from '../../pipeline/types.js'
import type { CatalogColumn, CatalogTable, PortExecution, PortStatement, WarehousePort } from '../port.js'
import { columnsOf } from './codec.js'
import { upstreamError, type BigQueryUpstream } from './upstream.js'
import { neutralPages } from './upstream-rows.js'
import type { TableFieldSchema } from './wire.js'

/** How long one jobs.query / getQueryResults call may hold its answer. */
const POLL_MS = 10_000

export class BigQueryPort implements WarehousePort {
  readonly kind = 'bigquery' as const
  readonly #upstream: BigQueryUpstream

  constructor (upstream: BigQueryUpstream) {
    this.#upstream = upstream
  }

  get name (): string { return this.#upstream.settings.name }

  get connection (): WarehousePort['connection'] {
    return { name: this.name, kind: 'bigquery', defaults: { database: this.#upstream.project } }
  }

  async execute (statement: PortStatement): Promise<PortExecution> {
    const upstream = this.#upstream
    const location = upstream.settings.location
    const { statementTimeoutSeconds: seconds, maximumBytesBilled } = statement.limits
    let results = await upstream.queryPage({
      query: statement.sql,
      useLegacySql: false,
      timeoutMs: POLL_MS,
      ...(location !== undefined && { location }),
      formatOptions: { useInt64Timestamp: true },
      ...(seconds !== undefined && { jobTimeoutMs: String(seconds * 1000) }),
      ...(maximumBytesBilled !== undefined && { maximumBytesBilled: String(maximumBytesBilled) })
    })
    const jobId = results.jobReference?.jobId
    const jobLocation = results.jobReference?.location ?? location
    const cancel = async (): Promise<void> => {
      if (jobId !== undefined) await upstream.cancelJob(jobId, jobLocation).catch(() => undefined)
    }
    const onAbort = (): void => { void cancel() }
    statement.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      while (results.jobComplete === false && jobId !== undefined) {
        if (statement.signal?.aborted === true) throw new Error('the statement was cancelled')
        results = await upstream.queryResultsPage(jobId, { timeoutMs: POLL_MS, location: jobLocation, 'formatOptions.useInt64Timestamp': true })
      }
    } finally {
      statement.signal?.removeEventListener('abort', onAbort)
    }
    // A statement that failed in a 200 answer (`errors`): refused like a failed call, its text kept apart.
    const failed = (results.errors as Array<{ message?: unknown, reason?: unknown }> | undefined)?.[0]
    if (failed !== undefined) throw upstreamError(this.name, 400, typeof failed.reason === 'string' ? failed.reason : 'invalidQuery', typeof failed.message === 'string' ? failed.message : 'the statement failed')
    const fields: TableFieldSchema[] = results.schema?.fields ?? []
    const first = results
    async function * pages (): AsyncIterable<ResultPage> {
      let page = first
      for (;;) {
        yield * neutralPages(fields, page.rows)
        const token = page.pageToken
        if (token === undefined || token === '' || jobId === undefined) return
        page = await upstream.queryResultsPage(jobId, { pageToken: token, location: jobLocation, 'formatOptions.useInt64Timestamp': true })
      }
    }
    const result: NeutralResult = { schema: { columns: columnsOf(fields) }, pages: pages() }
    const upstreamId = jobId ?? results.queryId
    if (upstreamId !== undefined) result.upstreamId = upstreamId
    const affected = (results as { numDmlAffectedRows?: string }).numDmlAffectedRows
    if (affected !== undefined) result.rowsAffected = Number(affected)
    return { result, cancel }
  }

  async listSchemas (_principal: Principal): Promise<string[]> {
    const out: string[] = []
    let pageToken: string | undefined
    do {
      const page = await this.#upstream.listDatasets({ maxResults: 1000, pageToken })
      for (const d of page.datasets ?? []) if (d.datasetReference?.datasetId !== undefined) out.push(d.datasetReference.datasetId)
      pageToken = typeof page.nextPageToken === 'string' && page.nextPageToken !== '' ? page.nextPageToken : undefined
    } while (pageToken !== undefined)
    return out.sort()
  }

  async listTables (_principal: Principal, schema: string): Promise<CatalogTable[]> {
    const out: CatalogTable[] = []
    let pageToken: string | undefined
    do {
      const page = await this.#upstream.listTables(schema, { maxResults: 1000, pageToken }) as { tables?: Array<{ tableReference?: { tableId?: string }, type?: string }>, nextPageToken?: string }
      for (const t of page.tables ?? []) {
        const name = t.tableReference?.tableId
        if (name !== undefined) out.push({ schema, name, ...(t.type !== undefined && { type: t.type }) })
      }
      pageToken = typeof page.nextPageToken === 'string' && page.nextPageToken !== '' ? page.nextPageToken : undefined
    } while (pageToken !== undefined)
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  async describeTable (_principal: Principal, schema: string, table: string): Promise<CatalogColumn[] | undefined> {
    let fields: TableFieldSchema[]
    try {
      fields = (await this.#upstream.getTable({ datasetId: schema, tableId: table })).schema?.fields ?? []
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined
      throw err
    }
    // Record fields are listed by their path (`address.city`): masking rules can name them.
    const out: CatalogColumn[] = []
    const walk = (list: TableFieldSchema[], prefix: string): void => {
      for (const f of list) {
        const repeated = f.mode === 'REPEATED'
        out.push({ name: `${prefix}${f.name}`, type: repeated ? `ARRAY<${f.type}>` : f.type, nullable: f.mode !== 'REQUIRED' })
        if (f.fields !== undefined) walk(f.fields, `${prefix}${f.name}.`)
      }
    }
    walk(fields, '')
    return out
  }

  qualified (schema: string, table: string): string {
    return `${this.#upstream.project}.${schema}.${table}`
  }

  selectAll (schema: string, table: string): string {
    return `SELECT * FROM \`${this.#upstream.project}.${schema}.${table}\``
  }

  async close (): Promise<void> {}
}
