// The one protocol-free path every statement takes (DESIGN.md §1):
//   identity (done by the auth plugin) → analyze → decide → hold → execute → mask → record.
// Front ends call `admit` before touching the upstream and `release` to mask the result they
// got back; what happened is collected in a RoundTrip that the recording layer writes before
// the response leaves the gateway.
import { randomUUID } from 'node:crypto'
import { heldDetail } from './approvals/messages.js'
import { ERR_APPROVAL_REQUIRED } from './errors.js'
import { policyError } from './policy/evaluator.js'
import { CaptureCollector } from './recording/capture.js'
import { inSpan, inSpanSync, startSpan, endSpan, type TraceContext } from './tracing/spans.js'
import type { Analysis } from './sql/types.js'
import type { Decision } from './policy/types.js'
import type { HoldOutcome, PipelineStages, UpstreamErrorCodes } from './pipeline/stages.js'
import type { Admission, NeutralResult, ResultPage, ResultSchema, Statement } from './pipeline/types.js'
import type { AdmittedRecord } from './pipeline/admitted.js'
import type { WarehouseEstimate } from './pipeline/estimate.js'
import type { Companion } from './store/companions.js'
import { timed, type Timings } from './pipeline/timings.js'
import { StatementRun, type RunOptions } from './pipeline/run.js'

export type * from './pipeline/types.js'
export type * from './pipeline/stages.js'
export { StatementRun, type RunOptions } from './pipeline/run.js'
export { admittedRecord, decodeAdmitted, encodeAdmitted, type AdmittedRecord } from './pipeline/admitted.js'

/** What one round trip did, as the session event records it. */
export interface RoundTrip {
  sql?: string
  analysis?: Analysis
  decision?: Decision
  hold?: HoldOutcome
  maskedColumns?: Array<{ column: string, rule: string, values: number }>
  upstreamId?: string
  rowsReturned?: number
  /** The result was cut at a row limit (maxRows truncate, autoLimit): recorded and announced. */
  rowsLimited?: { rows: number, by: 'maxRows' | 'autoLimit', rule: string }
  /** The catalogue code of the error the client received, if any. */
  errorCode?: string
  /** The error text the client received (already released by `releaseError`), if any. */
  errorMessage?: string
  /** Bind parameters as the client sent them; recording redacts them by rule. */
  params?: unknown
  /** Content hash of the policy set that decided. */
  policyVersion?: string
  /** The masked rows as released, up to the capture budget (set by `release`). */
  capture?: CaptureCollector
  /** Bytes of result the front end sent, when it knows better than the response body size. */
  bytesReturned?: number
  /** The admitted statement this round trip serves (its admitted event is committed). */
  statementId?: string
  /** Seconds spent in policy analysis and in the warehouse call (src/pipeline/timings.ts). */
  timings?: Timings
  /** The answer says "still running": the completion comes with a later request. */
  pending?: boolean
  /**
   * An approver's action through the admin API (approve, deny, revoke a grant): the event names
   * the approval and the approver, and says what was decided (or refused) as its reason. Also
   * the end of a held statement its poll learned of (denied: by whom; expired; withdrawn).
   */
  approvalAction?: { approvalId: string, approver?: string, summary?: string }
  /**
   * Commits the statement's admitted event (set by the recording layer, which knows the
   * request's session); admission awaits it before anything can reach the upstream.
   */
  onAdmitted?: (trip: RoundTrip) => Promise<void>
  /**
   * Commits the event of a statement just held for approval (set by the recording layer). A
   * front end that waits in its protocol calls it before the client hears it waits, so the
   * trail keeps the hold even when the same request goes on to run the released statement.
   */
  onHeld?: (trip: RoundTrip) => Promise<void>
  /** The round trip's span (set by the tracing plugin when tracing is on): stages are its children. */
  traceContext?: TraceContext
  /** The warehouse's estimate a cost-aware rule asked for (null: none could be had). */
  estimate?: WarehouseEstimate | null
  /**
   * Rows committed by the statement that writes this round trip's completed event, not before
   * it and not without it (src/store/companions.ts): a Snowflake statement's handle that finished
   * before its answer. Only the completed event takes them.
   */
  companions?: Companion[]
  /** The completed event was handed to the recorder: a companion added now would not be written. */
  completing?: boolean
}

/** The statement's estimate, or null when it has no estimator or the warehouse could not say. */
async function askEstimate (statement: Statement): Promise<WarehouseEstimate | null> {
  if (statement.estimate === undefined) return null
  try {
    return (await statement.estimate()) ?? null
  } catch {
    return null
  }
}

/** What a front end checks during admission (`Pipeline.admit`). */
export interface AdmitChecks {
  /**
   * The front end's own refusals that depend on how the parser split the request (a declared
   * statement count, statements its protocol never runs). Called with the analysis before the
   * estimate, the decision, any hold and the admitted record; throwing refuses the request,
   * which is answered and recorded like any other refusal, with nothing run or held.
   */
  analysed?: (analysis: Analysis) => void
}

