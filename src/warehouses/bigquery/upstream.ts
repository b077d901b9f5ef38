// The upstream BigQuery REST v2 client of one connection: undici for HTTP, the connection's own
// credential (service-account key → OAuth access token via google-auth-library; ambient
// credentials; none for an emulator). Agents never hold a Google credential: their bearer
// token ends at Sluice, and this client sends Sluice's.
import { GoogleAuth, JWT } from 'google-auth-library'
import { request, type Dispatcher } from 'undici'
import { ERR_BIGQUERY_UPSTREAM, ERR_UPSTREAM_UNAVAILABLE } from '../../errors.js'
import type { BigQuerySettings } from './connections.js'
import { neverSent, transportText } from '../unsent.js'
import { readRowsAnswer, type UpstreamRows } from './upstream-rows.js'
import { answerStart } from '../json-rows.js'
import type { DatasetReference, Job, QueryParameter, QueryRequest, QueryResults, Table, TableDataList, TableReference, TableSchema } from './wire.js'

const SCOPES = ['https://www.googleapis.com/auth/bigquery']

export type Query = Record<string, string | number | boolean | undefined>

/** An upstream error as the front end renders it: the upstream's status and reason, kept. */
export type BigQueryUpstreamError = InstanceType<typeof ERR_BIGQUERY_UPSTREAM> & {
  statusCode: number
  reason: string
  /** The upstream's own text, until the pipeline released it; absent on a released error. */
  upstream?: { connection: string, message: string }
}

/**
 * BigQuery's wording can quote cell values ("Bad int64 value: …", ERROR(col)); it is kept apart
 * (not enumerable: loggers and serialisers skip it) for the front end to release through the
 * pipeline, which rebuilds the error with the released text (`released`).
 */
export function upstreamError (connection: string, status: number, reason: string, message: string, released = false): BigQueryUpstreamError {
  const err = new ERR_BIGQUERY_UPSTREAM(connection, message) as BigQueryUpstreamError
  // The client's mistakes (bad SQL, unknown table, duplicate job id) keep their status and
  // reason so client libraries react as they would to BigQuery; upstream failures are 502.
  err.statusCode = status >= 400 && status < 500 && status !== 401 && status !== 403 ? status : 502
  err.reason = err.statusCode === 502 ? 'backendError' : reason
  if (!released) Object.defineProperty(err, 'upstream', { value: { connection, message }, enumerable: false })
  return err
}

export interface DryRunResult {
  statementType?: string
  referencedTables: TableReference[]
  totalBytesProcessed?: string
  schema?: TableSchema
}

export interface UpstreamOptions {
  dispatcher?: Dispatcher
  /** Replaces the credential's token source entirely. */
  accessToken?: () => Promise<string | undefined>
  /** The fetch google-auth-library uses to obtain access tokens (a proxy; tests). */
  tokenFetch?: typeof fetch
  /** Longest wait for an upstream answer; jobs.query may hold up to its timeoutMs. */
  timeoutMs?: number
}

function tokenSource (settings: BigQuerySettings, tokenFetch: typeof fetch | undefined): () => Promise<string | undefined> {
  const { auth } = settings
  if (auth.kind === 'none') return async () => undefined
  const transporterOptions = tokenFetch === undefined ? undefined : { fetchImplementation: tokenFetch }
  const client = auth.kind === 'service-account'
    ? new JWT({ email: auth.key.client_email, key: auth.key.private_key, keyId: auth.key.private_key_id, scopes: SCOPES, transporterOptions })
    : new GoogleAuth({ scopes: SCOPES, clientOptions: { transporterOptions } })
  // google-auth-library caches the token and refreshes it shortly before it expires.
  return async () => {
    const token = await client.getAccessToken()
    return typeof token === 'string' ? token : token?.token ?? undefined
  }
}

export class BigQueryUpstream {
  readonly settings: BigQuerySettings
  readonly #token: () => Promise<string | undefined>
  readonly #dispatcher: Dispatcher | undefined
  readonly #timeoutMs: number

  constructor (settings: BigQuerySettings, options: UpstreamOptions = {}) {
    this.settings = settings
    this.#token = options.accessToken ?? tokenSource(settings, options.tokenFetch)
    this.#dispatcher = options.dispatcher
    this.#timeoutMs = options.timeoutMs ?? 300_000
  }

  get project (): string {
    return this.settings.project
  }

  /** One REST call; `path` is relative to `/bigquery/v2/projects/<project>/`. */
  async call<T> (method: 'GET' | 'POST', path: string, options: { query?: Query, body?: unknown } = {}): Promise<T> {
    const { statusCode, body } = await this.#send(method, path, options)
    return this.#parsed(statusCode, body) as T
  }

