// What a client may ask BigQuery to do through Sluice, checked before anything runs upstream.
// Query jobs are served. Data transfers (extract, copy and load jobs, EXPORT DATA / LOAD DATA)
// move data around masking or write with Sluice's credential: they are refused unless an
// enforcing policy explicitly allows the equivalent SQL statement built here (EXPORT DATA,
// INSERT … SELECT, LOAD DATA), so the policy sees their tables like any other statement's.
// A destination table, media uploads, external table definitions, legacy SQL and options Sluice
// does not know are refused outright (fail closed), naming what was refused.
import { ERR_BAD_REQUEST, ERR_BIGQUERY_REFUSED } from '../../errors.js'
import type { Job, JobConfigurationQuery, QueryParameter, QueryRequest, TableReference } from './wire.js'

/** jobs.query body keys that are forwarded as they are. */
const QUERY_REQUEST_KEYS = new Set([
  'kind', 'query', 'maxResults', 'defaultDataset', 'timeoutMs', 'dryRun', 'preserveNulls', 'useQueryCache',
  'useLegacySql', 'parameterMode', 'queryParameters', 'location', 'formatOptions', 'labels',
  'maximumBytesBilled', 'requestId', 'jobCreationMode', 'jobTimeoutMs', 'maxSlots', 'reservation',
  'destinationEncryptionConfiguration', 'continuous', 'writeIncrementalResults'
])

/** configuration.query keys of a query job that are forwarded as they are. */
const QUERY_JOB_KEYS = new Set([
  'query', 'useLegacySql', 'defaultDataset', 'queryParameters', 'parameterMode', 'useQueryCache', 'priority',
  'maximumBytesBilled', 'maximumBillingTier', 'preserveNulls', 'flattenResults', 'scriptOptions',
  'destinationEncryptionConfiguration', 'continuous', 'allowLargeResults', 'writeIncrementalResults'
])

/** configuration keys of a job besides its type. */
const JOB_KEYS = new Set(['query', 'load', 'extract', 'copy', 'dryRun', 'jobTimeoutMs', 'labels', 'jobType', 'reservation', 'maxSlots'])

const TRANSFER_REASONS = {
  load: 'load jobs are refused by default: they write into the warehouse with the gateway\'s credential',
  extract: 'extract jobs are refused by default: they export table data out of the warehouse, around masking',
  copy: 'copy jobs are refused by default: they copy table data around masking',
  exportData: 'EXPORT DATA is refused by default: it writes query results to storage around masking',
  loadData: 'LOAD DATA is refused by default: it loads files into the warehouse with the gateway\'s credential'
} as const
const TRANSFER_TYPES = ['load', 'extract', 'copy'] as const

/** A data transfer: refused unless an enforcing policy allows `sql`, the statement it amounts to. */
export interface Transfer {
  reason: string
  sql: string
}

export type QueryJob = Job & { configuration: { query: JobConfigurationQuery } }

export type CheckedJob =
  | { type: 'query', job: QueryJob, transfer?: Transfer }
  | { type: 'transfer', job: Job, transfer: Transfer }

const REFUSED_QUERY_OPTIONS: Record<string, string> = {
  destinationTable: 'a destinationTable on a query is refused: results stay in BigQuery\'s anonymous result table and reach you through Sluice only',
  writeDisposition: 'a writeDisposition on a query is refused: queries through Sluice do not write tables',
  createDisposition: 'a createDisposition on a query is refused: queries through Sluice do not create tables',
  tableDefinitions: 'external tableDefinitions are refused: they read storage with the gateway\'s credential',
  userDefinedFunctionResources: 'userDefinedFunctionResources are refused: they load code from storage with the gateway\'s credential',
  schemaUpdateOptions: 'schemaUpdateOptions are refused: queries through Sluice do not write tables',
  timePartitioning: 'timePartitioning is refused: queries through Sluice do not write tables',
  rangePartitioning: 'rangePartitioning is refused: queries through Sluice do not write tables',
  clustering: 'clustering is refused: queries through Sluice do not write tables',
  createSession: 'createSession is refused: BigQuery sessions are not available through Sluice',
  connectionProperties: 'connectionProperties are refused: BigQuery sessions and session settings are not available through Sluice'
}

