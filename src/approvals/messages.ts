// The sentences a held statement's client and its approvers read. The protocols show them in
// their own shapes (a SQL API status message, a connector error, a BigQuery job error), so they
// are written once, here, and the catalogue errors carry the same words.
import { ERR_APPROVAL_DENIED, ERR_APPROVAL_EXPIRED, ERR_APPROVAL_WITHDRAWN } from '../errors.js'
import type { ApprovalRecord } from './types.js'

/** The status a polling client sees while nobody has decided. */
export function waitingMessage (approval: Pick<ApprovalRecord, 'id' | 'ruleId'>): string {
  return `waiting for approval ${approval.id} (rule ${approval.ruleId})`
}

/**
 * What a client is told while its front end cannot wait in its protocol yet: the statement is
 * refused for now, but held, and the id lets an approver act on it; the same statement sent
 * again once approved runs (once).
 */
export function heldDetail (detail: string, approvalId: string, ruleId: string): string {
  return `${detail} It is ${waitingMessage({ id: approvalId, ruleId })}: an approver can release it ` +
    `(POST /admin/v1/approvals/${approvalId}/approve, or sluice approvals approve ${approvalId}); ` +
    'send exactly the same statement again once it is approved.'
}

/**
 * What approvers are shown of the requester's justification: the text, or — under a rule that
 * asks for one, for a statement from a front end that cannot ask (the wire protocols) — that
 * none was given; undefined when the rule asks for none.
 */
export function justificationText (approval: Pick<ApprovalRecord, 'justification' | 'settings'>): string | undefined {
  if (approval.justification !== undefined) return approval.justification
  const wanted = approval.settings.justification ?? 'none'
  return wanted === 'none' ? undefined : 'no justification given'
}

/** The error a closed approval ends its statement with; undefined while it may still run. */
export function closedError (approval: ApprovalRecord): Error | undefined {
  switch (approval.status) {
    case 'denied':
      return new ERR_APPROVAL_DENIED(approval.id, approval.decidedBy ?? 'an approver', approval.decisionReason ?? 'no reason given')
    case 'expired':
      return new ERR_APPROVAL_EXPIRED(approval.id, approval.settings.expiresAfterMinutes)
    case 'withdrawn':
      return new ERR_APPROVAL_WITHDRAWN(approval.id)
    default:
      return undefined
  }
}
