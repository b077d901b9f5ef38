// The one protocol-free path every statement takes (DESIGN.md §1):
//   identity (done by the auth plugin) → analyze → decide → hold → execute → mask → record.
// Front ends call `admit` before touching the upstream and `release` to mask the result they
// got back; what happened is collected in a RoundTrip that the recording layer writes before
// the response leaves the gateway.
import { ERR_APPROVAL_REQUIRED, ERR_POLICY_DENIED } from './errors.js'
import type { Analysis } from './sql/types.js'
import type { Decision } from './policy/types.js'
import type { HoldOutcome, PipelineStages } from './pipeline/stages.js'
import type { Admission, NeutralResult, ResultPage, Statement } from './pipeline/types.js'

export type * from './pipeline/types.js'
export type * from './pipeline/stages.js'

/** What one round trip did, as the session event records it. */
export interface RoundTrip {
  sql?: string
  analysis?: Analysis
  decision?: Decision
  hold?: HoldOutcome
  maskedColumns?: Array<{ column: string, rule: string, values: number }>
  upstreamId?: string
  rowsReturned?: number
  /** The catalogue code of the error the client received, if any. */
  errorCode?: string
}

export class Pipeline {
  readonly #stages: PipelineStages

  constructor (stages: PipelineStages) {
    this.#stages = stages
  }

  /** Names of the stages that only pass through, for the start-up announcement. */
  notEnforcing (): string[] {
    return Object.values(this.#stages).filter((s) => !s.enforcing).map((s) => s.name)
  }

  /**
   * Analyze, decide and (for require_approval) hold. Throws a catalogue error the front end
   * renders in its protocol when the statement may not run; returns the admission otherwise.
   */
  async admit (statement: Statement, trip: RoundTrip): Promise<Admission> {
    trip.sql = statement.sql
    const analysis = this.#stages.analyze.analyze(statement)
    trip.analysis = analysis
    const decision = this.#stages.decide.decide(statement, analysis)
    trip.decision = decision
    const admission = { analysis, decision }

    // `detail` is the reason without its "denied by rule X:" prefix, which the error adds.
    const detail = decision.detail ?? decision.reason
    if (decision.effect === 'deny') throw new ERR_POLICY_DENIED(decision.ruleId, detail)
    if (decision.effect === 'require_approval') {
      const outcome = await this.#stages.hold.hold(statement, admission)
      trip.hold = outcome
      if (outcome.state !== 'granted') throw new ERR_APPROVAL_REQUIRED(decision.ruleId, detail)
    }
    return admission
  }

  /** Wraps an upstream result so every page the client can see has been masked and counted. */
  release (statement: Statement, admission: Admission, result: NeutralResult, trip: RoundTrip): NeutralResult {
    const mask = this.#stages.mask
    const plan = mask.plan(statement, admission, result.schema)
    trip.upstreamId = result.upstreamId
    trip.rowsReturned = 0
    const counts = plan.columns.map((c) => ({
      column: result.schema.columns[c.index]?.name ?? String(c.index),
      rule: c.rule,
      values: 0
    }))
    trip.maskedColumns = counts

    async function * maskedPages (): AsyncIterable<ResultPage> {
      for await (const page of result.pages) {
        const masked = mask.mask(plan, page)
        trip.rowsReturned = (trip.rowsReturned ?? 0) + masked.rows.length
        for (const count of counts) count.values += masked.rows.length
        yield masked
      }
    }
    return { ...result, pages: maskedPages() }
  }
}
