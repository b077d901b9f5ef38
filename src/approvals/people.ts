// Who is who in an approval: the key that scopes grants to "this principal, through this chain
// of agents", the identities a requester stands for (the agent and the human it acts for), and
// the approver checks a rule's settings make. Plain functions: the service and the tests share
// them, and no HTTP or store detail is involved.
import { createHash } from 'node:crypto'
import type { Actor, Principal } from '../identity/principal.js'
import type { ApprovalSettings } from '../policy/types.js'
import type { Requester } from './types.js'

export function requesterOf (principal: Principal): Requester {
  return {
    issuer: principal.issuer,
    subject: principal.subject,
    type: principal.type,
    ...(principal.clientId !== undefined && { clientId: principal.clientId }),
    delegation: principal.delegation.map((a) => ({ subject: a.subject, ...(a.clientId !== undefined && { clientId: a.clientId }) }))
  }
}

/**
 * sha256 (hex) of issuer, subject and the whole act chain: a grant to alice acting through
 * claude-code does not cover alice herself, nor alice through another agent.
 */
export function requesterKey (requester: Pick<Requester, 'issuer' | 'subject' | 'delegation'>): string {
  const chain = requester.delegation.map((a: Actor) => [a.subject, a.clientId ?? null])
  return createHash('sha256').update(JSON.stringify([requester.issuer, requester.subject, chain])).digest('hex')
}

/**
 * Every identity a requester stands for, as `issuer\0subject`: the token's subject (under RFC
 * 8693 the human an agent acts for) and each actor of its chain. An approver who is any of
 * them is approving their own statement.
 */
function identities (issuer: string, subject: string, delegation: readonly Actor[]): Set<string> {
  return new Set([subject, ...delegation.map((a) => a.subject)].map((s) => `${issuer}\0${s}`))
}

export function isSelfApproval (requester: Requester, approver: Principal): boolean {
  const theirs = identities(requester.issuer, requester.subject, requester.delegation)
  for (const id of identities(approver.issuer, approver.subject, approver.delegation)) if (theirs.has(id)) return true
  return false
}

/** How an approver is named in decisions, events and messages. */
export function approverName (approver: Pick<Principal, 'subject'>): string {
  return approver.subject
}

/**
 * Why `approver` may not decide under `settings`, or undefined when they may. An approval is a
 * person's decision: a machine token, or a token an agent uses on someone's behalf (a
 * delegation chain), never decides, whatever roles it carries.
 */
export function notAnApprover (settings: ApprovalSettings, approver: Principal): string | undefined {
  if (approver.type !== 'human') return `${approver.subject} is a machine client, and only a person can decide`
  if (approver.delegation.length > 0) {
    return `${approver.subject} acts through ${approver.delegation.map((a) => a.subject).join(' → ')}; an approval must be given by the person themselves, not by an agent acting for them`
  }
  const { roles, groups } = settings.approvers
  if (approver.roles.some((r) => roles.includes(r)) || approver.groups.some((g) => groups.includes(g))) return undefined
  const wanted = [...roles.map((r) => `role ${r}`), ...groups.map((g) => `group ${g}`)].join(' or ')
  return `${approver.subject} needs ${wanted}`
}

/** "claude-code acting for alice", outermost actor first; the subject alone without a chain. */
export function chainText (requester: Pick<Requester, 'subject' | 'delegation'>): string {
  return [...requester.delegation.map((a) => a.subject), requester.subject].join(' acting for ')
}
