// The decision contract between the policy engine and the pipeline.
import type { Analysis } from '../sql/types.js'

export type Effect = 'allow' | 'deny' | 'require_approval'

/**
 * The built-in decision for a statement the parser could not read (a syntax error): refused
 * whatever the rules say, and answered as the warehouse's own syntax error. Reserved: a policy
 * file may not use it.
 */
export const UNPARSED_RULE_ID = 'unparsed'

export interface PolicySubject {
  subject: string
  type: 'human' | 'machine'
  groups: string[]
  roles: string[]
  clientId?: string
}

export interface DecisionInput {
  principal: PolicySubject
  connection: { name: string, kind: string }
  analysis: Analysis
  now: Date
}

export type MaxRowsAction = 'truncate' | 'refuse'

/** Limits a rule can impose on an allowed statement; the front end applies what its protocol can. */
export interface Limits {
  maxRows?: number
  /** What maxRows does to a longer result: cut it (announced, recorded) or refuse it whole. */
  maxRowsAction?: MaxRowsAction
  statementTimeoutSeconds?: number
  maximumBytesBilled?: number
  /** LIMIT added to SELECTs that have none. */
  autoLimit?: number
}

export interface Decision {
  effect: Effect
  /** The rule that decided; `default-deny` when none matched. */
  ruleId: string
  /** A sentence an agent can act on. */
  reason: string
  limits: Limits
  /**
   * `reason` without its leading "denied by rule <id>: " (or "approval required by rule <id>: ",
   * "allowed by rule <id>: "), so `ERR_POLICY_DENIED(ruleId, detail)` and
   * `ERR_APPROVAL_REQUIRED(ruleId, detail)` print exactly `reason`.
   */
  detail?: string
  /** Zero-based index of the statement that decided, when the request had any. */
  statementIndex?: number
}

export interface PolicyEngine {
  decide (input: DecisionInput): Decision
  /** Identifies the loaded policy set (content hash), recorded with each decision. */
  readonly version: string
}
