// The warehouse port (src/warehouses/port.ts) for a Snowflake connection, on the connector-protocol
// client the wire front ends use: a statement runs on one of the principal's own pooled upstream
// sessions (state a statement can read never crosses principals), its inline page and chunks
// become neutral pages (result.ts), and the catalogue is the database's INFORMATION_SCHEMA.
import type { Principal } from '../../identity/principal.js'
import type { NeutralResult } from '../../pipeline/types.js'
import { quotedIdentifier, snowflakeLiteral, type CatalogColumn, type CatalogTable, type PortExecution, type PortStatement, type WarehousePort } from '../port.js'
import type { SnowflakeSettings } from './config.js'
import { ownerKey } from './handles.js'
import { neutralFromQueryData } from './result.js'
import type { SnowflakeUpstream } from './upstream.js'
import type { QueryData, QueryRequest } from './query-data.js'

export class SnowflakePort implements WarehousePort {
  readonly kind = 'snowflake' as const
  readonly #settings: SnowflakeSettings
  readonly #upstream: SnowflakeUpstream

  constructor (settings: SnowflakeSettings, upstream: SnowflakeUpstream) {
    this.#settings = settings
    this.#upstream = upstream
  }

  get name (): string { return this.#settings.name }

  get connection (): WarehousePort['connection'] {
    const { database, schema } = this.#settings
    return { name: this.name, kind: 'snowflake', defaults: { ...(database !== undefined && { database }), ...(schema !== undefined && { schema }) } }
  }

  async #run (principal: Principal, req: QueryRequest, signal?: AbortSignal): Promise<QueryData> {
    const session = await this.#upstream.lease(ownerKey(principal), {})
    try {
      return await this.#upstream.query(session, req, signal)
    } finally {
      this.#upstream.release(session)
    }
  }

  async execute (statement: PortStatement): Promise<PortExecution> {
    const req: QueryRequest = { sqlText: statement.sql }
    const timeout = statement.limits.statementTimeoutSeconds
    if (timeout !== undefined && timeout > 0) req.parameters = { STATEMENT_TIMEOUT_IN_SECONDS: timeout }
    const data = await this.#run(statement.principal, req, statement.signal)
    // The session went back to the pool with the answer: later pages are chunk downloads,
    // which need no session, so a cancel after this point only stops reading them.
    const result: NeutralResult = neutralFromQueryData(data, this.#upstream)
    return { result, cancel: async () => { await (result.pages as AsyncGenerator).return?.(undefined) } }
  }

  async #rows (principal: Principal, sql: string): Promise<unknown[][]> {
    const execution = await this.execute({ sql, principal, limits: {} })
    const rows: unknown[][] = []
    for await (const page of execution.result.pages) rows.push(...page.rows)
    return rows
  }

  #database (): string {
    return this.#settings.database ?? ''
  }

  #catalog (): string {
    const db = this.#database()
    return db === '' ? 'INFORMATION_SCHEMA' : `${quotedIdentifier(db)}.INFORMATION_SCHEMA`
  }

  async listSchemas (principal: Principal): Promise<string[]> {
    const rows = await this.#rows(principal, `SELECT schema_name FROM ${this.#catalog()}.SCHEMATA ORDER BY schema_name`)
    return rows.map((r) => String(r[0])).filter((s) => s.toUpperCase() !== 'INFORMATION_SCHEMA')
  }

  async listTables (principal: Principal, schema: string): Promise<CatalogTable[]> {
    const rows = await this.#rows(principal, `SELECT table_name, table_type FROM ${this.#catalog()}.TABLES WHERE UPPER(table_schema) = UPPER(${snowflakeLiteral(schema)}) ORDER BY table_name`)
    return rows.map((r) => ({ schema, name: String(r[0]), ...(r[1] !== null && r[1] !== undefined && { type: String(r[1]) }) }))
  }

  async describeTable (principal: Principal, schema: string, table: string): Promise<CatalogColumn[] | undefined> {
    const rows = await this.#rows(principal, `SELECT column_name, data_type, is_nullable FROM ${this.#catalog()}.COLUMNS WHERE UPPER(table_schema) = UPPER(${snowflakeLiteral(schema)}) AND UPPER(table_name) = UPPER(${snowflakeLiteral(table)}) ORDER BY ordinal_position`)
    if (rows.length === 0) return undefined
    return rows.map((r) => ({ name: String(r[0]), type: String(r[1]), nullable: String(r[2]).toUpperCase() === 'YES' }))
  }

  qualified (schema: string, table: string): string {
    // As lineage spells names: unquoted Snowflake identifiers, compared case-insensitively.
    return [this.#database(), schema, table].filter((p) => p !== '').join('.').toLowerCase()
  }

  selectAll (schema: string, table: string): string {
    const db = this.#database()
    return `SELECT * FROM ${[...(db === '' ? [] : [db]), schema, table].map(snowflakeName).join('.')}`
  }

  async close (): Promise<void> {}
}

/** Plain names stay unquoted (Snowflake folds them, as the catalogue's spelling may differ in case). */
function snowflakeName (name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) ? name : quotedIdentifier(name)
}
