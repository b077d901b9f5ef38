// The decision contract between the policy engine and the pipeline.
import type { WarehouseEstimate } from '../pipeline/estimate.js'
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
  /**
   * The warehouse's estimate, asked only when `needsEstimate` said a rule could use it; null:
   * asked, and none could be had. A rule on the estimate treats absent like null (fails closed).
   */
  estimate?: WarehouseEstimate | null
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

/**
 * Who may release a statement a rule holds, and how (the rule's `approval`, defaults applied).
 * Copied into every pending approval, so a policy edited later does not change what was asked.
 */
export interface ApprovalSettings {
  /** An approver holds one of these roles or is in one of these groups. */
  approvers: { roles: string[], groups: string[] }
  /** Distinct approvers needed. */
  minApprovals: number
  /** A pending approval (and an approved one not yet run) expires after this. */
  expiresAfterMinutes: number
  /** May the requester — or the human an agent acts for — approve their own statement? */
  allowSelfApproval: boolean
  reasonRequiredToDeny: boolean
  /**
   * Must the requester say why the statement should run? Asked before the approval is created by
   * a front end that can ask (MCP: elicitation, or the query tool's `justification` argument);
   * `required` refuses there without one. A front end that cannot ask (the wire protocols) holds
   * the statement all the same, the approval noting that no justification was given.
   */
  justification: JustificationSetting
  /** Longest scoped grant an approver may give; 0: approvals are for one statement only. */
  grant: { maxMinutes: number }
  /** Names of the webhooks (approvals.webhooks in sluice.yaml) told of each new approval. */
  notify: string[]
}

export type JustificationSetting = 'required' | 'optional' | 'none'

/** The role that may approve when a rule names no approvers. */
export const DEFAULT_APPROVER_ROLE = 'approver'

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
  /** For require_approval: the deciding rule's approval settings. */
  approval?: ApprovalSettings
}

export interface PolicyEngine {
  decide (input: DecisionInput): Decision
  /**
   * Whether a rule that could decide this request matches on the warehouse's estimate (the
   * pipeline asks the warehouse only then). Absent: the engine never uses one.
   */
  needsEstimate? (input: Omit<DecisionInput, 'analysis' | 'estimate'>): boolean
  /** Identifies the loaded policy set (content hash), recorded with each decision. */
  readonly version: string
}
