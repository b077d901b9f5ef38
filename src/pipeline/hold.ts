// The hold stage over the approvals service: a require_approval decision becomes a pending
// approval in the store (or is let through by an approval already given for exactly this
// statement, or by a scoped grant for its shape). The stage only hands the statement over;
// who may decide, grants and exactly-once release are the service's.
import type { ApprovalService } from '../approvals/service.js'
import type { AnalysisSummary } from '../approvals/types.js'
import { approvalSettings } from '../policy/approval.js'
import type { HoldOutcome, HoldStage } from './stages.js'
import type { Admission, Statement } from './types.js'

export interface ApprovalHoldOptions {
  /**
   * Output columns the caller would see masked, known before the statement runs; the front
   * ends that can describe a statement without running it fill this in. Default none.
   */
  maskedColumns?: (statement: Statement, admission: Admission) => string[]
  /** The warehouse's estimate without running it (BigQuery dry run, Snowflake EXPLAIN). */
  preview?: (statement: Statement, admission: Admission) => Promise<unknown>
}

export function summarize (statement: Statement, admission: Admission, options: ApprovalHoldOptions = {}): AnalysisSummary {
  const statements = admission.analysis.statements
  return {
    kinds: [...new Set(statements.map((s) => s.kind))],
    tables: [...new Set(statements.flatMap((s) => [...s.tablesWritten, ...s.tablesRead]))].sort(),
    maskedColumns: options.maskedColumns?.(statement, admission) ?? []
  }
}

export function approvalHoldStage (service: ApprovalService, options: ApprovalHoldOptions = {}): HoldStage {
  return {
    name: 'hold',
    enforcing: true,
    async hold (statement: Statement, admission: Admission): Promise<HoldOutcome> {
      const decision = admission.decision
      // A poll of an existing approval needs no new estimate.
      const preview = statement.approvalId === undefined ? await options.preview?.(statement, admission) : undefined
      const out = await service.request({
        principal: statement.principal,
        connection: { name: statement.connection.name, kind: statement.connection.kind },
        frontEnd: statement.frontEnd,
        sql: statement.sql,
        ...(statement.params !== undefined && { params: statement.params }),
        analysis: summarize(statement, admission, options),
        ruleId: decision.ruleId,
        reason: decision.reason,
        // A decision from an engine without approval settings (tests, custom engines): the defaults.
        settings: decision.approval ?? approvalSettings(),
        ...(preview !== undefined && { preview }),
        ...(statement.justification !== undefined && { justification: statement.justification }),
        ...(statement.askJustification !== undefined && { askJustification: statement.askJustification })
      }, statement.approvalId, { reclaimStale: statement.reclaimStaleClaim === true })
      if (out.state === 'pending') return { state: 'pending', approvalId: out.approval.id }
      const approver = out.grant?.grantedBy ?? out.approval.decidedBy
      return {
        state: 'granted',
        approvalId: out.approval.id,
        ...(approver !== undefined && { approver }),
        ...(out.grant !== undefined && { grant: { id: out.grant.id, expiresAt: out.grant.expiresAt } })
      }
    }
  }
}
