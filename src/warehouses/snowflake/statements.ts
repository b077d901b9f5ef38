// The statements both Snowflake front ends serve, by handle: start one (run here, recorded in
// the store), wait for it, read a page of its result, cancel it. The store row is the truth
// (src/state/statement-handles.ts), so a poll, a page or a cancel can reach any replica. What
// only the running replica can hold, its AbortController, lives here for as long as the
// statement runs; one heartbeat query per interval keeps every such row alive and tells the
// runner which of them were cancelled elsewhere. A replica that stops heartbeating (killed)
// leaves rows whose next reader marks them failed with an error that says so.
import { randomUUID } from 'node:crypto'
import { ERR_STATEMENT_RUNNER_LOST, RecordedFailure } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { Pipeline, RoundTrip } from '../../pipeline.js'
import type { AdmittedRecord } from '../../pipeline/admitted.js'
import type { Sealer } from '../../state/sealed.js'
import type { CancelReason, HandleOutcome, NewStatementHandle, StatementHandleRow, StatementHandleStore, StoredError } from '../../state/statement-handles.js'
import { ChunkTokens, handleOf, ownerDigest, storedError, tripSummary, type Handle } from './handles.js'
import type { StoredResult } from './manifest.js'
import { ResultPages, type PageEncoder, type ResultPagesOptions } from './pages.js'
import type { QueryData } from './query-data.js'
import { errorInfo } from './wire.js'

export interface StatementsOptions {
  store: StatementHandleStore
  pipeline: Pipeline
  upstreamOf: ResultPagesOptions['upstreamOf']
  /** This gateway process, as its rows name it. */
  replica: string
  /** How long a finished handle stays readable. */
  ttlSeconds: number
  /** Signs chunk tokens; derived from secrets.key so every replica accepts them. */
  chunkKey: Buffer
  /** Seals a held statement's request (binds, parameters, context) under a key every replica derives. */
  heldSealer?: Sealer
  /** Heartbeat (and cancel watch) interval of running statements, default 2 s. */
  heartbeatMs?: number
  /** How often a poll on a replica that does not run the statement re-reads it, default 250 ms. */
  pollMs?: number
  /** Heartbeats missed before a running statement counts as lost, default 5 (a busy store or a long pause is not a death). */
  staleBeats?: number
  /**
   * How long a synchronous statement (StartOptions.deferRow) may run before its running row is
   * written, default 200 ms. One that ends sooner is stored once, in its final state.
   */
  deferRowMs?: number
  log?: { warn: (obj: object, msg?: string) => void }
}

export interface StartOptions {
  id?: string
  clientRequestId?: string
  sessionKey?: string
  /** The admitted statement its later pages are masked under. */
  admitted?: AdmittedRecord
  /** The SQL API's request timeout: cancelled (reason timeout) when it runs out. */
  timeoutSeconds?: number
  /** The round trip the run fills in; what it recorded is kept with the handle. */
  trip?: RoundTrip
  /**
   * The approval that released it, when a resend claimed one: a handle held under the same
   * approval then serves this run's result (releasedFor) instead of waiting on it.
   */
  approvalId?: string
  /**
   * The client waits for it in this request (not async): its row is written only once it has
   * run for `deferRowMs`, is cancelled, or is answered as still running; a statement that ends
   * sooner is stored once, finished: as a companion of `trip`'s completed event when there is a
   * trip (committed in that event's statement, before the answer leaves), else by a write of its
   * own. Texts of DEFER_ROW_MAX_SQL characters or more are written at once all the same.
   */
  deferRow?: boolean
}

export interface HoldOptions {
  id?: string
  clientRequestId?: string
  sessionKey?: string
  /** How long the approval can stay undecided (its expiry); the row outlives it by the handle TTL. */
  heldSeconds: number
}

/**
 * A long text's row is written at once even when it could be deferred: its one final write
 * (text, admitted record and result together) was a single longer event-loop block, which another
 * client's small statement waited on (126-148 ms at worst beside a 1 MB statement, 56-65 ms
 * with the row written at start).
 */
