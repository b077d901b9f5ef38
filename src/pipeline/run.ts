// An admitted statement's run: what the pipeline enforces around the upstream, whatever the
// protocol that carries it (DESIGN.md §1). Every front end asks the pipeline for one
// (`Pipeline.run`) right after admission (or, for a later page of a result, after resuming the
// stored admission) and goes through it for everything that is policy rather than wire:
//   - the rule's statementTimeoutSeconds, kept by Sluice itself (`signal`, `remainingMs`,
//     `onExpiry`, `timedOut`), also when a later request (a poll, a page) carries on the run;
//   - the rule's row cap (`cap`, `checkTotal`, `capped`, `limited`), refused or announced and
//     recorded the same way everywhere;
//   - the upstream call (`upstream`), in its span and timing, under that deadline;
//   - the release of pages (masked and counted) and of upstream error texts.
// A front end keeps only its codec: how its wire asks, pages and answers.
import { ERR_ROWS_LIMIT, ERR_STATEMENT_TIMEOUT } from '../errors.js'
import { inSpan } from '../tracing/spans.js'
import type { RoundTrip } from '../pipeline.js'
import { limitedNotice, rowCap, type RowCap, type RowLimitOptions } from './limits.js'
import type { UpstreamErrorCodes } from './stages.js'
import { timed } from './timings.js'
import type { Admission, NeutralResult, ResultPage, Statement } from './types.js'

/** What a run needs of the pipeline (kept narrow so the run has no way around it). */
export interface RunPipeline {
  release: (statement: Statement, admission: Admission, result: NeutralResult, trip: RoundTrip) => NeutralResult
  releaseError: (statement: Statement | undefined, admission: Admission | undefined, message: string, codes?: UpstreamErrorCodes) => string
}

export interface RunOptions extends RowLimitOptions {
  /** The client's own cancellation (a closed connection, an abort request, a tool call cancelled). */
  signal?: AbortSignal
  /**
   * When the statement started running upstream (ms since the epoch), for a run carried on by a
   * later request (a poll, a page): the rule's timeout counts from then, not from this request.
   */
  startedAt?: number
}

export class StatementRun {
  readonly statement: Statement
  readonly admission: Admission
  readonly trip: RoundTrip
  /** The most rows the result may hand out, and what to do past them; undefined: no cap. */
  readonly cap: RowCap | undefined
  /** The client's cancellation and the rule's deadline as one signal (undefined: neither). */
  readonly signal: AbortSignal | undefined
  readonly #pipeline: RunPipeline
  readonly #deadline: AbortController | undefined
  readonly #timer: NodeJS.Timeout | undefined
  readonly #seconds: number | undefined
  readonly #endsAt: number | undefined

  constructor (pipeline: RunPipeline, statement: Statement, admission: Admission, trip: RoundTrip, options: RunOptions = {}) {
    this.#pipeline = pipeline
    this.statement = statement
    this.admission = admission
    this.trip = trip
    this.cap = rowCap(admission, options)
    const seconds = admission.decision.limits.statementTimeoutSeconds
    if (seconds !== undefined && seconds > 0) {
      this.#seconds = seconds
      this.#endsAt = (options.startedAt ?? Date.now()) + seconds * 1000
      const deadline = new AbortController()
      this.#deadline = deadline
      this.#timer = setTimeout(() => { deadline.abort() }, Math.max(0, this.#endsAt - Date.now()))
      this.#timer.unref()
    }
    const signals = [options.signal, this.#deadline?.signal].filter((s): s is AbortSignal => s !== undefined)
    this.signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0]
  }

