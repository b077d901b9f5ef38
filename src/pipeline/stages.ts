// The stage interfaces of the one pipeline (DESIGN.md §1). Each later capability (policy,
// approvals, masking) plugs in an implementation; until then a pass-through stands in and
// says so (`enforcing: false`), and the server announces every non-enforcing stage at start.
import type { WarehouseEstimate } from './estimate.js'
import type { Decision } from '../policy/types.js'
import type { Analysis, Dialect } from '../sql/types.js'
import type { Admission, MaskPlan, ResultPage, ResultSchema, Statement } from './types.js'

interface Stage {
  readonly name: string
  /** False while a stage only passes statements through; never silently. */
  readonly enforcing: boolean
}

export interface AnalyzeStage extends Stage {
  /** Asynchronous when parsing runs on the parser pool's threads (src/sql/pool.ts). */
  analyze (statement: Statement): Analysis | Promise<Analysis>
}

export interface DecideStage extends Stage {
  /** `estimate`: the warehouse's, when `needsEstimate` asked for it (null: none could be had). */
  decide (statement: Statement, analysis: Analysis, estimate?: WarehouseEstimate | null): Decision
  /**
   * Whether a rule that could decide this statement matches on the warehouse's estimate; the
   * pipeline asks the warehouse (statement.estimate) only then. Absent: never.
   */
  needsEstimate? (statement: Statement): boolean
  /** Identifies the policy set deciding now, recorded with each event. */
  readonly version?: string
}

export type HoldOutcome =
  /** May run now: approved (and claimed by this replica), or let through by a scoped grant. */
  | { state: 'granted', approvalId?: string, approver?: string, grant?: { id: string, expiresAt: string } }
  | { state: 'pending', approvalId: string }
  | { state: 'refused', reason: string }

export interface HoldStage extends Stage {
  /** Called only for `require_approval` decisions. */
  hold (statement: Statement, admission: Admission): Promise<HoldOutcome>
}

export interface MaskStage extends Stage {
  /**
   * Admission-time check (inference resistance: filtering / sorting on masked columns); throws a
   * catalogue error when the statement may not run. Optional: a pass-through has none.
   */
  check? (statement: Statement, admission: Admission): void
  plan (statement: Statement, admission: Admission, schema: ResultSchema): MaskPlan
  mask (plan: MaskPlan, page: ResultPage): ResultPage
  /**
   * An upstream error message made safe to release for this statement (warehouses quote cell
   * values in errors). `statement` / `admission` are absent when the error came without them.
   * Optional: a pass-through releases the message as it is.
   */
  safeError? (statement: Statement | undefined, admission: Admission | undefined, message: string, codes?: UpstreamErrorCodes): string
}

/** The warehouse's own identifiers of an error, kept when its message is withheld. */
export interface UpstreamErrorCodes {
  /** Snowflake error code, BigQuery reason. */
  code?: string
  sqlState?: string
}

/** Fail closed on the audit store: resolves only when an event can be written right now. */
export interface RecordStage extends Stage {
  ensureWritable (): Promise<void>
}

export interface PipelineStages {
  analyze: AnalyzeStage
  decide: DecideStage
  hold: HoldStage
  mask: MaskStage
  /** Optional so pipelines built without a store (unit tests) keep working. */
  record?: RecordStage
}

const DIALECT: Record<string, Dialect> = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' }

/** Stands in until a parser is wired: every statement is `unknown`, which a real policy denies. */
export const passThroughAnalyze: AnalyzeStage = {
  name: 'analyze',
  enforcing: false,
  analyze (statement) {
    return {
      dialect: DIALECT[statement.connection.kind] ?? 'postgres',
      statements: [{
        kind: 'unknown',
        text: statement.sql,
        tablesRead: [],
        tablesWritten: [],
        functions: [],
        hasLimit: false,
        parseError: 'SQL analysis is not enabled'
      }],
      // No parser read it: a front end runs it whole, as one statement, or not at all.
      undelimited: 'unread'
    }
  }
}

export const passThroughDecide: DecideStage = {
  name: 'decide',
  enforcing: false,
  decide () {
    return { effect: 'allow', ruleId: 'pass-through', reason: 'the policy stage is not enforcing yet', limits: {} }
  }
}

/**
 * Until approvals exist, a statement that needs one is refused — an approval requirement must
 * never turn into an allow. This stage therefore enforces, even though nothing is held yet.
 */
export const refuseApprovals: HoldStage = {
  name: 'hold',
  enforcing: true,
  async hold (_statement, admission) {
    return { state: 'refused', reason: `approvals are not available yet; ${admission.decision.reason}` }
  }
}

/**
 * The hold of a preflight pipeline only (the PostgreSQL front end deciding whether it may
 * describe a statement upstream): a statement that needs approval may be described, never run;
 * its Execute goes through the real hold stage.
 */
export const describeOnlyHold: HoldStage = {
  name: 'hold',
  enforcing: true,
  async hold () {
    return { state: 'granted' }
  }
}

export const passThroughMask: MaskStage = {
  name: 'mask',
  enforcing: false,
  plan () {
    return { columns: [] }
  },
  mask (_plan, page) {
    return page
  }
}
