// The approvals room's records: what a held statement, a decision and a scoped grant are, as
// the store keeps them and the admin API, the CLI and the notifications show them.
import type { Actor } from '../identity/principal.js'
import type { ApprovalSettings } from '../policy/types.js'

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn' | 'executed'

export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'denied', 'expired', 'withdrawn', 'executed']

/** Who asked: the principal and the chain of agents acting for it. */
export interface Requester {
  issuer: string
  subject: string
  type: 'human' | 'machine'
  clientId?: string
  /** RFC 8693 act chain, outermost (the current actor) first. */
  delegation: Actor[]
}

/** What the statement does, as far as policy and masking saw it. */
export interface AnalysisSummary {
  kinds: string[]
  tables: string[]
  /** Output columns the caller would see masked, when the mask stage could say before running. */
  maskedColumns: string[]
}

export interface ApprovalDecisionRecord {
  approver: string
  approverIssuer: string
  decision: 'approve' | 'deny'
  reason?: string
  grantMinutes?: number
  /** ISO 8601, UTC. */
  at: string
}

export interface ApprovalRecord {
  id: string
  requester: Requester
  connection: string
  connectionKind: string
  frontEnd: string
  sql: string
  fingerprint: string
  /** sha256 (hex) of the exact text and binds. */
  statementHash: string
  params?: unknown
  analysis: AnalysisSummary
  ruleId: string
  settings: ApprovalSettings
  /** The decision's reason, as the refusal would have said it. */
  reason: string
  preview?: unknown
  /** Why the requester says it should run, when the rule asked and they said (absent: none given). */
  justification?: string
  /** Effective: a pending or approved approval past its expiry reads as `expired`. */
  status: ApprovalStatus
  grantId?: string
  createdAt: string
  expiresAt: string
  decidedAt?: string
  decidedBy?: string
  decisionReason?: string
  claimedBy?: string
  claimedAt?: string
  decisions: ApprovalDecisionRecord[]
}

/** A new pending approval, as the service builds it. */
export type NewApproval = Omit<ApprovalRecord, 'status' | 'createdAt' | 'expiresAt' | 'decisions' | 'grantId' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'claimedBy' | 'claimedAt'> & {
  expiresInSeconds: number
}

export interface GrantRecord {
  id: string
  fingerprint: string
  requester: Pick<Requester, 'issuer' | 'subject' | 'delegation'>
  connection: string
  ruleId: string
  approvalId: string
  grantedBy: string
  createdAt: string
  expiresAt: string
  revokedAt?: string
  revokedBy?: string
  /** Effective: active, expired or revoked. */
  state: 'active' | 'expired' | 'revoked'
  uses: number
}

/** What a grant is scoped to; a statement matches when all of it is equal. */
export interface GrantScope {
  fingerprint: string
  requesterKey: string
  connection: string
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}
