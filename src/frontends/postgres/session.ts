// One authenticated client session: Simple Query and the extended protocol (Parse / Bind /
// Describe / Execute / Sync / Close / Flush) on one dedicated upstream connection. Every
// statement goes through the pipeline: admitted (analysed, decided, its admitted event
// committed) before the upstream sees it, its rows masked as they stream, its completion
// recorded before the client learns the statement is complete: CommandComplete (of an Execute,
// of a Query's last statement) leaves only after the completed event is committed, and a
// completion that cannot be recorded is answered 58000 in its place (DESIGN.md §1, record ②).
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { ERR_POSTGRES_UNSUPPORTED, isSluiceError } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { Admission, ConnectionRef, Pipeline, RoundTrip, Statement, StatementRun } from '../../pipeline.js'
import type { Recording } from '../../recording/recorder.js'
import { recordAdmitted, recordCompleted, unrecordedRefusal, type RoundTripContext } from '../../recording/round-trips.js'
import { BinaryFormatRefused, decodeBinaryParam } from '../../warehouses/postgres/codec.js'
import type { Described, Execution, UpstreamSession, UpstreamValue } from '../../warehouses/postgres/upstream.js'
import { deallocateTarget, sessionWireError, wireError } from './errors.js'
import { formatAt, readBind, readExecute, readParse, readQuery, readTarget, type Frame } from './frames.js'
import * as msg from './messages.js'
import { checkBinary, completionTag, StreamedResult, wireFields, write } from './results.js'
import { merge, Refusal, type Portal, type Prepared, type Running } from './session-state.js'

export const FRONT_END = 'postgres-wire'

/**
 * Suspended portals a session may keep at once: each holds up to two upstream batches while the
 * client reads others, so the bound on a session's memory is this many times that.
 */
export const MAX_SUSPENDED_PORTALS = 16

/** Statements that open or end a transaction block (the client's own, from then on). */
const TRANSACTION_CONTROL = /^\s*(begin|start\s+transaction|commit|end|abort|rollback(?!\s+(?:work\s+|transaction\s+)?to\b))\b/i

export interface SessionDeps {
  pipeline: Pipeline
  /**
   * The same analysis and policy without hold or recording: a Describe parses its statement
   * upstream (names, types and errors come back), so it is decided first, and a statement the
   * policy refuses never reaches the upstream even to be described. Its Execute is admitted,
   * held and recorded by `pipeline` as usual.
   */
  preflight?: Pipeline
  recording: Recording
  log: { warn: (o: object, m: string) => void, error: (o: object, m: string) => void }
}

export interface ClientFacts {
  sourceIp?: string
  application?: string
}

export class WireSession {
  readonly #socket: Socket
  readonly #principal: Principal
  readonly #connection: ConnectionRef
  readonly #upstream: UpstreamSession
  readonly #deps: SessionDeps
  readonly #client: ClientFacts
  readonly #sessionKey = `${FRONT_END}:${randomUUID()}`
  readonly #statements = new Map<string, Prepared>()
  readonly #portals = new Map<string, Portal>()
  #skipUntilSync = false
  #portalSeq = 0

  constructor (socket: Socket, principal: Principal, connection: ConnectionRef, upstream: UpstreamSession, deps: SessionDeps, client: ClientFacts) {
    this.#socket = socket
    this.#principal = principal
    this.#connection = connection
    this.#upstream = upstream
    this.#deps = deps
    this.#client = client
  }

