// A rule's `approval` settings with their defaults: what the published schema documents and
// what every pending approval copies, so a later policy edit does not change what was asked.
import type { ApprovalSpec } from './model.js'
import { DEFAULT_APPROVER_ROLE, type ApprovalSettings } from './types.js'

/** No approvers named: holders of the approver role. */
export function approvalSettings (spec: ApprovalSpec = {}): ApprovalSettings {
  const roles = spec.approvers?.roles ?? []
  const groups = spec.approvers?.groups ?? []
  return {
    approvers: roles.length === 0 && groups.length === 0 ? { roles: [DEFAULT_APPROVER_ROLE], groups: [] } : { roles: [...roles], groups: [...groups] },
    minApprovals: spec.minApprovals ?? 1,
    expiresAfterMinutes: spec.expiresAfterMinutes ?? 30,
    allowSelfApproval: spec.allowSelfApproval ?? false,
    reasonRequiredToDeny: spec.reasonRequiredToDeny ?? true,
    justification: spec.justification ?? 'none',
    grant: { maxMinutes: spec.grant?.maxMinutes ?? 60 },
    notify: [...(spec.notify ?? [])]
  }
}
