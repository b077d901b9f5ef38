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
  bind: (c: { portal?: string, values: UpstreamValue[] }) => void
  describe: (m: { type: 'S' | 'P', name?: string }) => void
  execute: (c: { portal?: string, rows: number }) => void
  close: (m: { type: 'S' | 'P', name?: string }) => void
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
 *
 * An execution with an upstream portal name can be parked: the client left its own portal
 * suspended and runs other statements meanwhile, which need the one upstream connection. The
 * upstream portal stays open inside a transaction block (PostgreSQL keeps portals until the
 * transaction ends, and a client's portals live as long as its implicit or explicit
 * transaction), the connection is synced free, and the next batch asked for resubmits the
 * execution, which goes on with Execute on that portal.
 */
export class Execution {
  readonly #sql: string
  readonly #types: number[]
  readonly #values: UpstreamValue[]
  readonly #fetch: number
  readonly #portal: string
  #con: Connection | undefined
  #rows: Array<Array<string | null>> = []
  #waiting: { resolve: (b: Batch) => void, reject: (e: Error) => void } | undefined
  #ready: Batch | Error | undefined
  /** An Execute is out and its batch not yet arrived. */
  #fetching = false
  #finished = false
  #abandoned = false
  #started = false
  /** The connection is being synced free (a BEGIN first when `#beginOnPark`) with the portal open. */
  #parking = false
  #parked = false
  #parkedResolve: (() => void) | undefined
  #arrived: (() => void) | undefined
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
  /** Queues this execution on the session's connection again (set by the session). */
  requeue?: () => void