  /**
   * A call whose answer carries result rows: the answer parsed but for its `rows`, which stay
   * bytes to be read a slice at a time (upstream-rows.ts); an answer that is not well-formed is
   * refused before any row of it is released.
   */
  async callRows<T extends { rows?: UpstreamRows }> (method: 'GET' | 'POST', path: string, options: { query?: Query, body?: unknown } = {}): Promise<T> {
    const { statusCode, body } = await this.#send(method, path, options)
    if (statusCode >= 400) return this.#parsed(statusCode, body) as never
    return readRowsAnswer<T>(body, (what) => this.#error(502, 'backendError', `answered HTTP ${statusCode} with a body that is not JSON rows: ${what}`))
  }

  async #send (method: 'GET' | 'POST', path: string, options: { query?: Query, body?: unknown }): Promise<{ statusCode: number, body: Buffer }> {
    const url = new URL(`${this.settings.url}/bigquery/v2/projects/${encodeURIComponent(this.project)}/${path}`)
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value))
    }
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'sluice-gateway' }
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    let token: string | undefined
    try {
      token = await this.#token()
    } catch (err) {
      throw new ERR_UPSTREAM_UNAVAILABLE(this.settings.name, `cannot obtain an access token: ${(err as Error).message}`)
    }
    if (token !== undefined) headers.authorization = `Bearer ${token}`

    let res: Dispatcher.ResponseData
    try {
      res = await request(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs
      })
    } catch (err) {
      // Retryable only when the request certainly never left: once sent, a job may have started.
      if (neverSent(err)) throw new ERR_UPSTREAM_UNAVAILABLE(this.settings.name, transportText(err))
      throw this.#error(502, 'backendError', `the connection failed while the request was in flight, so it may have run: ${transportText(err)}`)
    }
    return { statusCode: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) }
  }

  /** A whole answer parsed; an error status thrown as the upstream's error. */
  #parsed (statusCode: number, body: Buffer): unknown {
    // Read as text reads it: a byte order mark dropped.
    const text = body.toString('utf8', answerStart(body))
    let json: unknown
    try {
      json = text === '' ? {} : JSON.parse(text)
    } catch {
      throw this.#error(502, 'backendError', `answered HTTP ${statusCode} with a body that is not JSON`)
    }
    if (statusCode >= 400) {
      const error = (json as { error?: { message?: string, errors?: Array<{ reason?: string }> } }).error
      throw this.#error(statusCode, error?.errors?.[0]?.reason ?? 'backendError', error?.message ?? `HTTP ${statusCode}`)
    }
    return json
  }

  #error (status: number, reason: string, message: string): BigQueryUpstreamError {
    return upstreamError(this.settings.name, status, reason, message)
  }

  async insertJob (job: Job): Promise<Job> {
    return await this.call('POST', 'jobs', { body: job })
  }

  async getJob (jobId: string, location?: string): Promise<Job> {
    return await this.call('GET', `jobs/${encodeURIComponent(jobId)}`, { query: { location } })
  }

  async cancelJob (jobId: string, location?: string): Promise<{ job?: Job }> {
    return await this.call('POST', `jobs/${encodeURIComponent(jobId)}/cancel`, { query: { location } })
  }

  async listJobs (query: Query): Promise<{ jobs?: Job[], nextPageToken?: string, [key: string]: unknown }> {
    return await this.call('GET', 'jobs', { query })
  }

  /** jobs.query, its rows left as bytes (the front end releases them a slice at a time). */
  async queryPage (body: QueryRequest): Promise<QueryResults<UpstreamRows>> {
    return await this.callRows('POST', 'queries', { body })
  }

  /** getQueryResults, its rows left as bytes. */
  async queryResultsPage (jobId: string, query: Query): Promise<QueryResults<UpstreamRows>> {
    return await this.callRows('GET', `queries/${encodeURIComponent(jobId)}`, { query })
  }

  /** tabledata.list, its rows left as bytes. */
  async tableDataPage (ref: { datasetId: string, tableId: string }, query: Query): Promise<TableDataList<UpstreamRows>> {
    return await this.callRows('GET', tableDataPath(ref), { query })
  }

  async getTable (ref: { datasetId: string, tableId: string }, query: Query = {}): Promise<Table> {
    return await this.call('GET', `datasets/${encodeURIComponent(ref.datasetId)}/tables/${encodeURIComponent(ref.tableId)}`, { query })
  }

  async listTables (datasetId: string, query: Query): Promise<Record<string, unknown>> {
    return await this.call('GET', `datasets/${encodeURIComponent(datasetId)}/tables`, { query })
  }

  async getDataset (datasetId: string, query: Query = {}): Promise<Record<string, unknown>> {
    return await this.call('GET', `datasets/${encodeURIComponent(datasetId)}`, { query })
  }

  async listDatasets (query: Query): Promise<{ datasets?: Array<{ datasetReference?: DatasetReference }>, [key: string]: unknown }> {
    return await this.call('GET', 'datasets', { query })
  }

  /**
   * Asks BigQuery what a statement would do without running it, for the policy stage: its
   * statement type, the tables it reads, and the bytes it would scan.
   */
  async dryRun (sql: string, options: { defaultDataset?: DatasetReference, queryParameters?: QueryParameter[], location?: string } = {}): Promise<DryRunResult> {
    const job = await this.insertJob({
      jobReference: { projectId: this.project, location: options.location ?? this.settings.location },
      configuration: {
        dryRun: true,
        query: { query: sql, useLegacySql: false, defaultDataset: options.defaultDataset, queryParameters: options.queryParameters }
      }
    })
    const stats = job.statistics?.query
    return {
      statementType: stats?.statementType,
      referencedTables: stats?.referencedTables ?? [],
      totalBytesProcessed: stats?.totalBytesProcessed ?? (job.statistics as { totalBytesProcessed?: string } | undefined)?.totalBytesProcessed,
      schema: stats?.schema
    }
  }
}

function tableDataPath (ref: { datasetId: string, tableId: string }): string {
  return `datasets/${encodeURIComponent(ref.datasetId)}/tables/${encodeURIComponent(ref.tableId)}/data`
}