const LEGACY_SQL = 'legacy SQL is refused: Sluice analyses GoogleSQL only; send useLegacySql: false (bq: --nouse_legacy_sql)'

export function refuse (reason: string): never {
  throw new ERR_BIGQUERY_REFUSED(reason)
}

function checkQueryOptions (options: Record<string, unknown>, allowed: Set<string>, where: string): Transfer | undefined {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue
    const refusal = REFUSED_QUERY_OPTIONS[key]
    if (refusal !== undefined) refuse(refusal)
    if (!allowed.has(key)) refuse(`${where}.${key} is not an option Sluice forwards`)
  }
  if (options.useLegacySql === true) refuse(LEGACY_SQL)
  if (options.continuous === true) refuse('continuous queries are refused: they run without end and write elsewhere')
  if (options.allowLargeResults === true) refuse('allowLargeResults needs a destinationTable, which is refused through Sluice')
  return checkSql(options.query)
}

function checkSql (sql: unknown): Transfer | undefined {
  if (typeof sql !== 'string' || sql.trim() === '') throw new ERR_BAD_REQUEST('a query is required')
  const code = withoutComments(sql)
  if (/\bEXPORT\s+DATA\b/i.test(code)) return { reason: TRANSFER_REASONS.exportData, sql }
  if (/\bLOAD\s+DATA\b/i.test(code)) return { reason: TRANSFER_REASONS.loadData, sql }
  return undefined
}

/** Validates a jobs.query body; returns it with GoogleSQL made explicit. */
export function checkQueryRequest (body: unknown): { request: QueryRequest, transfer?: Transfer } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ERR_BAD_REQUEST('the request body must be a QueryRequest JSON object')
  const request = body as QueryRequest
  const transfer = checkQueryOptions(request, QUERY_REQUEST_KEYS, 'QueryRequest')
  // The API's default is legacy SQL; what Sluice analysed as GoogleSQL must run as GoogleSQL.
  return { request: { ...request, useLegacySql: false }, transfer }
}

/** Validates a jobs.insert body: a query job, or a transfer job for the policy to judge. */
export function checkJob (body: unknown): CheckedJob {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ERR_BAD_REQUEST('the request body must be a Job JSON object')
  const job = body as Job
  const configuration = job.configuration
  if (typeof configuration !== 'object' || configuration === null) throw new ERR_BAD_REQUEST('Job.configuration is required')
  for (const key of Object.keys(configuration)) {
    if (!JOB_KEYS.has(key) && configuration[key] !== undefined) refuse(`Job.configuration.${key} is not a job type or option Sluice forwards; only query jobs are served`)
  }
  const types = [...TRANSFER_TYPES, 'query'].filter((t) => configuration[t] !== undefined && configuration[t] !== null)
  if (types.length !== 1) refuse(`a job must have exactly one of query, load, extract, copy; got ${types.join(', ') || 'none'}`)
  const type = types[0] as 'query' | typeof TRANSFER_TYPES[number]
  if (configuration.jobType !== undefined && String(configuration.jobType).toLowerCase() !== type) refuse(`jobType ${String(configuration.jobType)} does not match the ${type} configuration`)
  if (type !== 'query') return { type: 'transfer', job, transfer: transferOf(type, configuration[type] as Record<string, unknown>) }
  const transfer = checkQueryOptions(configuration.query as JobConfigurationQuery, QUERY_JOB_KEYS, 'JobConfigurationQuery')
  const query = { ...job, configuration: { ...configuration, query: { ...configuration.query, useLegacySql: false } } } as QueryJob
  return { type: 'query', job: query, transfer }
}