  /** The rule's statementTimeoutSeconds, when it sets one. */
  get timeoutSeconds (): number | undefined { return this.#seconds }

  /** Milliseconds left of the rule's timeout (0 once it ran out); undefined without one. */
  remainingMs (): number | undefined {
    return this.#endsAt === undefined ? undefined : Math.max(0, this.#endsAt - Date.now())
  }

  /** True once the rule's timeout ran out (not when only the client cancelled). */
  expired (): boolean {
    return this.#deadline?.signal.aborted === true
  }

  /** Calls `cancel` (best effort) if the rule's timeout runs out before `settled` does. */
  onExpiry (settled: Promise<unknown>, cancel: () => Promise<unknown> | unknown): void {
    const signal = this.#deadline?.signal
    if (signal === undefined) return
    const stop = (): void => { void Promise.resolve().then(cancel).catch(() => undefined) }
    if (signal.aborted) { stop(); return }
    signal.addEventListener('abort', stop, { once: true })
    void settled.finally(() => { signal.removeEventListener('abort', stop) }).catch(() => undefined)
  }

  /** Sluice's own timeout error, which each codec words in its protocol (000630, 57014, `timeout`). */
  timedOut (): Error {
    return new ERR_STATEMENT_TIMEOUT(this.#seconds ?? 0, this.statement.connection.name) as Error
  }

  /**
   * The upstream call, in its span and timing, under the run's signal. A failure after the rule's
   * timeout ran out is the timeout; any other is `failure(err)` (the front end's own wrapping of
   * the warehouse's error, with its text released through `releaseError`).
   */
  async upstream<T>(call: (signal: AbortSignal | undefined) => Promise<T>, failure: (err: unknown) => unknown = (err) => err): Promise<T> {
    const ids = { 'sluice.connection': this.statement.connection.name, 'sluice.request_id': this.statement.requestId }
    try {
      return await inSpan(this.trip.traceContext, 'sluice.upstream', ids, async () => await timed(this.trip, 'upstream', async () => await call(this.signal)))
    } catch (err) {
      if (this.expired()) throw this.timedOut()
      throw failure(err)
    }
  }

  /** The text of an upstream error as the client may see it (never the warehouse's own, unreleased). */
  releaseError (message: string, codes?: UpstreamErrorCodes): string {
    return this.#pipeline.releaseError(this.statement, this.admission, message, codes)
  }

  /**
   * A result whose total the upstream told before any row is released: under maxRowsAction
   * refuse, a longer one is refused whole, with nothing recorded as released. True when the
   * result runs into the cap (the caller cuts it and calls `limited`).
   */
  checkTotal (total: number): boolean {
    const cap = this.cap
    if (cap === undefined || total <= cap.rows) return false
    if (cap.refuse) {
      this.trip.capture = undefined
      this.trip.rowsReturned = undefined
      throw new ERR_ROWS_LIMIT(cap.rows, cap.rule)
    }
    return true
  }

  /** The result was cut at the cap: recorded in the trail; the notice is what the client is told. */
  limited (): string | undefined {
    const cap = this.cap
    if (cap === undefined) return undefined
    this.trip.rowsLimited = { rows: cap.rows, by: cap.by, rule: cap.rule }
    return limitedNotice(cap)
  }

  /** The result's pages masked and counted as the client pulls them (the pipeline's release). */
  release (result: NeutralResult): NeutralResult {
    return this.#pipeline.release(this.statement, this.admission, result, this.trip)
  }

  /**
   * The upstream's pages cut at the row cap, for a result whose total nobody knows up front
   * (a cursor): rows past the cap are never pulled into the release. Under maxRowsAction refuse
   * the first row past it throws ERR_ROWS_LIMIT (a caller that must refuse before any row is
   * sent looks ahead that far first); under truncate the pages end there and `limited` is called.
   * `onCut` stops the upstream statement when rows are left unread.
   */
  capped (result: NeutralResult, onCut?: () => Promise<unknown> | unknown): NeutralResult {
    const found = this.cap
    if (found === undefined) return result
    const cap: RowCap = found
    const run = this
    async function * pages (): AsyncIterable<ResultPage> {
      let seen = 0
      const source = result.pages[Symbol.asyncIterator]()
      try {
        for (;;) {
          const next = await source.next()
          if (next.done === true) return
          const rows = next.value.rows
          if (seen + rows.length <= cap.rows) {
            seen += rows.length
            yield next.value
            continue
          }
          if (cap.refuse) throw new ERR_ROWS_LIMIT(cap.rows, cap.rule)
          const room = cap.rows - seen
          seen = cap.rows
          run.limited()
          if (room > 0) yield { ...next.value, rows: rows.slice(0, room) }
          await Promise.resolve(onCut?.()).catch(() => undefined)
          return
        }
      } finally {
        await source.return?.(undefined)
      }
    }
    return { ...result, pages: pages() }
  }

  /**
   * The pages released so far were never sent: the answer failed part way through them (a
   * slice that does not parse, a mask that throws), so the round trip records no rows returned
   * and captures none.
   */
  unsent (): void {
    if (this.trip.rowsReturned === undefined) return
    this.trip.rowsReturned = 0
    delete this.trip.capture
  }

  /** The run is over (answered, failed or handed on to a later request): its timer goes. */
  close (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}
