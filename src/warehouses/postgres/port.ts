// The warehouse port (src/warehouses/port.ts) for a PostgreSQL connection, on the upstream
// session the wire front end uses: each statement gets a connection of its own (opened with the
// connection's credential, closed when its result is read or cancelled, so no session state
// crosses principals), rows fetched `fetchRows` at a time and converted to neutral values as
// they are pulled. The catalogue is information_schema, with bound parameters.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Principal } from '../../identity/principal.js'
import type { NeutralResult, ResultPage } from '../../pipeline/types.js'
import { quotedIdentifier, type CatalogColumn, type CatalogTable, type PortExecution, type PortStatement, type WarehousePort } from '../port.js'
import { toNeutral } from './codec.js'
import type { PostgresSettings } from './connections.js'
import { typeName } from './types.js'
import { UpstreamSession, type UpstreamField } from './upstream.js'

const APPLICATION = 'sluice-mcp'
/** A lost CancelRequest is sent again after this long, up to this many times. */
const CANCEL_RETRY_MS = 250
const CANCEL_ATTEMPTS = 20

export class PostgresPort implements WarehousePort {
  readonly kind = 'postgres' as const
  readonly #settings: PostgresSettings

  constructor (settings: PostgresSettings) {
    this.#settings = settings
  }

  get name (): string { return this.#settings.name }

  get connection (): WarehousePort['connection'] {
    return { name: this.name, kind: 'postgres', defaults: { database: this.#settings.database, schema: this.#settings.schema } }
  }

  async execute (statement: PortStatement, values: Array<string | null> = []): Promise<PortExecution> {
    const session = await UpstreamSession.open(this.#settings, APPLICATION)
    let closed = false
    const close = async (): Promise<void> => {
      if (closed) return
      closed = true
      await session.close()
    }
    let ended = false
    const cancel = async (): Promise<void> => {
      if (closed) return
      // PostgreSQL drops a CancelRequest that reaches the backend while it reads the statement's
      // next message (between Parse, Bind and Execute), so one request can be lost: asked again
      // until the statement has ended, then the connection is closed (a Terminate is read only
      // after the running statement, so closing alone would not stop it).
      for (let attempt = 0; attempt < CANCEL_ATTEMPTS && !ended; attempt++) {
        await session.cancel().catch(() => undefined)
        await Promise.race([execution.ended, sleep(CANCEL_RETRY_MS, undefined, { ref: false })])
      }
      await close()
    }
    const onAbort = (): void => { void cancel() }
    statement.signal?.addEventListener('abort', onAbort, { once: true })
    // The rule's timeout is the caller's run's (src/pipeline/run.ts): it aborts this signal.
    const done = (): void => {
      statement.signal?.removeEventListener('abort', onAbort)
    }
    const execution = session.execute(statement.sql, [], values)
    void execution.ended.then(() => { ended = true })
    let fields: UpstreamField[] | null
    try {
      fields = await execution.fields
    } catch (err) {
      done()
      await close()
      throw err
    }
    const oids = (fields ?? []).map((f) => f.dataTypeID)
    async function * pages (): AsyncIterable<ResultPage> {
      try {
        if (fields === null) {
          await execution.next()
          yield { rows: [] }
          return
        }
        for (;;) {
          // Each batch taken asks for the next one (the execution reads one batch ahead).
          const batch = await execution.next()
          yield { rows: batch.rows.map((row) => row.map((v, i) => toNeutral(v, oids[i] as number))) }
          if (batch.done) return
        }
      } finally {
        done()
        execution.abandon()
        await close()
      }
    }
    const result: NeutralResult = {
      schema: { columns: (fields ?? []).map((f) => ({ name: f.name, type: typeName(f.dataTypeID) })) },
      pages: pages()
    }
    return { result, cancel }
  }

  async #rows (principal: Principal, sql: string, values: string[]): Promise<unknown[][]> {
    const { result } = await this.execute({ sql, principal, limits: {} }, values)
    const rows: unknown[][] = []
    for await (const page of result.pages) rows.push(...page.rows)
    return rows
  }

  async listSchemas (principal: Principal): Promise<string[]> {
    const rows = await this.#rows(principal, `select schema_name from information_schema.schemata
      where schema_name not in ('information_schema', 'pg_catalog', 'pg_toast') and schema_name not like 'pg_temp%' and schema_name not like 'pg_toast_temp%'
      order by schema_name`, [])
    return rows.map((r) => String(r[0]))
  }

  async listTables (principal: Principal, schema: string): Promise<CatalogTable[]> {
    const rows = await this.#rows(principal, 'select table_name, table_type from information_schema.tables where table_schema = $1 order by table_name', [schema])
    return rows.map((r) => ({ schema, name: String(r[0]), type: String(r[1]) }))
  }

  async describeTable (principal: Principal, schema: string, table: string): Promise<CatalogColumn[] | undefined> {
    const rows = await this.#rows(principal, `select column_name, data_type, is_nullable from information_schema.columns
      where table_schema = $1 and table_name = $2 order by ordinal_position`, [schema, table])
    if (rows.length === 0) return undefined
    return rows.map((r) => ({ name: String(r[0]), type: String(r[1]), nullable: r[2] === 'YES' }))
  }

  qualified (schema: string, table: string): string {
    return `${this.#settings.database}.${schema}.${table}`
  }

  selectAll (schema: string, table: string): string {
    return `select * from ${quotedIdentifier(schema)}.${quotedIdentifier(table)}`
  }

  async close (): Promise<void> {}
}