  get upstream (): UpstreamSession { return this.#upstream }

  /** Handles one frontend message; returns false on Terminate. */
  async handle (frame: Frame): Promise<boolean> {
    if (frame.type === 'X') return false
    if (this.#skipUntilSync && frame.type !== 'S') return true
    try {
      switch (frame.type) {
        case 'Q': await this.#simpleQuery(readQuery(frame.body)); break
        case 'P': await this.#parse(frame.body); break
        case 'B': await this.#bind(frame.body); break
        case 'D': await this.#describe(frame.body); break
        case 'E': await this.#execute(frame.body); break
        case 'C': await this.#close(frame.body); break
        case 'S': await this.#sync(); break
        case 'H': break // Flush: every message is written as soon as it is ready
        case 'd': case 'c': case 'f': break // stray COPY data: COPY FROM STDIN is never started
        default: throw new ERR_POSTGRES_UNSUPPORTED(`message type '${frame.type}' is not supported through Sluice`)
      }
    } catch (err) {
      await this.#fail(err)
      if (frame.type === 'Q') await write(this.#socket, msg.readyForQuery(this.#upstream.clientStatus))
      else this.#skipUntilSync = true
    }
    return true
  }

  async #fail (err: unknown): Promise<void> {
    if (err instanceof Refusal) return
    await write(this.#socket, msg.errorResponse(this.#wire(err)))
  }

  #wire (err: unknown): msg.WireError {
    if (!isSluiceError(err) && !(err instanceof RangeError) && !(err instanceof BinaryFormatRefused) && typeof (err as { code?: unknown })?.code !== 'string') {
      this.#deps.log.error({ err: (err as Error)?.message }, 'postgres session: unexpected error')
    }
    // Upstream errors quote values: released through the pipeline like every upstream text.
    return sessionWireError(err, (text, sqlState) => this.#deps.pipeline.releaseError(undefined, undefined, text, { sqlState }))
  }

  #statement (sql: string, params?: unknown[]): Statement {
    const s: Statement = {
      requestId: randomUUID(),
      frontEnd: FRONT_END,
      principal: this.#principal,
      connection: this.#connection,
      sql,
      client: { ...(this.#client.sourceIp !== undefined && { sourceIp: this.#client.sourceIp }), ...(this.#client.application !== undefined && { application: this.#client.application }) }
    }
    if (params !== undefined) s.params = params
    return s
  }

  #begin (statement: Statement, route: string): Running {
    const ctx: RoundTripContext = {
      requestId: statement.requestId,
      frontEnd: FRONT_END,
      principal: this.#principal,
      sessionKey: this.#sessionKey,
      connection: this.#connection.name,
      route,
      method: 'postgres',
      ...(this.#client.sourceIp !== undefined && { sourceIp: this.#client.sourceIp }),
      ...(this.#client.application !== undefined && { userAgent: this.#client.application })
    }
    const recording = this.#deps.recording
    const trip: RoundTrip = { onAdmitted: (t) => recordAdmitted(recording, ctx, t) }
    return { trip, ctx, started: performance.now() }
  }

  /** Writes the completion event; a failure to record withholds the answer (fail closed). */
  async #complete (running: Running, error?: unknown): Promise<void> {
    if (error !== undefined) {
      const code = isSluiceError(error) ? error.code : 'SLUICE_POSTGRES_UPSTREAM'
      running.trip.errorCode ??= code
      running.trip.errorMessage ??= this.#wire(error).message
    }
    try {
      await recordCompleted(this.#deps.recording, running.ctx, running.trip, { durationMs: performance.now() - running.started })
    } catch (err) {
      this.#deps.log.error({ err: (err as Error).message }, 'recording failed; answer withheld')
      const { error: refusal } = unrecordedRefusal(running.trip, running.ctx.requestId)
      await write(this.#socket, msg.errorResponse(wireError(refusal)))
      throw new Refusal()
    }
  }

  /**
   * A suspended portal holds the one upstream connection; before other work it lets it go, its
   * upstream portal kept open (src/warehouses/postgres/upstream.ts, Execution.park), so the
   * client resumes it later as PostgreSQL lets it: until Close or the end of its transaction.
   */
  async #parkAll (keep?: Portal): Promise<void> {
    for (const portal of this.#portals.values()) {
      if (portal === keep) continue
      const execution = portal.running?.result?.execution
      if (execution === undefined || !execution.holdsConnection) continue
      if (execution.portal === '') await this.#abandon(portal)
      else await this.#upstream.park(execution)
    }
  }

  /** A portal given up (closed, replaced, its transaction over): its round trip is completed. */
  async #abandon (portal: Portal): Promise<void> {
    const running = portal.running
    if (running?.result === undefined) return
    running.result.abandon()
    portal.running = undefined
    await this.#complete(running)
  }

  /** The transaction the portals live in ended: every portal goes, as PostgreSQL drops them. */
  async #dropAll (endImplicit = true): Promise<void> {
    for (const portal of this.#portals.values()) await this.#abandon(portal)
    this.#portals.clear()
    if (endImplicit) await this.#upstream.endImplicit()
  }

  async #simpleQuery (sql: string): Promise<void> {
    // Outside a transaction block a Query ends the implicit transaction (portals and all); in
    // one, named portals live on and only the unnamed portal, which the Query reuses, goes.
    if (this.#upstream.clientStatus === 'I') await this.#dropAll()
    else {
      await this.#parkAll()
      const unnamed = this.#portals.get('')
      if (unnamed !== undefined) await this.#abandon(unnamed)
      this.#portals.delete('')
    }
    if (sql.trim() === '' || /^[\s;]*$/.test(sql)) {
      await write(this.#socket, msg.emptyQueryResponse())
      await write(this.#socket, msg.readyForQuery(this.#upstream.clientStatus))
      return
    }
    if (await this.#deallocate(sql)) return
    const statement = this.#statement(sql)
    const running = this.#begin(statement, 'Query')
    let admission: Admission
    try {
      // The whole message is decided before any of it runs: one refused statement refuses all.
      admission = await this.#deps.pipeline.admit(statement, running.trip)
    } catch (err) {
      await this.#complete(running, err)
      throw err
    }
    const texts = admission.analysis.statements.map((s) => s.text)
    // Several statements in one Query run in one implicit transaction, as PostgreSQL runs them.
    const wrap = texts.length > 1 && this.#upstream.status === 'I' && !admission.analysis.statements.some((s) => s.kind === 'transaction')
    let failure: unknown
    // The last statement's CommandComplete is what tells the client the message's answer is
    // whole: it waits for the completed event (a failure to record replaces it by 58000).
    let last: Buffer | undefined
    try {
      if (wrap) await this.#quiet('BEGIN')
      for (const text of texts) {
        if (last !== undefined) await write(this.#socket, last)
        last = await this.#runSimple({ ...statement, sql: text }, admission, running)
      }
      if (wrap) await this.#quiet('COMMIT')
    } catch (err) {
      failure = err
      if (wrap && this.#upstream.status !== 'I') await this.#quiet('ROLLBACK').catch(() => {})
    }
    await this.#complete(running, failure)
    // A COMMIT / ROLLBACK ended the transaction the remaining portals lived in.
    if (this.#upstream.clientStatus === 'I') await this.#dropAll(false)
    if (failure !== undefined) throw failure
    if (last !== undefined) await write(this.#socket, last)
    await write(this.#socket, msg.readyForQuery(this.#upstream.clientStatus))
  }

  /**
   * DEALLOCATE of a prepared statement is the SQL spelling of a Close message: the statements a
   * client prepares through Sluice live in Sluice (the upstream only ever sees unnamed ones), so
   * it is answered here, as Close is, and nothing reaches the upstream. psycopg sends it when
   * its prepared-statement cache rotates.
   */
  async #deallocate (sql: string): Promise<boolean> {
    const target = deallocateTarget(sql)
    if (target === undefined) return false
    if (target.all) this.#statements.clear()
    else {
      const key = target.quoted ? target.name : [...this.#statements.keys()].find((k) => k === target.name || k === target.name.toLowerCase())
      if (key === undefined || !this.#statements.delete(key)) {
        throw Object.assign(new Error(`prepared statement "${target.name}" does not exist`), { code: '26000' })
      }
    }
    await write(this.#socket, msg.commandComplete('DEALLOCATE'))
    await write(this.#socket, msg.readyForQuery(this.#upstream.clientStatus))
    return true
  }

  /** Transaction control Sluice itself adds around a multi-statement Query (not sent to the client). */
  async #quiet (sql: string): Promise<void> {
    const execution = this.#upstream.execute(sql, [], [])
    await execution.next()
    await execution.ended
    if (execution.error !== undefined) throw execution.error
  }

  /**
   * Starts a statement upstream under its run: past the rule's statementTimeoutSeconds, which the
   * run keeps, the upstream statement is cancelled (the client gets 57014, as from PostgreSQL's
   * own statement_timeout); once the upstream is done with it, the run's timer goes.
   */
  #start (run: StatementRun, paramTypes: number[], values: UpstreamValue[], portal = ''): Execution {
    const execution = this.#upstream.execute(run.statement.sql, paramTypes, values, undefined, portal)
    run.onExpiry(execution.ended, async () => { await this.#upstream.cancel() })
    void execution.ended.then(() => { run.close() })
    return execution
  }

  /** Runs one statement of a Query; returns its CommandComplete (or EmptyQueryResponse), unsent. */
  async #runSimple (statement: Statement, admission: Admission, running: Running): Promise<Buffer> {
    // Each statement of the Query is a run of its own: its own timeout, cap and release facts.
    const trip: RoundTrip = {}
    const run = this.#deps.pipeline.run(statement, admission, trip)
    const execution = this.#start(run, [], [])
    const fields = await execution.fields
    if (fields !== null) {
      const result = new StreamedResult(run, execution, fields, [])
      try {
        await result.check()
      } catch (err) {
        await execution.ended
        throw err
      }
      await write(this.#socket, msg.rowDescription(wireFields(fields, [])))
      await result.send(this.#socket, 0)
      merge(running.trip, trip)
      return await this.#finish(execution, result.rowsSent)
    }
    await execution.next()
    merge(running.trip, trip)
    return await this.#finish(execution, 0)
  }

  /** The statement's completion message, once the upstream is done with it (not yet sent). */
  async #finish (execution: Execution, rows: number): Promise<Buffer> {
    await execution.ended
    if (execution.error !== undefined) throw execution.error
    return execution.tag === '' ? msg.emptyQueryResponse() : msg.commandComplete(completionTag(execution.tag, rows))
  }

  async #parse (body: Buffer): Promise<void> {
    const p = readParse(body)
    if (p.name !== '' && this.#statements.has(p.name)) {
      throw Object.assign(new Error(`prepared statement "${p.name}" already exists`), { code: '42P05' })
    }
    this.#statements.set(p.name, { sql: p.sql, paramTypes: p.paramTypes })
    await write(this.#socket, msg.parseComplete())
  }

  #prepared (name: string): Prepared {
    const prepared = this.#statements.get(name)
    if (prepared === undefined) throw Object.assign(new Error(`prepared statement "${name}" does not exist`), { code: '26000' })
    return prepared
  }

  async #described (prepared: Prepared): Promise<Described> {
    if (prepared.described === undefined) {
      await this.#preflight(prepared.sql)
      await this.#parkAll()
      prepared.described = await this.#upstream.describe(prepared.sql, prepared.paramTypes)
    }
    return prepared.described
  }

  /** A refused Describe is a round trip of its own: recorded, answered with the refusal. */
  async #preflight (sql: string): Promise<void> {
    const preflight = this.#deps.preflight
    if (preflight === undefined) return
    const statement = this.#statement(sql)
    const trip: RoundTrip = {}
    try {
      await preflight.admit(statement, trip)
    } catch (err) {
      const running = this.#begin(statement, 'Describe')
      running.trip = { ...trip, ...(running.trip.onAdmitted !== undefined && { onAdmitted: running.trip.onAdmitted }) }
      await this.#complete(running, err)
      throw err
    }
  }

  async #bind (body: Buffer): Promise<void> {
    const b = readBind(body)
    const prepared = this.#prepared(b.statement)
    const binary = b.paramFormats.some((f) => f === 1)
    const types = binary ? (await this.#described(prepared)).paramTypes : prepared.paramTypes
    const values = b.values.map((v, i) => v === null ? null : formatAt(b.paramFormats, i) === 1 ? decodeBinaryParam(v, types[i] ?? 0) : v.toString('utf8'))
    if (b.portal !== '' && this.#portals.has(b.portal)) throw Object.assign(new Error(`portal "${b.portal}" already exists`), { code: '42P03' })
    const old = this.#portals.get(b.portal)
    if (old?.running?.result !== undefined) { old.running.result.abandon(); await this.#complete(old.running) }
    this.#portals.set(b.portal, { prepared, values, resultFormats: b.resultFormats })
    await write(this.#socket, msg.bindComplete())
  }

  async #describe (body: Buffer): Promise<void> {
    const t = readTarget(body)
    if (t.target === 'S') {
      const d = await this.#described(this.#prepared(t.name))
      await write(this.#socket, msg.parameterDescription(d.paramTypes))
      await write(this.#socket, d.fields === null ? msg.noData() : msg.rowDescription(wireFields(d.fields, [])))
      return
    }
    const portal = this.#portals.get(t.name)
    if (portal === undefined) throw Object.assign(new Error(`portal "${t.name}" does not exist`), { code: '34000' })
    const d = await this.#described(portal.prepared)
    if (d.fields !== null) checkBinary(d.fields, portal.resultFormats)
    await write(this.#socket, d.fields === null ? msg.noData() : msg.rowDescription(wireFields(d.fields, portal.resultFormats)))
  }

  async #execute (body: Buffer): Promise<void> {
    const e = readExecute(body)
    const portal = this.#portals.get(e.portal)
    if (portal === undefined) throw Object.assign(new Error(`portal "${e.portal}" does not exist`), { code: '34000' })
    let running = portal.running
    if (running?.result === undefined && portal.done !== undefined) {
      await write(this.#socket, msg.commandComplete(completionTag(portal.done, 0)))
      return
    }
    if (running?.result === undefined) {
      const suspended = [...this.#portals.values()].filter((p) => p.running?.result !== undefined).length
      if (e.maxRows > 0 && suspended >= MAX_SUSPENDED_PORTALS) {
        throw Object.assign(new Error(`too many suspended portals: Sluice keeps at most ${MAX_SUSPENDED_PORTALS} per session; read one to its end or Close it first`), { code: '54000' })
      }
      await this.#parkAll()
      const statement = this.#statement(portal.prepared.sql, portal.values.map((v) => Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : v))
      running = this.#begin(statement, 'Execute')
      let admission: Admission
      try {
        admission = await this.#deps.pipeline.admit(statement, running.trip)
        if (admission.analysis.statements.length > 1) throw Object.assign(new Error('cannot insert multiple commands into a prepared statement'), { code: '42601' })
      } catch (err) {
        await this.#complete(running, err)
        throw err
      }
      if (TRANSACTION_CONTROL.test(statement.sql)) this.#upstream.adoptBlock()
      // An Execute with a row limit may leave the portal suspended: its upstream portal is
      // named, so it can stay open while the client runs other statements.
      const upstreamPortal = e.maxRows > 0 ? `sluice_portal_${++this.#portalSeq}` : ''
      const run = this.#deps.pipeline.run(statement, admission, running.trip)
      const execution = this.#start(run, portal.prepared.paramTypes, portal.values, upstreamPortal)
      let fields
      try {
        fields = await execution.fields
        if (fields !== null) checkBinary(fields, portal.resultFormats)
      } catch (err) {
        execution.abandon()
        await execution.ended
        await this.#complete(running, err)
        throw err
      }
      if (fields === null) {
        let done: Buffer
        try {
          await execution.next()
          done = await this.#finish(execution, 0)
        } catch (err) {
          await this.#complete(running, err)
          throw err
        }
        await this.#complete(running)
        portal.done = execution.tag ?? ''
        await write(this.#socket, done)
        return
      }
      running.result = new StreamedResult(run, execution, fields, portal.resultFormats)
      portal.running = running
    } else {
      // Resumed: another suspended portal may hold the connection now.
      await this.#parkAll(portal)
    }
    const result = running.result as StreamedResult
    let complete: boolean
    try {
      complete = await result.send(this.#socket, e.maxRows)
    } catch (err) {
      portal.running = undefined
      result.abandon()
      await this.#complete(running, err)
      throw err
    }
    if (!complete) {
      await write(this.#socket, msg.portalSuspended())
      return
    }
    portal.running = undefined
    const execution = result.execution
    await execution.ended
    if (execution.error !== undefined) {
      await this.#complete(running, execution.error)
      throw execution.error
    }
    await this.#complete(running)
    portal.done = execution.tag ?? ''
    await write(this.#socket, msg.commandComplete(completionTag(execution.tag, result.lastWritten)))
  }

  async #close (body: Buffer): Promise<void> {
    const t = readTarget(body)
    if (t.target === 'S') this.#statements.delete(t.name)
    else {
      const portal = this.#portals.get(t.name)
      if (portal !== undefined) await this.#abandon(portal)
      this.#portals.delete(t.name)
    }
    await write(this.#socket, msg.closeComplete())
  }

  async #sync (): Promise<void> {
    this.#skipUntilSync = false
    // Outside a transaction block Sync ends the implicit transaction, and its portals with it;
    // in a block they live until it ends.
    if (this.#upstream.clientStatus === 'I') await this.#dropAll()
    await write(this.#socket, msg.readyForQuery(this.#upstream.clientStatus))
  }

  /** The client went away: what still streams is completed in the trail, the upstream closed. */
  async end (): Promise<void> {
    // Not committed: a client that leaves mid-transaction has it rolled back, as PostgreSQL does.
    try { await this.#dropAll(false) } catch {}
    await this.#upstream.close()
  }
}