/** The SQL statement a transfer job amounts to, so the policy judges its tables and kind. */
function transferOf (type: typeof TRANSFER_TYPES[number], config: Record<string, unknown>): Transfer {
  const reason = TRANSFER_REASONS[type]
  if (type === 'extract') {
    const source = tableRef(config.sourceTable, 'extract.sourceTable (model extracts are refused)')
    const uris = stringList(config.destinationUris ?? (config.destinationUri === undefined ? undefined : [config.destinationUri]), 'extract.destinationUris')
    const format = typeof config.destinationFormat === 'string' ? config.destinationFormat : 'CSV'
    return { reason, sql: `EXPORT DATA OPTIONS(uri=${literal(uris[0] as string)}, format=${literal(format)}) AS SELECT * FROM ${source}` }
  }
  if (type === 'copy') {
    const sources = Array.isArray(config.sourceTables) ? config.sourceTables : [config.sourceTable]
    const selects = sources.map((s) => `SELECT * FROM ${tableRef(s, 'copy.sourceTables')}`)
    return { reason, sql: `INSERT INTO ${tableRef(config.destinationTable, 'copy.destinationTable')} ${selects.join(' UNION ALL ')}` }
  }
  const uris = stringList(config.sourceUris, 'load.sourceUris')
  const format = typeof config.sourceFormat === 'string' ? config.sourceFormat : 'CSV'
  return { reason, sql: `LOAD DATA INTO ${tableRef(config.destinationTable, 'load.destinationTable')} FROM FILES(format=${literal(format)}, uris=[${uris.map(literal).join(', ')}])` }
}

function tableRef (value: unknown, where: string): string {
  const ref = value as Partial<TableReference> | undefined
  if (typeof ref?.projectId !== 'string' || typeof ref.datasetId !== 'string' || typeof ref.tableId !== 'string') {
    throw new ERR_BAD_REQUEST(`${where} must be a table reference (projectId, datasetId, tableId)`)
  }
  return `\`${[ref.projectId, ref.datasetId, ref.tableId].join('.').replace(/[`\\]/g, '\\$&')}\``
}

function stringList (value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) throw new ERR_BAD_REQUEST(`${where} must list at least one URI`)
  return value as string[]
}

function literal (text: string): string {
  return `'${text.replace(/[\\']/g, '\\$&')}'`
}

/** Bind parameters as the pipeline's Statement carries them: by name, or by position. */
export function statementParams (parameters: QueryParameter[] | undefined): unknown[] | Record<string, unknown> | undefined {
  if (parameters === undefined || parameters.length === 0) return undefined
  if (parameters.every((p) => typeof p.name === 'string' && p.name !== '')) {
    return Object.fromEntries(parameters.map((p) => [p.name as string, p.parameterValue]))
  }
  return parameters.map((p) => p.parameterValue)
}

/**
 * The SQL with comments blanked out (GoogleSQL: `--`, `#`, block comments), string literals
 * kept. Literals stay so that `EXECUTE IMMEDIATE 'EXPORT DATA …'` is caught as well: a false
 * refusal of a literal is the safe mistake.
 */
export function withoutComments (sql: string): string {
  let out = ''
  let i = 0
  while (i < sql.length) {
    const c = sql[i] as string
    const next = sql[i + 1]
    if ((c === '-' && next === '-') || c === '#') {
      while (i < sql.length && sql[i] !== '\n') i++
      out += ' '
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? sql.length : end + 2
      out += ' '
    } else if (c === '\'' || c === '"' || c === '`') {
      const start = i
      const triple = sql.startsWith(c.repeat(3), i)
      const close = triple ? c.repeat(3) : c
      i += close.length
      while (i < sql.length && !sql.startsWith(close, i)) i += sql[i] === '\\' ? 2 : 1
      i += close.length
      out += sql.slice(start, i)
    } else {
      out += c
      i++
    }
  }
  return out
}
