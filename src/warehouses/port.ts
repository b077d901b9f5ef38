// The warehouse-neutral upstream port (DESIGN.md §1, "execute: upstream port"): one interface
// per connection that runs an admitted statement and answers with the neutral result (schema +
// pages pulled one at a time), cancels it, and reads the warehouse's own catalogue. Each kind
// implements it on top of its existing upstream client (src/warehouses/<kind>/port.ts); a front
// end that is not a wire protocol of that warehouse (MCP) runs every kind through it, and the
// wire front ends can move onto it one by one.
import type { ConnectionKind } from '../config/types.js'
import type { Principal } from '../identity/principal.js'
import type { ConnectionRef, NeutralResult } from '../pipeline/types.js'
import type { Limits } from '../policy/types.js'

/** What to run: the admitted SQL, under the deciding rule's limits, for its principal. */
export interface PortStatement {
  sql: string
  /** Whose upstream session may run it (sessions carry state a statement can read). */
  principal: Principal
  /** The deciding rule's limits the port can apply upstream (timeout, bytes billed). */
  limits: Limits
  /** Aborted: the upstream statement is cancelled (best effort) and the pages stop. */
  signal?: AbortSignal
}

/** A running statement: its result streams from the upstream as pages are pulled. */
export interface PortExecution {
  result: NeutralResult
  /** Stops the upstream statement and frees what it holds; safe to call after it finished. */
  cancel: () => Promise<void>
}

export interface CatalogTable {
  schema: string
  name: string
  /** The warehouse's word for it (BASE TABLE, VIEW, TABLE, …), when it says. */
  type?: string
}

export interface CatalogColumn {
  name: string
  type: string
  nullable?: boolean
}

/**
 * An upstream failure whose text is the warehouse's own (it can quote cell values): front ends
 * release `upstreamMessage` through the pipeline before anyone sees it.
 */
export interface PortFailure {
  upstreamMessage: string
  codes: { code?: string, sqlState?: string }
}

export interface WarehousePort {
  readonly kind: ConnectionKind
  readonly name: string
  /** Bare names are qualified with these (database/schema or project/dataset). */
  readonly connection: ConnectionRef
  execute: (statement: PortStatement) => Promise<PortExecution>
  /** Schemas (Snowflake, PostgreSQL) or datasets (BigQuery) of the connection's database / project. */
  listSchemas: (principal: Principal) => Promise<string[]>
  listTables: (principal: Principal, schema: string) => Promise<CatalogTable[]>
  /** undefined when the table does not exist (or is not visible to the connection's credential). */
  describeTable: (principal: Principal, schema: string, table: string) => Promise<CatalogColumn[] | undefined>
  /** The fully qualified name the policy and masking rules see for a table (lineage's spelling). */
  qualified: (schema: string, table: string) => string
  /** A SELECT of every column of the table, in the warehouse's own quoting. */
  selectAll: (schema: string, table: string) => string
  close: () => Promise<void>
}

/** The warehouse's text of an upstream failure, for release through the pipeline. */
export function portFailure (err: unknown): PortFailure | undefined {
  const e = err as { upstream?: { message?: unknown }, snowflakeCode?: string, sqlState?: string, reason?: string, code?: unknown, severity?: unknown, message?: unknown } | undefined
  if (e === undefined || e === null) return undefined
  if (typeof e.upstream?.message === 'string') {
    const code = e.snowflakeCode ?? e.reason
    return { upstreamMessage: e.upstream.message, codes: { ...(code !== undefined && { code }), ...(e.sqlState !== undefined && { sqlState: e.sqlState }) } }
  }
  // pg's DatabaseError: the server's own message with its SQLSTATE.
  if (typeof e.severity === 'string' && typeof e.code === 'string' && typeof e.message === 'string') {
    return { upstreamMessage: e.message, codes: { sqlState: e.code } }
  }
  return undefined
}

/**
 * A Snowflake string literal: catalogue names reach metadata queries as string literals only.
 * Snowflake reads backslash escapes in single-quoted strings (`\'` is a quote), so backslashes
 * are doubled as well as quotes: a name ending in a backslash cannot close the literal and turn
 * the rest of itself into SQL that reads data.
 */
export function snowflakeLiteral (text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/** A double-quoted identifier (Snowflake, PostgreSQL). */
export function quotedIdentifier (name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
