// The slice of BigQuery REST v2 resources the front end reads and writes (discovery document
// `bigquery:v2`). Only fields Sluice acts on are typed; everything else passes through as
// unknown so a newer client or server field is neither dropped nor trusted.

export type FieldMode = 'NULLABLE' | 'REQUIRED' | 'REPEATED'

export interface TableFieldSchema {
  name: string
  type: string
  mode?: FieldMode
  fields?: TableFieldSchema[]
  [key: string]: unknown
}

export interface TableSchema {
  fields?: TableFieldSchema[]
}

/** `v` is a string, null, a nested row (RECORD) or an array of cells (REPEATED). */
export interface TableCell {
  v: unknown
}

export interface TableRow {
  f: TableCell[]
}

export interface TableReference {
  projectId: string
  datasetId: string
  tableId: string
}

export interface JobReference {
  projectId: string
  jobId?: string
  location?: string
}

export interface DatasetReference {
  projectId?: string
  datasetId: string
}

export interface QueryParameter {
  name?: string
  parameterType?: unknown
  parameterValue?: unknown
}

export interface JobConfigurationQuery {
  query?: string
  useLegacySql?: boolean
  defaultDataset?: DatasetReference
  queryParameters?: QueryParameter[]
  destinationTable?: TableReference
  maximumBytesBilled?: string
  [key: string]: unknown
}

export interface JobConfiguration {
  query?: JobConfigurationQuery
  dryRun?: boolean
  jobTimeoutMs?: string
  [key: string]: unknown
}

export interface Job {
  jobReference?: JobReference
  configuration?: JobConfiguration
  status?: { state?: string, errorResult?: unknown, errors?: unknown[] }
  statistics?: {
    parentJobId?: string
    query?: { statementType?: string, referencedTables?: TableReference[], totalBytesProcessed?: string, schema?: TableSchema }
    [key: string]: unknown
  }
  [key: string]: unknown
}

/** jobs.query request body (QueryRequest). */
export interface QueryRequest {
  query?: string
  useLegacySql?: boolean
  defaultDataset?: DatasetReference
  queryParameters?: QueryParameter[]
  location?: string
  dryRun?: boolean
  timeoutMs?: number
  maxResults?: number
  formatOptions?: { useInt64Timestamp?: boolean, [key: string]: unknown }
  jobCreationMode?: string
  maximumBytesBilled?: string
  jobTimeoutMs?: string
  [key: string]: unknown
}

/**
 * jobs.query and jobs.getQueryResults responses share these fields. `Rows` is how the rows are
 * held: parsed, still the upstream's bytes (UpstreamRows), or encoded for the client (EncodedRows).
 */
export interface QueryResults<Rows = TableRow[]> {
  jobReference?: JobReference
  queryId?: string
  jobComplete?: boolean
  schema?: TableSchema
  rows?: Rows
  totalRows?: string
  pageToken?: string
  [key: string]: unknown
}

export interface TableDataList<Rows = TableRow[]> {
  kind?: string
  totalRows?: string
  pageToken?: string
  rows?: Rows
  [key: string]: unknown
}

export interface Table {
  tableReference?: TableReference
  schema?: TableSchema
  type?: string
  [key: string]: unknown
}

/** Google's JSON error body (google.rpc.Status as rendered by the v2 REST surface). */
export interface GoogleErrorBody {
  error: {
    code: number
    message: string
    errors: Array<{ reason: string, message: string, domain?: string, location?: string, locationType?: string }>
    status: string
    details?: unknown[]
  }
}