const DEFER_ROW_MAX_SQL = 64 * 1024

/** The additional data a held request is sealed with: a sealed value copied to another row does not open. */
function heldAad (id: string, owner: string): string {
  return `snowflake-held\n${id}\n${owner}`
}

/** Runs the statement upstream under `signal` and hands back its manifest and masked first page. */
export type Work = (signal: AbortSignal, id: string) => Promise<StoredResult>

interface Running {
  abort: AbortController
  done: Promise<void>
  /** The row as the run's last write stored it, so a wait here needs no read after it. */
  finished?: StatementHandleRow
  /** A deferred row (StartOptions.deferRow): what it will store, and its write once started. */
  deferred?: Deferred
}

interface Deferred {
  row: NewStatementHandle
  createdAt: number
  /** The running row's write, once something needed it in the store (or the final row's handoff to the completed event). */
  written?: Promise<boolean>
  /**
   * That write succeeded: the row is in the store (heartbeated, cancellable from anywhere), or
   * the run is over and its row goes with the request's completed event, before the answer.
   */
  stored: boolean
}

/**
 * A stored failure as a poll renders it. "Unreachable, retry later" was the answer to the
 * request that submitted the statement; a poll answering it again would be retried for ever,
 * so it reads as the statement's failure (its text still says nothing ran).
 */
