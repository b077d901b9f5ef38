// The connector protocol's query-request and its answer (`data`), as far as Sluice forwards and
// reads them: shared by the upstream client, the codecs that re-encode answers for clients and
// the pages served later.
import type { InlineRows } from './inline-rowset.js'

export interface SessionContext {
  database?: string
  schema?: string
  warehouse?: string
  role?: string
}

/** The query-request body fields Sluice forwards (never the client's own session material). */
export interface QueryRequest {
  sqlText: string
  bindings?: Record<string, unknown>
  parameters?: Record<string, unknown>
  describeOnly?: boolean
}

/** `data` of a query response, as far as Sluice reads it. */
export interface QueryData {
  queryId?: string
  rowtype?: RowTypeEntry[]
  rowset?: unknown[][]
  rowsetBase64?: string
  /** The inline rows as Sluice reads them (inline-rowset.ts): set when read, never forwarded. */
  inline?: InlineRows
  queryResultFormat?: string
  total?: number
  returned?: number
  statementTypeId?: number
  chunks?: Array<{ url: string, rowCount: number, uncompressedSize?: number, compressedSize?: number }>
  chunkHeaders?: Record<string, string>
  qrmk?: string
  parameters?: Array<{ name: string, value: unknown }>
  finalDatabaseName?: string
  finalSchemaName?: string
  finalWarehouseName?: string
  finalRoleName?: string
  getResultUrl?: string
  resultIds?: string
  [key: string]: unknown
}

export interface RowTypeEntry {
  name: string
  type: string
  nullable?: boolean
  scale?: number | null
  precision?: number | null
  length?: number | null
  byteLength?: number | null
  database?: string
  schema?: string
  table?: string
  collation?: string | null
}
