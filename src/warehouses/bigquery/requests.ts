// What a client may ask BigQuery to do through Sluice, checked before anything runs upstream.
// Query jobs are served. Data transfers (extract and copy jobs, EXPORT DATA) move data around
// masking: they are refused unless an enforcing policy explicitly allows the equivalent SQL
// statement built here (EXPORT DATA, INSERT … SELECT), so the policy sees their tables like any
// other statement's. Loads (load jobs, LOAD DATA) write files with Sluice's credential and are
// always refused, as loads: the parser cannot read LOAD DATA, so no rule could judge their tables,
// and no SQL is built for them.
// A destination table, media uploads, external table definitions, legacy SQL and options Sluice
// does not know are refused outright (fail closed), naming what was refused.
import { ERR_BAD_REQUEST, ERR_BIGQUERY_REFUSED } from '../../errors.js'
import { READ_THROUGH_SLUICE } from '../../masking/inference.js'
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

/** What to do instead of a load, which Sluice never runs. */
export const LOAD_INSTEAD = 'load the files with your own BigQuery credentials, outside Sluice, or ask a data engineer to load them'
const READ_INSTEAD = READ_THROUGH_SLUICE
const TRANSFER_TYPES = ['load', 'extract', 'copy'] as const

/**
 * A data transfer: refused unless an enforcing policy allows `sql`, the statement it amounts to
 * (never, when `allowable` is false). The refusal names what was refused, why and what to do.
 */
export interface Transfer {
  /** "extract jobs are refused by default: this one (…) would …". */
  reason: string
  /** What the agent can do instead. */
  instead: string
  sql: string
  /** Set when Sluice built `sql` from a job: the refusal shows it, since the rule judged it. */
  built?: boolean
  /** False: no rule can allow it (LOAD DATA, which the parser cannot read). */
  allowable: boolean
}

/**
 * The refusal of a transfer; `why` is the policy's or masking's refusal, when one decided. Its
 * advice is left out when `why` already gives it (masking says to read through Sluice, too).
 */
export function transferRefusal (transfer: Transfer, why?: string): string {
  const judged = why === undefined ? '' : ` (${transfer.built === true ? `judged as ${transfer.sql}: ` : ''}${why.replace(/\.\s*$/, '')})`
  return why?.includes(transfer.instead) === true ? `${transfer.reason}${judged}` : `${transfer.reason}${judged}; ${transfer.instead}`
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
  if (/\bEXPORT\s+DATA\b/i.test(code)) {
    return { reason: 'EXPORT DATA is refused by default: it writes query results to storage, around masking', instead: READ_INSTEAD, sql, allowable: true }
  }
  if (/\bLOAD\s+DATA\b/i.test(code)) {
    return {
      reason: 'LOAD DATA is refused: it loads files into the warehouse with the gateway\'s credential, and no policy rule can allow it (Sluice\'s SQL parser cannot read LOAD DATA, so its tables could not be checked)',
      instead: LOAD_INSTEAD,
      sql,
      allowable: false
    }
  }
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
  // Refused as a load, before any SQL is built: no statement Sluice could build for it parses.
  if (type === 'load') refuse(loadRefusal(configuration.load as Record<string, unknown>))
  if (type !== 'query') return { type: 'transfer', job, transfer: transferOf(type, configuration[type] as Record<string, unknown>) }
  const transfer = checkQueryOptions(configuration.query as JobConfigurationQuery, QUERY_JOB_KEYS, 'JobConfigurationQuery')
  const query = { ...job, configuration: { ...configuration, query: { ...configuration.query, useLegacySql: false } } } as QueryJob
  return { type: 'query', job: query, transfer }
}

/** The SQL statement an extract or copy job amounts to, so the policy judges its tables and kind. */
function transferOf (type: 'extract' | 'copy', config: Record<string, unknown>): Transfer {
  if (type === 'extract') {
    const source = tableRef(config.sourceTable, 'extract.sourceTable (model extracts are refused)')
    const uris = stringList(config.destinationUris ?? (config.destinationUri === undefined ? undefined : [config.destinationUri]), 'extract.destinationUris')
    const format = typeof config.destinationFormat === 'string' ? config.destinationFormat : 'CSV'
    return {
      reason: `extract jobs are refused by default: this one (${source} to ${uris.join(', ')}) would export table data out of the warehouse, around masking`,
      instead: READ_INSTEAD,
      sql: `EXPORT DATA OPTIONS(uri=${literal(uris[0] as string)}, format=${literal(format)}) AS SELECT * FROM ${source}`,
      built: true,
      allowable: true
    }
  }
  const sources = (Array.isArray(config.sourceTables) ? config.sourceTables : [config.sourceTable]).map((s) => tableRef(s, 'copy.sourceTables'))
  const destination = tableRef(config.destinationTable, 'copy.destinationTable')
  return {
    reason: `copy jobs are refused by default: this one (${sources.join(', ')} to ${destination}) would copy table data around masking`,
    instead: 'a copy job copies every column, so to copy through Sluice run INSERT INTO … SELECT naming the columns you may copy, which the policy judges like any write',
    sql: `INSERT INTO ${destination} ${sources.map((s) => `SELECT * FROM ${s}`).join(' UNION ALL ')}`,
    built: true,
    allowable: true
  }
}

/** A load job's refusal, naming what it would have loaded where. */
function loadRefusal (config: Record<string, unknown> | undefined): string {
  const ref = config?.destinationTable as Partial<TableReference> | undefined
  const into = [ref?.projectId, ref?.datasetId, ref?.tableId].every((p) => typeof p === 'string') ? ` into ${[ref?.projectId, ref?.datasetId, ref?.tableId].join('.')}` : ''
  const uris = Array.isArray(config?.sourceUris) ? ` from ${(config.sourceUris as unknown[]).filter((u) => typeof u === 'string').slice(0, 3).join(', ')}` : ''
  return `load jobs are refused: this one${into}${uris} would write files into the warehouse with the gateway's credential, and no policy rule can allow it ` +
    `(Sluice's SQL parser cannot read the LOAD DATA statement a load amounts to, so its tables could not be checked); ${LOAD_INSTEAD}`
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