export function pollFailure (handle: Handle): Error | undefined {
  const error = handle.error
  if (error?.code !== 'SLUICE_UPSTREAM_UNAVAILABLE') return error
  return new RecordedFailure({ code: 'SLUICE_UPSTREAM_FAILED', message: error.message, statusCode: 422, snowflakeCode: '000603', sqlState: 'XX000' })
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export class SnowflakeStatements {
  readonly pages: ResultPages
  readonly tokens: ChunkTokens
  readonly replica: string
  readonly #store: StatementHandleStore
  readonly #pipeline: Pipeline
  readonly #ttl: number
  readonly #heartbeatMs: number
  readonly #pollMs: number
  readonly #staleMs: number
  readonly #deferMs: number
  readonly #log: StatementsOptions['log']
  readonly #sealer: Sealer | undefined
  /** Statements running in this process, only while they run. */
  readonly #running = new Map<string, Running>()
  #timer: NodeJS.Timeout | undefined
  #beating = false
  #lastPurge = 0

  constructor (options: StatementsOptions) {
    this.#store = options.store
    this.#pipeline = options.pipeline
    this.replica = options.replica
    this.#ttl = options.ttlSeconds
    this.#heartbeatMs = options.heartbeatMs ?? 2000
    this.#pollMs = options.pollMs ?? 250
    this.#staleMs = this.#heartbeatMs * (options.staleBeats ?? 5)
    this.#deferMs = options.deferRowMs ?? 200
    this.#log = options.log
    this.#sealer = options.heldSealer
    this.tokens = new ChunkTokens(options.chunkKey)
    this.pages = new ResultPages({ pipeline: options.pipeline, upstreamOf: options.upstreamOf })
  }

  /** How long a finished statement's row is kept: a row younger than this was never purged. */
  get ttlSeconds (): number {
    return this.#ttl
  }

  /** Records a running statement and runs `work` for it here; the handle is usable at once. */
  async start (principal: Principal, connection: string, sql: string, work: Work, options: StartOptions = {}): Promise<Handle> {
    const id = options.id ?? randomUUID()
    const owner = ownerDigest(principal)
    const row: NewStatementHandle = { id, owner, connection, sql, replica: this.replica, ...this.#optional(options) }
    if (options.deferRow === true && sql.length < DEFER_ROW_MAX_SQL) {
      // Admission committed its event, so the store was writable a moment ago; the row follows
      // (#written) when anything outside this request could need it.
      const deferred: Deferred = { row, createdAt: Date.now(), stored: false }
      this.#launch(id, owner, work, options, deferred)
      return handleOf(this.#provisional(deferred))
    }
    const created = await this.#store.create(row, this.#ttl)
    this.#launch(id, owner, work, options)
    return handleOf(created)
  }

  /** A deferred row as it will read once written: running, on this replica. */
  #provisional (deferred: Deferred): StatementHandleRow {
    const at = deferred.createdAt
    return { ...deferred.row, state: 'running', createdAt: at, heartbeatAt: Date.now(), expiresAt: at + this.#ttl * 1000 }
  }

  /**
   * Writes a deferred running row (once; later calls share the write). Resolves false when the
   * write failed: the run then stores its row, finished, when it ends.
   */
  async #written (running: Running): Promise<boolean> {
    const deferred = running.deferred
    if (deferred === undefined) return true
    deferred.written ??= this.#store.create(deferred.row, this.#ttl).then(() => {
      deferred.stored = true
      return true
    }, (err: unknown) => {
      this.#log?.warn({ err: (err as Error).message, statement: deferred.row.id }, 'snowflake statement: its running row could not be stored yet; it is stored when it ends')
      return false
    })
    return await deferred.written
  }

  /**
   * Ends a run in the store: one insert of the final row when its running row was never written,
   * handed to `trip` to commit with its completed event when the client waits for it there.
   */
  async #finish (id: string, running: Running | undefined, outcome: HandleOutcome, trip?: RoundTrip): Promise<StatementHandleRow | undefined> {
    const deferred = running?.deferred
    if (deferred !== undefined) {
      if (deferred.written === undefined && trip !== undefined && trip.completing !== true) {
        // Nothing outside this request knows the statement yet (its row was never needed), and
        // the answer that tells of it leaves only once its completed event has committed.
        const { row, companion } = this.#store.finishedCompanion(deferred.row, this.#ttl, outcome)
        ;(trip.companions ??= []).push(companion)
        deferred.written = Promise.resolve(true)
        deferred.stored = true
        return row
      }
      if (deferred.written === undefined) {
        // Claimed here, so a concurrent cancel or grace timer waits for this write instead.
        let stored!: (ok: boolean) => void
        deferred.written = new Promise((resolve) => { stored = resolve })
        try {
          const row = await this.#store.create(deferred.row, this.#ttl, outcome)
          deferred.stored = true
          return row
        } finally {
          stored(deferred.stored)
        }
      }
      if (!await deferred.written) return await this.#store.create(deferred.row, this.#ttl, outcome)
    }
    return await this.#store.finish(id, outcome, this.#ttl)
  }

  #launch (id: string, owner: string, work: Work, options: StartOptions, deferred?: Deferred): void {
    const abort = new AbortController()
    const running: Running = { abort, done: Promise.resolve(), ...(deferred !== undefined && { deferred }) }
    this.#running.set(id, running)
    const grace = deferred === undefined ? undefined : setTimeout(() => { void this.#written(running) }, this.#deferMs)
    grace?.unref()
    const timeout = options.timeoutSeconds !== undefined && options.timeoutSeconds > 0
      ? setTimeout(() => { void this.cancel({ id, owner }, 'timeout') }, options.timeoutSeconds * 1000)
      : undefined
    timeout?.unref()
    running.done = this.#run(id, work, abort, options.trip, running).then((finished) => {
      if (finished !== undefined) running.finished = finished
    }).finally(() => {
      clearTimeout(timeout)
      clearTimeout(grace)
      this.#running.delete(id)
    })
    this.#beat()
    this.#purgeNowAndThen()
  }

  /**
   * Records a statement held for approval `approvalId`: nothing runs; `request` (what running it
   * needs: binds, parameters, context) is sealed with the row, bound to its id and owner.
   * `heldSeconds` keeps the row at least as long as the approval can be decided.
   */
  async hold (principal: Principal, connection: string, sql: string, approvalId: string, request: unknown, options: HoldOptions): Promise<Handle> {
    if (this.#sealer === undefined) throw new TypeError('SnowflakeStatements needs heldSealer to hold statements')
    const id = options.id ?? randomUUID()
    const owner = ownerDigest(principal)
    const row = {
      id, owner, connection, sql, replica: this.replica, approvalId,
      heldRequest: this.#sealer.seal(request, heldAad(id, owner)),
      ...(options.clientRequestId === undefined ? {} : { clientRequestId: options.clientRequestId }),
      ...(options.sessionKey === undefined ? {} : { sessionKey: options.sessionKey })
    }
    await this.#store.create(row, Math.max(this.#ttl, options.heldSeconds + this.#ttl))
    const stored = await this.#store.get(id, owner)
    return handleOf(stored ?? { ...row, state: 'held', createdAt: Date.now(), expiresAt: 0, heartbeatAt: Date.now() })
  }

  /** A held statement's request as it was sealed; undefined when this replica cannot open it (another secrets.key). */
  heldRequest<T> (handle: Handle): T | undefined {
    if (handle.sealedRequest === undefined || this.#sealer === undefined) return undefined
    return this.#sealer.open<T>(handle.sealedRequest, heldAad(handle.id, handle.owner))
  }

  /**
   * Runs a held statement here under its own handle, once its approval was claimed by this
   * replica. Undefined when the row was no longer held (cancelled meanwhile): nothing runs.
   */
  async release (handle: Handle, work: Work, options: StartOptions = {}): Promise<Handle | undefined> {
    const admitted = options.admitted === undefined ? undefined : { record: options.admitted }
    if (!await this.#store.release(handle.id, this.replica, this.#ttl, admitted)) return undefined
    this.#launch(handle.id, handle.owner, work, options)
    return await this.#reread(handle)
  }

  /** Ends a held statement unrun (a denial, expiry or withdrawal: failed; a cancel: aborted), and reads it again. */
  async endHeld (handle: Handle, outcome: { state: 'failed', error: StoredError } | { state: 'aborted', cancelReason: CancelReason }): Promise<Handle> {
    await this.#store.endHeld(handle.id, outcome, this.#ttl)
    return await this.#reread(handle)
  }

  /** The owner's handle that was released under this approval (a twin of a statement sent twice). */
  async releasedFor (approvalId: string, owner: string): Promise<Handle | undefined> {
    const row = await this.#store.releasedFor(approvalId, owner)
    return row === undefined ? undefined : await this.#checked(row)
  }

  /** Runs `work` and stores how it ended; resolves with the stored row, undefined when cancelled or unstored. */
  async #run (id: string, work: Work, abort: AbortController, trip: RoundTrip | undefined, running?: Running): Promise<StatementHandleRow | undefined> {
    try {
      const result = await work(abort.signal, id)
      return await this.#finish(id, running, { state: 'succeeded', manifest: result.manifest, firstPage: result.firstPage, trip: trip === undefined ? undefined : tripSummary(trip) }, trip)
    } catch (err) {
      // Cancelled: the row already says so (a cancel, a timeout, or a reader that found it lost).
      if (abort.signal.aborted) return undefined
      const info = errorInfo(err, id, (message, codes) => this.#pipeline.releaseError(undefined, undefined, message, codes))
      if (info.catalogueCode === 'SLUICE_INTERNAL') this.#log?.warn({ err, statement: id }, 'snowflake statement failed')
      const outcome = { state: 'failed' as const, error: storedError(info, (err as { statusCode?: number }).statusCode), trip: trip === undefined ? undefined : tripSummary(trip) }
      return await this.#finish(id, running, outcome, trip).catch((e: unknown) => {
        this.#log?.warn({ err: (e as Error).message, statement: id }, 'snowflake statement: its failure could not be stored; readers will find it lost')
        return undefined
      })
    }
  }

  #optional (options: StartOptions): { clientRequestId?: string, sessionKey?: string, admitted?: unknown, approvalId?: string } {
    const out: { clientRequestId?: string, sessionKey?: string, admitted?: unknown, approvalId?: string } = {}
    if (options.approvalId !== undefined) out.approvalId = options.approvalId
    if (options.clientRequestId !== undefined) out.clientRequestId = options.clientRequestId
    if (options.sessionKey !== undefined) out.sessionKey = options.sessionKey
    if (options.admitted !== undefined) out.admitted = { record: options.admitted }
    return out
  }

  /** Stores an already finished result (multi-statement children, Snowpark's cancel-all answer). */
  async put (principal: Principal, connection: string, sql: string, result: StoredResult, options: { sessionKey?: string, admitted?: AdmittedRecord, part?: string, trip?: RoundTrip } = {}): Promise<Handle> {
    const id = randomUUID()
    const owner = ownerDigest(principal)
    const row = { id, owner, connection, sql, replica: this.replica, ...this.#optional(options) }
    if (options.admitted !== undefined && options.part !== undefined) row.admitted = { record: options.admitted, part: options.part }
    return handleOf(await this.#store.create(row, this.#ttl, { state: 'succeeded', manifest: result.manifest, firstPage: result.firstPage, trip: options.trip === undefined ? undefined : tripSummary(options.trip) }))
  }

  /** The handle if `principal` owns it; undefined for unknown, foreign and expired ids alike. */
  async get (id: string, principal: Principal): Promise<Handle | undefined> {
    const row = await this.#store.get(id, ownerDigest(principal))
    return row === undefined ? undefined : await this.#checked(row)
  }

  /** For chunk downloads, which carry a Sluice-signed chunk token instead of a session. */
  async getForChunk (id: string, token: string): Promise<Handle | undefined> {
    const row = await this.#store.getAny(id)
    if (row === undefined || !this.tokens.verify(row, token)) return undefined
    return handleOf(row)
  }

  /** A running row whose replica stopped heartbeating it is marked failed, once, by whoever reads it. */
  async #checked (row: StatementHandleRow): Promise<Handle> {
    if (row.state !== 'running' || this.#running.has(row.id) || Date.now() - row.heartbeatAt <= this.#staleMs) return handleOf(row)
    const lost = new ERR_STATEMENT_RUNNER_LOST(row.id)
    const error = storedError(errorInfo(lost, row.id), lost.statusCode)
    if (await this.#store.failIfStale(row.id, this.#staleMs / 1000, error, this.#ttl)) {
      return handleOf((await this.#store.get(row.id, row.owner)) ?? { ...row, state: 'failed', error })
    }
    return handleOf(row)
  }

  /** Waits up to `seconds` for a running statement: on its runner here, else by re-reading its row. */
  async wait (handle: Handle, seconds: number): Promise<Handle> {
    if (handle.state !== 'running') return handle
    const local = this.#running.get(handle.id)
    if (local !== undefined) {
      if (seconds > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([local.done, new Promise((resolve) => { timer = setTimeout(resolve, seconds * 1000) })])
        clearTimeout(timer)
      }
      if (local.finished !== undefined) return handleOf(local.finished)
      // Answered as still running (a zero wait included: syncWaitSeconds 0): the client polls it
      // next, perhaps on another replica. (Had the write failed, the row is stored when the run
      // ends; until then only this replica knows it.)
      await this.#written(local)
      return seconds > 0 ? await this.#reread(handle) : handle
    }
    if (seconds <= 0) return handle
    const until = Date.now() + seconds * 1000
    let current = handle
    while (current.state === 'running' && Date.now() < until) {
      await sleep(Math.min(this.#pollMs, until - Date.now()))
      current = await this.#reread(current)
    }
    return current
  }

  /** Waits up to `seconds` while a statement is still held (released by a poll elsewhere), re-reading its row. */
  async waitReleased (handle: Handle, seconds: number): Promise<Handle> {
    const until = Date.now() + seconds * 1000
    let current = handle
    while (current.state === 'held' && Date.now() < until) {
      await sleep(Math.min(this.#pollMs, until - Date.now()))
      current = await this.#reread(current)
    }
    return current
  }

  async #reread (handle: Handle): Promise<Handle> {
    const row = await this.#store.get(handle.id, handle.owner)
    return row === undefined ? handle : await this.#checked(row)
  }

  /**
   * Cancels a running statement from any replica: the row says aborted at once, and the runner
   * (here, or on the replica whose heartbeat reads the row next) stops it upstream.
   */
  async cancel (handle: Pick<Handle, 'id' | 'owner'>, reason: CancelReason = 'client'): Promise<boolean> {
    const local = this.#running.get(handle.id)
    // A deferred row is written first, so the cancel (and its reason) is what the store says.
    if (local !== undefined) await this.#written(local)
    const cancelled = await this.#store.cancel(handle.id, handle.owner, reason)
    local?.abort.abort()
    return cancelled
  }

  /** Statements running here whose rows are not in the store yet, matching `filter`. */
  #unwritten (filter: (row: NewStatementHandle) => boolean): Handle[] {
    const out: Handle[] = []
    for (const running of this.#running.values()) {
      const deferred = running.deferred
      if (deferred !== undefined && !deferred.stored && running.finished === undefined && filter(deferred.row)) out.push(handleOf(this.#provisional(deferred)))
    }
    return out
  }

  /** The owner's running statement submitted with this client requestId, if any. */
  async byClientRequest (principal: Principal, requestId: string): Promise<Handle | undefined> {
    const owner = ownerDigest(principal)
    const [local] = this.#unwritten((row) => row.owner === owner && row.clientRequestId === requestId)
    if (local !== undefined) return local
    const [row] = await this.#store.runningByRequest(owner, requestId)
    return row === undefined ? undefined : handleOf(row)
  }

  /** The owner's statements still running in one Sluice session. */
  async runningIn (principal: Principal, sessionKey: string): Promise<Handle[]> {
    const owner = ownerDigest(principal)
    const local = this.#unwritten((row) => row.owner === owner && row.sessionKey === sessionKey)
    return [...local, ...(await this.#store.runningInSession(owner, sessionKey)).map(handleOf)]
  }

  /** Client page `index` (a SQL API partition, a connector chunk + 1), masked and encoded. */
  async page<T> (handle: Handle, index: number, trip: RoundTrip, encoder: PageEncoder<T>): Promise<T> {
    return await this.pages.page(handle, index, trip, encoder)
  }

  /** The running replica's own chunk list of a result, so its first chunks need no re-request. */
  seed (id: string, data: QueryData): void {
    this.pages.seed(id, data)
  }

  /** One query for every statement running here: heartbeats them, aborts those cancelled elsewhere. */
  #beat (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => {
      if (this.#running.size === 0) {
        clearInterval(this.#timer)
        this.#timer = undefined
        return
      }
      if (this.#beating) return
      this.#beating = true
      // Rows not written yet are left out: the store cannot say they were cancelled.
      const ids = [...this.#running].filter(([, r]) => r.deferred === undefined || r.deferred.stored).map(([id]) => id)
      this.#store.heartbeat(ids, this.#ttl).then((answers) => {
        const live = new Set(answers.filter((a) => a.state === 'running').map((a) => a.id))
        for (const id of ids) if (!live.has(id)) this.#running.get(id)?.abort.abort()
      }, (err: unknown) => {
        this.#log?.warn({ err: (err as Error).message }, 'snowflake statements: heartbeat failed')
      }).finally(() => { this.#beating = false })
    }, this.#heartbeatMs)
    this.#timer.unref()
  }

  /** A bounded, indexed purge of expired handles, at most once a minute, off the request's path. */
  #purgeNowAndThen (): void {
    const now = Date.now()
    if (now - this.#lastPurge < 60_000) return
    this.#lastPurge = now
    this.#store.purgeExpired(500).catch((err: unknown) => {
      this.#log?.warn({ err: (err as Error).message }, 'snowflake statements: purging expired handles failed; lookups ignore them anyway')
    })
  }

  /** Stops what runs here; their rows are marked lost so other replicas answer at once. */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    const ids = [...this.#running.keys()]
    for (const id of ids) this.#running.get(id)?.abort.abort()
    await Promise.all(ids.map(async (id) => {
      const lost = new ERR_STATEMENT_RUNNER_LOST(id)
      await this.#store.finish(id, { state: 'failed', error: storedError(errorInfo(lost, id), lost.statusCode) }, this.#ttl).catch(() => false)
    }))
    this.pages.clear()
  }
}
