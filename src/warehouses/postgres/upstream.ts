// The upstream side of one client session: a dedicated connection to the real database (so a
// session's SET, temp tables, prepared state and transaction never meet another principal's),
// opened with the connection's own credential and closed when the client goes. Statements run
// through the extended protocol one at a time, fetched `fetchRows` rows per Execute with one
// batch read ahead (the next Execute is sent as soon as a batch arrives, so the upstream
// produces it while the previous one is masked and written): memory per session is two
// batches whatever the result size.
import pg from 'pg'
import type { DatabaseError } from 'pg-protocol'
import type { PostgresSettings } from './connections.js'

/** A column as the upstream's RowDescription gives it (text format: Sluice always asks for text). */
export interface UpstreamField {
  name: string
  tableID: number
  columnID: number
  dataTypeID: number
  dataTypeSize: number
  dataTypeModifier: number
}

export interface Described {
  paramTypes: number[]
  /** null: the statement returns no rows (NoData). */
  fields: UpstreamField[] | null
}

export type UpstreamValue = string | Buffer | null

/** One batch of an executing statement: text values, null for NULL. */
export interface Batch {
  rows: Array<Array<string | null>>
  /** The statement finished (CommandComplete / EmptyQueryResponse) with this batch. */
  done: boolean
}

type Connection = {
  parse: (q: { text: string, types?: number[] }) => void
  bind: (c: { values: UpstreamValue[] }) => void
  describe: (m: { type: 'S' | 'P', name?: string }) => void
  execute: (c: { rows: number }) => void
  close: (m: { type: 'S' | 'P' }) => void
  flush: () => void
  sync: () => void
  on: (event: string, fn: (msg: never) => void) => void
}

interface Handler {
  onSubmit?: () => void
  submit: (con: Connection) => void
  handleReadyForQuery: () => void
  handleRowDescription?: (msg: { fields: UpstreamField[] }) => void
  handleParameterDescription?: (msg: { dataTypeIDs: number[] }) => void
  handleNoData?: () => void
}

/**
 * A pg Submittable (the interface pg-cursor uses) that drives one statement: Parse, Bind,
 * Describe portal, then Execute `fetchRows` at a time as the consumer asks for batches.
 */
export class Execution {
  readonly #sql: string
  readonly #types: number[]
  readonly #values: UpstreamValue[]
  readonly #fetch: number
  #con: Connection | undefined
  #rows: Array<Array<string | null>> = []
  #waiting: { resolve: (b: Batch) => void, reject: (e: Error) => void } | undefined
  #ready: Batch | Error | undefined
  /** An Execute is out and its batch not yet arrived. */
  #fetching = false
  #finished = false
  #abandoned = false
  #fieldsResolve!: (f: UpstreamField[] | null) => void
  #fieldsReject!: (e: Error) => void
  #endResolve!: () => void
  /** RowDescription of the portal (null for NoData), known before any row is fetched. */
  readonly fields: Promise<UpstreamField[] | null>
  /** Settles when the upstream is ready for the next statement (ReadyForQuery). */
  readonly ended: Promise<void>
  /** The CommandComplete tag, once done; `''` for an empty query. */
  tag: string | undefined
  error: DatabaseError | undefined

