// Principals and held statements for the approvals suites: an agent (claude-code) acting for
// alice, alice herself, approvers carol and dave, and a machine client with the approver role.
import type { HeldStatement } from '../../src/approvals/service.js'
import type { Principal } from '../../src/identity/principal.js'
import { approvalSettings } from '../../src/policy/approval.js'
import type { ApprovalSpec } from '../../src/policy/model.js'

const ISSUER = 'https://idp.test'
const base = { issuer: ISSUER, type: 'human' as const, groups: [], delegation: [], expiresAt: new Date('2030-01-01T00:00:00Z') }

/** claude-code acting for alice (RFC 8693: subject alice, actor claude-code). */
export const agentForAlice: Principal = { ...base, subject: 'alice', roles: ['agent'], clientId: 'claude-code', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }] }
export const aliceHerself: Principal = { ...base, subject: 'alice', roles: ['agent', 'approver'], clientId: 'cursor' }
export const carol: Principal = { ...base, subject: 'carol', roles: ['approver'], groups: ['security'] }
export const dave: Principal = { ...base, subject: 'dave', roles: ['approver'], groups: ['dba'] }
export const erin: Principal = { ...base, subject: 'erin', roles: ['agent'], groups: ['analysts'] }
export const approverBot: Principal = { ...base, subject: 'approver-bot', type: 'machine', roles: ['approver'], clientId: 'approver-bot' }

export function held (over: Partial<HeldStatement> & { approval?: ApprovalSpec } = {}): HeldStatement {
  const { approval, ...rest } = over
  return {
    principal: agentForAlice,
    connection: { name: 'wh', kind: 'snowflake' },
    frontEnd: 'test',
    sql: "delete from analytics.public.orders where id = 42",
    analysis: { kinds: ['delete'], tables: ['analytics.public.orders'], maskedColumns: [] },
    ruleId: 'hold-deletes',
    reason: 'approval required by rule hold-deletes: DELETE on analytics.public.orders needs a human\'s approval',
    settings: approvalSettings(approval),
    ...rest
  }
}