export interface PipelineOptions {
  /** Budget of the result capture per round trip (recording.resultCaptureBytes). */
  captureBytes?: number
  /** Per connection (connections.<name>.recording): the budget, or null for no capture. */
  captureBudget?: (connection: string) => number | null
}

export class Pipeline {
  readonly #stages: PipelineStages
  readonly #captureBudget: (connection: string) => number | null

  constructor (stages: PipelineStages, options: PipelineOptions = {}) {
    this.#stages = stages
    const captureBytes = options.captureBytes ?? 1024 * 1024
    this.#captureBudget = options.captureBudget ?? (() => captureBytes)
  }

  /** The collector for a result of this connection; undefined when its results are not captured. */
  #collector (connection: string, schema: ResultSchema): CaptureCollector | undefined {
    const budget = this.#captureBudget(connection)
    if (budget === null) return undefined
    return new CaptureCollector(schema.columns.map((c) => ({ name: c.name, type: c.type })), budget)
  }

  /** Names of the stages that only pass through, for the start-up announcement. */
  notEnforcing (): string[] {
    return Object.values(this.#stages).filter((s) => s !== undefined && !s.enforcing).map((s) => s.name)
  }

  /**
   * Analyze, decide and (for require_approval) hold. Throws a catalogue error the front end
   * renders in its protocol when the statement may not run; returns the admission otherwise.
   */
  async admit (statement: Statement, trip: RoundTrip, checks: AdmitChecks = {}): Promise<Admission> {
    trip.sql = statement.sql
    if (statement.params !== undefined) trip.params = statement.params
    // Without a recording layer to write the admitted event, a store probe stands in for it: it
    // runs while the statement is analysed and decided and is awaited before the upstream.
    let writable = trip.onAdmitted === undefined ? this.#probe() : Promise.resolve()
    // Parsed off the event loop (the parser pool), refused when too large or over budget.
    const ids = { 'sluice.request_id': statement.requestId, 'sluice.connection': statement.connection.name, 'sluice.front_end': statement.frontEnd }
    const analysis = await inSpan(trip.traceContext, 'sluice.analyze', ids, async (span) => {
      const analysis = await timed(trip, 'analyze', async () => await this.#stages.analyze.analyze(statement))
      span?.setAttribute('sluice.statements', analysis.statements.length)
      return analysis
    })
    trip.analysis = analysis
    checks.analysed?.(analysis)
    // Asked only when a rule that could decide matches on it (the common path never waits for it).
    let estimate: WarehouseEstimate | null | undefined
    if (this.#stages.decide.needsEstimate?.(statement) === true) {
      // The warehouse is asked before the decision, so only about a text that is one statement:
      // the question (EXPLAIN, a dry run) is then about exactly that statement and cannot carry
      // a second one past the policy. Several statements get no estimate (the rule fails closed).
      estimate = analysis.statements.length === 1
        ? await inSpan(trip.traceContext, 'sluice.estimate', ids, async () => await askEstimate(statement))
        : null
      trip.estimate = estimate
    }
    const decision = inSpanSync(trip.traceContext, 'sluice.decide', ids, (span) => {
      const decision = this.#stages.decide.decide(statement, analysis, estimate)
      span?.setAttributes({ 'sluice.decision': decision.effect, 'sluice.rule_id': decision.ruleId })
      return decision
    })
    trip.decision = decision
    if (this.#stages.decide.version !== undefined) trip.policyVersion = this.#stages.decide.version
    const admission = { analysis, decision }

    // `detail` is the reason without its "denied by rule X:" prefix, which the error adds.
    const detail = decision.detail ?? decision.reason
    // A denial, or for a statement the parser could not read, a syntax error (never run either).
    if (decision.effect === 'deny') throw policyError(decision) as Error
    // Inference resistance: no filtering / sorting on masked columns, before anyone approves it.
    this.#stages.mask.check?.(statement, admission)
    if (decision.effect === 'require_approval') {
      const outcome = await inSpan(trip.traceContext, 'sluice.hold', { ...ids, 'sluice.rule_id': decision.ruleId }, async (span) => {
        const outcome = await this.#stages.hold.hold(statement, admission)
        span?.setAttributes({ 'sluice.hold': outcome.state, ...('approvalId' in outcome && outcome.approvalId !== undefined && { 'sluice.approval_id': outcome.approvalId }) })
        return outcome
      })
      trip.hold = outcome
      // Until the front ends wait in their own protocols, a held statement is refused for now,
      // naming its approval so an approver can act on it; sent again once approved, it runs.
      if (outcome.state === 'pending') throw new ERR_APPROVAL_REQUIRED(decision.ruleId, heldDetail(detail, outcome.approvalId, decision.ruleId))
      if (outcome.state !== 'granted') throw new ERR_APPROVAL_REQUIRED(decision.ruleId, detail)
      // An approval can take minutes: the probe from before the hold says nothing about now.
      if (trip.onAdmitted === undefined) writable = this.#probe()
    }
    // Right before the front end calls the upstream: a statement whose admitted event cannot
    // be committed is refused (ERR_STORE_UNAVAILABLE, retryable) before anything runs upstream.
    await writable
    if (trip.onAdmitted !== undefined) {
      const statementId = randomUUID()
      trip.statementId = statementId
      try {
        await trip.onAdmitted(trip)
      } catch (err) {
        delete trip.statementId
        throw err
      }
      return { ...admission, statementId }
    }
    return admission
  }

  /**
   * The run of an admitted statement (src/pipeline/run.ts): every front end goes through it for
   * the rule's timeout, its row cap, the upstream call and the release of pages and error texts,
   * from the request that admitted it or a later one that carries it on (`options.startedAt`).
   */
  run (statement: Statement, admission: Admission, trip: RoundTrip, options: RunOptions = {}): StatementRun {
    return new StatementRun(this, statement, admission, trip, options)
  }

  /**
   * What admission would decide for a statement (analysis and decision, the inference check
   * included), without holding, recording or running anything: for a front end that answers
   * "would this run?" (MCP's explain) or filters a catalogue by policy.
   */
  async explain (statement: Statement): Promise<Admission> {
    const analysis = await this.#stages.analyze.analyze(statement)
    const admission: Admission = { analysis, decision: this.#stages.decide.decide(statement, analysis) }
    if (admission.decision.effect !== 'deny') this.#stages.mask.check?.(statement, admission)
    return admission
  }

  /**
   * The admission of a statement admitted earlier, possibly by another replica, from its stored
   * record: the analysis is made again (on the parser pool, so lineage has its parse tree), the
   * decision is the one that was made. `release` under it masks exactly as the first release did.
   */
  async resume (record: AdmittedRecord): Promise<Admission> {
    const analysis = await this.#stages.analyze.analyze(record.statement)
    const admission: Admission = { analysis, decision: record.decision }
    if (record.statementId !== undefined) admission.statementId = record.statementId
    return admission
  }

  /** Starts the record stage's store probe; settled quietly if admission throws first. */
  #probe (): Promise<void> {
    const record = this.#stages.record
    if (record === undefined) return Promise.resolve()
    const probe = record.ensureWritable()
    probe.catch(() => {})
    return probe
  }

  /**
   * The text of an upstream error as the client may see it (DESIGN.md §1: nothing the upstream
   * returns is released unmasked, its error messages included). Front ends pass every upstream
   * error message through here, with the statement and admission it belongs to when they have
   * them; the codes are kept in the text when the message itself is withheld.
   */
  releaseError (statement: Statement | undefined, admission: Admission | undefined, message: string, codes?: UpstreamErrorCodes): string {
    return this.#stages.mask.safeError?.(statement, admission, message, codes) ?? message
  }

  /**
   * A page masked earlier (the inline first page kept with its statement handle) served again
   * by a later request: recorded as released, never masked a second time.
   */
  served (connection: string, schema: ResultSchema, rows: unknown[][], trip: RoundTrip): void {
    const capture = this.#collector(connection, schema)
    capture?.add(rows)
    trip.capture = capture
    trip.rowsReturned = rows.length
  }

  /** Wraps an upstream result so every page the client can see has been masked and counted. */
  release (statement: Statement, admission: Admission, result: NeutralResult, trip: RoundTrip): NeutralResult {
    const mask = this.#stages.mask
    const plan = mask.plan(statement, admission, result.schema)
    // Released in a later request than the one that admitted it (a poll, a page): this round
    // trip completes that statement.
    if (admission.statementId !== undefined) trip.statementId ??= admission.statementId
    trip.upstreamId = result.upstreamId
    trip.rowsReturned = 0
    // A masking stage keeps exact counts (values actually masked, detector findings) in the plan.
    const live = plan.counts
    const counts = live ?? plan.columns.map((c) => ({
      column: result.schema.columns[c.index]?.name ?? String(c.index),
      rule: c.rule,
      values: 0
    }))
    trip.maskedColumns = counts
    // Behind the masker: the capture holds what the client saw, never a raw value.
    const capture = this.#collector(statement.connection.name, result.schema)
    trip.capture = capture

    async function * maskedPages (): AsyncIterable<ResultPage> {
      for await (const page of result.pages) {
        // One span per page masked (pages are fetched when the client asks for them).
        const span = startSpan(trip.traceContext, 'sluice.mask', {
          'sluice.connection': statement.connection.name,
          'sluice.rows': page.rows.length,
          ...(admission.statementId !== undefined && { 'sluice.statement_id': admission.statementId })
        })
        let masked: ResultPage
        try {
          masked = mask.mask(plan, page)
        } catch (err) {
          endSpan(span, err)
          throw err
        }
        endSpan(span)
        capture?.add(masked.rows)
        trip.rowsReturned = (trip.rowsReturned ?? 0) + masked.rows.length
        if (live === undefined) for (const count of counts) count.values += masked.rows.length
        yield masked
      }
    }
    return { ...result, pages: maskedPages() }
  }
}