  constructor (sql: string, types: number[], values: UpstreamValue[], fetchRows: number) {
    this.#sql = sql
    this.#types = types
    this.#values = values
    this.#fetch = fetchRows
    this.fields = new Promise((resolve, reject) => { this.#fieldsResolve = resolve; this.#fieldsReject = reject })
    this.fields.catch(() => {})
    this.ended = new Promise((resolve) => { this.#endResolve = resolve })
  }

  onSubmit?: () => void

  submit (con: Connection): void {
    this.onSubmit?.()
    this.#con = con
    con.parse({ text: this.#sql, types: this.#types })
    con.bind({ values: this.#values })
    con.describe({ type: 'P' })
    this.#fetching = true
    con.execute({ rows: this.#fetch })
    con.flush()
  }

  handleRowDescription (msg: { fields: UpstreamField[] }): void { this.#fieldsResolve(msg.fields) }
  handleNoData (): void { this.#fieldsResolve(null) }
  handleDataRow (msg: { fields: Array<string | null> }): void { this.#rows.push(msg.fields) }

  handlePortalSuspended (): void {
    this.#fetching = false
    this.#deliver({ rows: this.#take(), done: false })
    this.#readAhead()
  }

  /** Asks for the next batch while at most one is waiting to be consumed. */
  #readAhead (): void {
    if (this.#fetching || this.#abandoned || this.#finished || this.tag !== undefined || this.#ready !== undefined) return
    this.#fetching = true
    this.#con?.execute({ rows: this.#fetch })
    this.#con?.flush()
  }

  handleCommandComplete (msg: { text: string }): void {
    this.#fetching = false
    this.tag = msg.text
    this.#fieldsResolve(null)
    this.#deliver({ rows: this.#take(), done: true })
    this.#con?.sync()
  }

  handleEmptyQuery (): void {
    this.tag = ''
    this.#fieldsResolve(null)
    this.#deliver({ rows: [], done: true })
    this.#con?.sync()
  }

  handleError (err: DatabaseError): void {
    // An error before the Sync: ask for ReadyForQuery so the connection can be used again.
    if (this.error === undefined && !this.#finished) this.#con?.sync()
    this.error = err
    this.#finished = true
    this.#fieldsReject(err)
    this.#deliver(err)
  }

  handleReadyForQuery (): void {
    this.#finished = true
    this.#endResolve()
  }

  handleCopyInResponse (): void {
    // Refused by policy before it gets here; should the upstream ask anyway, it gets nothing.
    this.handleError(Object.assign(new Error('COPY FROM STDIN is not supported through Sluice'), { code: '0A000' }) as unknown as DatabaseError)
  }

  handleCopyData (): void {}

  #take (): Array<Array<string | null>> {
    const rows = this.#rows
    this.#rows = []
    return rows
  }

  #deliver (batch: Batch | Error): void {
    const waiting = this.#waiting
    if (waiting === undefined) { this.#ready = batch; return }
    this.#waiting = undefined
    if (batch instanceof Error) waiting.reject(batch)
    else waiting.resolve(batch)
  }

  /** The next batch; taking one that was read ahead asks for the one after it. */
  async next (): Promise<Batch> {
    const ready = this.#ready
    if (ready !== undefined) {
      this.#ready = undefined
      if (ready instanceof Error) throw ready
      this.#readAhead()
      return ready
    }
    this.#readAhead()
    return await new Promise<Batch>((resolve, reject) => { this.#waiting = { resolve, reject } })
  }

  /** Gives up a suspended portal: closes it and syncs, so the connection is free again. */
  abandon (): void {
    if (this.#finished || this.#abandoned || this.tag !== undefined) return
    this.#abandoned = true
    this.#con?.close({ type: 'P' })
    this.#con?.sync()
  }
}

/** Parse + Describe statement, for a client's Describe of a prepared statement. */
class Description implements Handler {
  readonly #sql: string
  readonly #types: number[]
  #params: number[] = []
  #resolve!: (d: Described) => void
  #reject!: (e: Error) => void
  #result: Described | Error | undefined
  readonly done: Promise<Described>

  constructor (sql: string, types: number[]) {
    this.#sql = sql
    this.#types = types
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
  }

  onSubmit?: () => void

  submit (con: Connection): void {
    this.onSubmit?.()
    con.parse({ text: this.#sql, types: this.#types })
    con.describe({ type: 'S' })
    con.sync()
  }

  handleParameterDescription (msg: { dataTypeIDs: number[] }): void { this.#params = msg.dataTypeIDs }
  handleRowDescription (msg: { fields: UpstreamField[] }): void { this.#result ??= { paramTypes: this.#params, fields: msg.fields } }
  handleNoData (): void { this.#result ??= { paramTypes: this.#params, fields: null } }
  handleError (err: Error): void { this.#result = err }
  handleReadyForQuery (): void {
    const r = this.#result
    if (r instanceof Error) this.#reject(r)
    else this.#resolve(r ?? { paramTypes: this.#params, fields: null })
  }
}

export class UpstreamSession {
  readonly #client: pg.Client
  readonly #settings: PostgresSettings
  /** ParameterStatus as the upstream reported it (server_version, TimeZone, …). */
  readonly parameters = new Map<string, string>()
  #status: 'I' | 'T' | 'E' = 'I'
  /** The statement pg submitted last: it gets the messages pg itself does not route. */
  #active: Handler | undefined
  /** pg forgets a statement at its ErrorResponse; its ReadyForQuery is delivered from here. */
  #errored: Handler | undefined
  #closed = false

  private constructor (settings: PostgresSettings, applicationName: string) {
    this.#settings = settings
    this.#client = new pg.Client({ connectionString: settings.url, application_name: applicationName })
    const con = (this.#client as unknown as { connection: Connection }).connection
    // Registered before the client's own listeners, so the status is current when a statement
    // learns it is done.
    con.on('readyForQuery', (msg: { status: string }) => {
      this.#status = msg.status as 'I' | 'T' | 'E'
      const errored = this.#errored
      this.#errored = undefined
      if (errored !== undefined) queueMicrotask(() => errored.handleReadyForQuery())
    })
    con.on('errorMessage', () => { this.#errored = this.#active })
    con.on('parameterStatus', (msg: { parameterName: string, parameterValue: string }) => { this.parameters.set(msg.parameterName, msg.parameterValue) })
    con.on('parameterDescription', (msg: { dataTypeIDs: number[] }) => { this.#active?.handleParameterDescription?.(msg) })
    con.on('noData', () => { this.#active?.handleNoData?.() })
    this.#client.on('error', () => { this.#closed = true })
    this.#client.on('end', () => { this.#closed = true })
  }

  static async open (settings: PostgresSettings, applicationName: string): Promise<UpstreamSession> {
    const session = new UpstreamSession(settings, applicationName)
    await session.#client.connect()
    return session
  }

  get settings (): PostgresSettings { return this.#settings }
  /** I idle, T in a transaction block, E in a failed one: as the upstream last said. */
  get status (): 'I' | 'T' | 'E' { return this.#status }
  get closed (): boolean { return this.#closed }

  /** Queues a handler; it becomes the active one when pg submits it (pg runs one at a time). */
  #submit (handler: Handler): void {
    handler.onSubmit = () => { this.#active = handler }
    this.#client.query(handler as unknown as pg.Submittable)
  }

  execute (sql: string, types: number[], values: UpstreamValue[], fetchRows = this.#settings.fetchRows): Execution {
    const execution = new Execution(sql, types, values, fetchRows)
    this.#submit(execution as unknown as Handler)
    return execution
  }

  async describe (sql: string, types: number[]): Promise<Described> {
    const d = new Description(sql, types)
    this.#submit(d as unknown as Handler)
    return await d.done
  }

  /** The upstream backend's own key (its BackendKeyData), with which any process can cancel. */
  get backendKey (): { pid: number, secret: number } {
    const c = this.#client as unknown as { processID: number, secretKey: number }
    return { pid: c.processID, secret: c.secretKey }
  }

  /** Cancels whatever the upstream backend runs now. */
  async cancel (): Promise<void> {
    const key = this.backendKey
    await cancelBackend(this.#settings, key.pid, key.secret)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#client.end().catch(() => {})
  }
}

/**
 * Sends the upstream a CancelRequest for backend (pid, secret) on a side connection, as libpq
 * does; PostgreSQL answers nothing and closes it. Resolves once the request was written.
 */
export async function cancelBackend (settings: PostgresSettings, pid: number, secret: number): Promise<void> {
  const side = new pg.Client({ connectionString: settings.url })
  const { host, port } = side as unknown as { host: string, port: number }
  const con = (side as unknown as { connection: { connect: (port: number, host: string) => void, on: (e: string, fn: () => void) => void, cancel: (pid: number, key: number) => void } }).connection
  await new Promise<void>((resolve) => {
    con.on('connect', () => { con.cancel(pid, secret); resolve() })
    con.on('error', () => resolve())
    con.connect(port, host)
  })
}