  constructor (sql: string, types: number[], values: UpstreamValue[], fetchRows: number, portal = '') {
    this.#sql = sql
    this.#types = types
    this.#values = values
    this.#fetch = fetchRows
    this.#portal = portal
    this.fields = new Promise((resolve, reject) => { this.#fieldsResolve = resolve; this.#fieldsReject = reject })
    this.fields.catch(() => {})
    this.ended = new Promise((resolve) => { this.#endResolve = resolve })
  }

  onSubmit?: () => void

  submit (con: Connection): void {
    this.onSubmit?.()
    this.#con = con
    if (this.#started) {
      // Resumed after being parked: the portal is open upstream.
      this.#parked = false
      if (this.#abandoned) { con.sync(); return }
      this.#fetching = true
      con.execute({ portal: this.#portal, rows: this.#fetch })
      con.flush()
      return
    }
    this.#started = true
    con.parse({ text: this.#sql, types: this.#types })
    con.bind({ portal: this.#portal, values: this.#values })
    con.describe({ type: 'P', name: this.#portal })
    this.#fetching = true
    con.execute({ portal: this.#portal, rows: this.#fetch })
    con.flush()
  }

  handleRowDescription (msg: { fields: UpstreamField[] }): void { this.#fieldsResolve(msg.fields) }
  handleNoData (): void { this.#fieldsResolve(null) }
  handleDataRow (msg: { fields: Array<string | null> }): void { this.#rows.push(msg.fields) }

  handlePortalSuspended (): void {
    this.#fetching = false
    this.#deliver({ rows: this.#take(), done: false })
    this.#arrivedNow()
    this.#readAhead()
  }

  /** Asks for the next batch while at most one is waiting to be consumed. */
  #readAhead (): void {
    if (this.#fetching || this.#parking || this.#parked || this.#abandoned || this.#finished || this.tag !== undefined || this.#ready !== undefined) return
    this.#fetching = true
    this.#con?.execute({ portal: this.#portal, rows: this.#fetch })
    this.#con?.flush()
  }

  handleCommandComplete (msg: { text: string }): void {
    // The BEGIN a park sends before its Sync: not this statement's completion.
    if (this.#parking && !this.#fetching) return
    this.#fetching = false
    this.tag = msg.text
    this.#fieldsResolve(null)
    this.#deliver({ rows: this.#take(), done: true })
    this.#arrivedNow()
    if (!this.#parking) this.#con?.sync()
  }

  handleEmptyQuery (): void {
    this.#fetching = false
    this.tag = ''
    this.#fieldsResolve(null)
    this.#deliver({ rows: [], done: true })
    this.#arrivedNow()
    if (!this.#parking) this.#con?.sync()
  }

  handleError (err: DatabaseError): void {
    // An error before the Sync: ask for ReadyForQuery so the connection can be used again.
    if (this.error === undefined && !this.#finished && !this.#parking) this.#con?.sync()
    this.#parking = false
    this.error = err
    this.#finished = true
    this.#fetching = false
    this.#fieldsReject(err)
    this.#deliver(err)
    this.#arrivedNow()
  }

  handleReadyForQuery (): void {
    if (this.#parking && this.tag === undefined && this.error === undefined) {
      // Synced free with the portal kept: the connection serves other statements now.
      this.#parking = false
      this.#parked = true
      this.#con = undefined
      const parked = this.#parkedResolve
      this.#parkedResolve = undefined
      parked?.()
      return
    }
    this.#parking = false
    this.#finished = true
    this.#endResolve()
    const parked = this.#parkedResolve
    this.#parkedResolve = undefined
    parked?.()
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

  #arrivedNow (): void {
    const arrived = this.#arrived
    this.#arrived = undefined
    arrived?.()
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
    if (this.#parked) this.requeue?.()
    else this.#readAhead()
    return await new Promise<Batch>((resolve, reject) => { this.#waiting = { resolve, reject } })
  }

  /** True while the upstream portal is open and the connection is held for it. */
  get holdsConnection (): boolean {
    return this.#started && !this.#parked && !this.#finished && this.#con !== undefined
  }

  get portal (): string { return this.#portal }

  /**
   * Frees the connection, keeping the upstream portal open: `begin` first opens a transaction
   * block (the client's implicit transaction, which a Sync would otherwise end, portal and all).
   * Resolves once the connection is free (at once when the statement already finished).
   */
  async park (begin: boolean): Promise<boolean> {
    if (!this.holdsConnection) return false
    if (this.#portal === '') throw new Error('only a named upstream portal can be parked')
    // A read-ahead batch on its way arrives first: its rows are kept with the execution.
    if (this.#fetching) await new Promise<void>((resolve) => { this.#arrived = resolve })
    if (!this.holdsConnection || this.tag !== undefined || this.error !== undefined) { await this.ended; return false }
    const parked = new Promise<void>((resolve) => { this.#parkedResolve = resolve })
    this.#parking = true
    const con = this.#con as Connection
    if (begin) {
      con.parse({ text: 'BEGIN', types: [] })
      con.bind({ values: [] })
      con.execute({ rows: 0 })
    }
    con.sync()
    await parked
    return begin
  }

  /** Gives up a suspended portal: closes it and syncs, so the connection is free again. */
  abandon (): void {
    if (this.#finished || this.#abandoned || this.tag !== undefined) return
    this.#abandoned = true
    // Parked: the portal closes with its transaction; nothing is sent on a connection it does not hold.
    if (this.#parked) { this.#finished = true; this.#endResolve(); return }
    this.#con?.close({ type: 'P', name: this.#portal })
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
  /**
   * Sluice opened the transaction block the upstream is in, to keep a parked portal open through
   * the client's implicit transaction: ended (COMMIT, or ROLLBACK after an error) where that
   * implicit transaction ends, and reported to the client as no block at all.
   */
  #implicitBlock = false

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

  execute (sql: string, types: number[], values: UpstreamValue[], fetchRows = this.#settings.fetchRows, portal = ''): Execution {
    const execution = new Execution(sql, types, values, fetchRows, portal)
    execution.requeue = () => { this.#submit(execution as unknown as Handler) }
    this.#submit(execution as unknown as Handler)
    return execution
  }

  /** Frees the connection from a suspended execution, its upstream portal kept open. */
  async park (execution: Execution): Promise<void> {
    if (await execution.park(this.#status === 'I')) this.#implicitBlock = true
  }

  /** The transaction status as the client must see it: Sluice's own block is not the client's. */
  get clientStatus (): 'I' | 'T' | 'E' {
    return this.#implicitBlock ? 'I' : this.#status
  }

  /** The client's implicit transaction ends (Sync, a Query outside a block): so does Sluice's block. */
  async endImplicit (): Promise<void> {
    if (!this.#implicitBlock) return
    this.#implicitBlock = false
    const execution = this.execute(this.#status === 'T' ? 'COMMIT' : 'ROLLBACK', [], [])
    await execution.next().catch(() => {})
    await execution.ended
    if (execution.error !== undefined) throw execution.error
  }

  /** The client ran transaction control itself: the block (or its end) is now the client's. */
  adoptBlock (): void {
    this.#implicitBlock = false
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
