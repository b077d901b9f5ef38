// The approvals domain service: a held statement becomes a pending approval (or is let through
// by a scoped grant); approvers approve or deny it under the rule's settings; the requester may
// withdraw it; a front end resolves it on each poll and claims the approved statement to run it
// exactly once. Protocol-free and HTTP-free: the pipeline's hold stage, the admin API and the
// CLI all go through here, and every rule of who may decide is checked here only.
import { createHash, randomUUID } from 'node:crypto'
import {
  ERR_APPROVAL_ALREADY_DECIDED, ERR_APPROVAL_CLOSED, ERR_APPROVAL_EXECUTED, ERR_APPROVAL_GRANT_REFUSED, ERR_APPROVAL_MISMATCH,
  ERR_APPROVAL_NOT_APPROVER, ERR_APPROVAL_REASON_REQUIRED, ERR_APPROVAL_SELF, ERR_NOT_FOUND
} from '../errors.js'
import type { Principal } from '../identity/principal.js'
import type { ApprovalSettings } from '../policy/types.js'
import { sqlFingerprint } from '../recording/fingerprint.js'
import type { Store } from '../store/store.js'
import { StoreGrants, type GrantListFilter, type GrantStore } from './grants.js'
import { closedError, waitingMessage } from './messages.js'
import { approverName, isSelfApproval, notAnApprover, requesterKey, requesterOf } from './people.js'
import { StoreApprovals, type ApprovalListFilter, type ApprovalStore } from './store.js'
import type { AnalysisSummary, ApprovalRecord, GrantRecord, NewApproval, Page } from './types.js'

/** A statement a rule holds, as the pipeline hands it over. */
export interface HeldStatement {
  principal: Principal
  connection: { name: string, kind: string }
  frontEnd: string
  sql: string
  params?: unknown
  analysis: AnalysisSummary
  ruleId: string
  /** The decision's reason. */
  reason: string
  settings: ApprovalSettings
  /** What the warehouse estimated without running it, when the front end could ask. */
  preview?: unknown
  /** Why the requester says it should run, when the front end already has it. */
  justification?: string
  /**
   * A front end that can ask its client for a justification: called when a new approval is
   * about to be created under a rule that wants one (never for a poll, a resend of an open
   * approval or a grant). It resolves to the answer (undefined: none given) or throws to refuse.
   */
  askJustification?: JustificationAsker
}

export type JustificationAsker = (ask: { ruleId: string, required: boolean, reason: string }) => Promise<string | undefined>

/** Longest justification kept: it is shown to approvers, not stored as a document. */
export const MAX_JUSTIFICATION = 4000

function cleanJustification (text: string | undefined): string | undefined {
  const t = text?.trim()
  return t === undefined || t === '' ? undefined : t.slice(0, MAX_JUSTIFICATION)
}

export type RequestOutcome =
  /** Waiting for approvers: a new approval, or the one this same statement already waits on. */
  | { state: 'pending', approval: ApprovalRecord, created: boolean }
  /** May run now, claimed by this replica: approved earlier (a resend), or let through by a grant. */
  | { state: 'granted', approval: ApprovalRecord, grant?: GrantRecord }

export type ResolveOutcome =
  | { state: 'pending', approval: ApprovalRecord, message: string }
  /** Approved, and this caller claimed it: run exactly this statement now. */
  | { state: 'granted', approval: ApprovalRecord }
  /** Already claimed (by this or another replica): its result comes from the run that claimed it. */
  | { state: 'executed', approval: ApprovalRecord }

export interface ApproveOptions {
  reason?: string
  /** Ask for a scoped grant of this many minutes (at most the rule's grant.maxMinutes). */
  grant?: { minutes: number }
}

export interface DecisionResult {
  approval: ApprovalRecord
  /** `recorded`: counted, more approvers needed; `approved` / `denied`: this decision closed it. */
  result: 'recorded' | 'approved' | 'denied'
  grant?: GrantRecord
}

/** Told of each new approval, off the request path (webhooks). */
export interface ApprovalNotifier {
  requested: (approval: ApprovalRecord) => void
}

export interface ApprovalServiceOptions {
  store: Store
  /** This gateway process, recorded with every claim. Default: a random id per process. */
  replica?: string
  notifier?: ApprovalNotifier
  /** Bind values as the trail keeps them (recording.redaction); default: not kept. */
  redact?: (params: unknown) => unknown
  /**
   * How long a claim may stand with its statement not started before a poll counts the claimer
   * as gone (seconds). Default 10: five of the Snowflake runner's 2 s heartbeats.
   */
  claimLeaseSeconds?: number
}

/** What a poll of a held statement may do beyond resolving it. */
export interface PollOptions {
  /**
   * Take over a claim whose replica stopped before starting the statement. Only for a front end
   * whose statement cannot run twice whoever starts it (BigQuery: one job id, inserted once).
   */
  reclaimStale?: boolean
}

/** sha256 (hex) of the exact text and binds (object keys sorted): what an approval releases. */
export function statementHash (sql: string, params: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical)
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
    return v
  }
  return createHash('sha256').update(JSON.stringify([sql, canonical(params ?? null)])).digest('hex')
}

export class ApprovalService {
  readonly approvals: ApprovalStore
  readonly grants: GrantStore
  readonly replica: string
  readonly claimLeaseSeconds: number
  readonly #notifier: ApprovalNotifier | undefined
  readonly #redact: (params: unknown) => unknown

  constructor (options: ApprovalServiceOptions) {
    this.approvals = new StoreApprovals(options.store)
    this.grants = new StoreGrants(options.store)
    this.replica = options.replica ?? randomUUID()
    this.claimLeaseSeconds = options.claimLeaseSeconds ?? 10
    this.#notifier = options.notifier
    this.#redact = options.redact ?? (() => undefined)
  }

  /**
   * A held statement: the approval this exact statement already has (claimed when approved, so
   * a resend after approval runs once), a grant in force for its shape, or a new pending one.
   */
  async request (held: HeldStatement, approvalId?: string, poll: PollOptions = {}): Promise<RequestOutcome> {
    const requester = requesterOf(held.principal)
    const key = requesterKey(requester)
    const hash = statementHash(held.sql, held.params)
    if (approvalId !== undefined) return await this.#poll(approvalId, held, hash, poll)
    const open = await this.approvals.findOpen(key, held.connection.name, hash)
    if (open?.status === 'pending') return { state: 'pending', approval: open, created: false }
    if (open?.status === 'approved') {
      const claimed = await this.approvals.claim(open.id, this.replica)
      // Lost to a concurrent resend: that one runs it; this one asks again.
      if (claimed !== undefined) return { state: 'granted', approval: claimed }
    }
    const params = held.params === undefined ? undefined : this.#redact(held.params)
    const fresh: NewApproval = {
      id: randomUUID(),
      requester,
      connection: held.connection.name,
      connectionKind: held.connection.kind,
      frontEnd: held.frontEnd,
      sql: held.sql,
      fingerprint: sqlFingerprint(held.sql),
      statementHash: hash,
      ...(params !== undefined && { params }),
      analysis: held.analysis,
      ruleId: held.ruleId,
      settings: held.settings,
      reason: held.reason,
      ...(held.preview !== undefined && { preview: held.preview }),
      expiresInSeconds: held.settings.expiresAfterMinutes * 60
    }
    const grant = await this.grants.match({ fingerprint: fresh.fingerprint, requesterKey: key, connection: fresh.connection })
    if (grant !== undefined) {
      const used = await this.grants.use(grant.id, fresh, this.replica)
      if (used !== undefined) return { state: 'granted', approval: used, grant }
    }
    // Asked only now, when an approver will be asked: a statement a grant lets through needs no reason.
    const justification = await this.#justification(held)
    if (justification !== undefined) fresh.justification = justification
    const approval = await this.approvals.create(fresh)
    const created = approval.id === fresh.id
    if (created) this.#notifier?.requested(approval)
    return { state: 'pending', approval, created }
  }

  async #justification (held: HeldStatement): Promise<string | undefined> {
    const given = cleanJustification(held.justification)
    const wanted = held.settings.justification ?? 'none'
    if (given !== undefined || wanted === 'none' || held.askJustification === undefined) return given
    return cleanJustification(await held.askJustification({ ruleId: held.ruleId, required: wanted === 'required', reason: held.reason }))
  }

  /**
   * A front end polling the approval it holds a statement under: exactly that statement, by its
   * requester. Waiting, run now (claimed here, once), or the error that ends it.
   */
  async #poll (id: string, held: HeldStatement, hash: string, poll: PollOptions): Promise<RequestOutcome> {
    const approval = await this.#own(id, held.principal)
    if (approval.statementHash !== hash || approval.connection !== held.connection.name) throw new ERR_APPROVAL_MISMATCH(id)
    const out = await this.resolve(id, held.principal)
    if (out.state === 'executed' && poll.reclaimStale === true) {
      const taken = await this.approvals.reclaim(id, this.replica, this.claimLeaseSeconds)
      if (taken !== undefined) return { state: 'granted', approval: taken }
    }
    if (out.state === 'executed') throw new ERR_APPROVAL_EXECUTED(id, out.approval.claimedBy ?? '?')
    if (out.state === 'pending') return { state: 'pending', approval: out.approval, created: false }
    return { state: 'granted', approval: out.approval }
  }

  /** The state of the requester's own approval (expiry applied on read); someone else's is not found. */
  async statusFor (id: string, requester: Principal): Promise<ApprovalRecord['status']> {
    return (await this.#own(id, requester)).status
  }

  async get (id: string): Promise<ApprovalRecord> {
    const approval = await this.approvals.get(id)
    if (approval === undefined) throw new ERR_NOT_FOUND(`approval ${id}`)
    return approval
  }

  async list (filter: ApprovalListFilter, cursor?: string, limit?: number): Promise<Page<ApprovalRecord>> {
    return await this.approvals.list(filter, cursor, limit)
  }

  /** The checks every decision makes: still open, and a person the rule names as approver. */
  async #decidable (id: string, approver: Principal): Promise<ApprovalRecord> {
    const approval = await this.get(id)
    if (approval.status !== 'pending') throw new ERR_APPROVAL_CLOSED(id, approval.status)
    const why = notAnApprover(approval.settings, approver)
    if (why !== undefined) throw new ERR_APPROVAL_NOT_APPROVER(id, why, approval.ruleId)
    return approval
  }

  async approve (id: string, approver: Principal, options: ApproveOptions = {}): Promise<DecisionResult> {
    const approval = await this.#decidable(id, approver)
    const settings = approval.settings
    if (!settings.allowSelfApproval && isSelfApproval(approval.requester, approver)) throw new ERR_APPROVAL_SELF(id, approverName(approver))
    const minutes = options.grant?.minutes
    if (minutes !== undefined) {
      if (settings.grant.maxMinutes === 0) throw new ERR_APPROVAL_GRANT_REFUSED(id, `rule ${approval.ruleId} allows no grants; approve this statement alone`)
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > settings.grant.maxMinutes) {
        throw new ERR_APPROVAL_GRANT_REFUSED(id, `a grant lasts 1 to ${settings.grant.maxMinutes} minutes under rule ${approval.ruleId}, not ${String(minutes)}`)
      }
    }
    let grantId: string | undefined
    const decided = await this.approvals.decide(id, {
      approverIssuer: approver.issuer,
      approverSubject: approverName(approver),
      decision: 'approve',
      ...(options.reason !== undefined && { reason: options.reason }),
      ...(minutes !== undefined && { grantMinutes: minutes })
    }, settings, async (tx, approved, decisions) => {
      // A grant stands for every approver's consent: with two approvers needed, one alone
      // cannot open the shape for later statements. Its length is the shortest any asked for.
      const approving = decisions.filter((d) => d.decision === 'approve')
      const asked = approving.map((d) => d.grantMinutes)
      if (asked.some((m) => m === undefined)) return
      grantId = randomUUID()
      await this.grants.create(tx, { id: grantId, approval: approved, grantedBy: approving.map((d) => d.approver).join(', '), minutes: Math.min(...asked as number[]) })
    })
    if (decided.result === 'duplicate') throw new ERR_APPROVAL_ALREADY_DECIDED(id, approverName(approver))
    if (decided.result === 'closed') throw new ERR_APPROVAL_CLOSED(id, decided.approval.status)
    const grant = grantId === undefined ? undefined : await this.grants.get(grantId)
    return { approval: decided.approval, result: decided.result === 'denied' ? 'denied' : decided.result, ...(grant !== undefined && { grant }) }
  }

  async deny (id: string, approver: Principal, reason?: string): Promise<DecisionResult> {
    const approval = await this.#decidable(id, approver)
    const why = reason?.trim()
    if (approval.settings.reasonRequiredToDeny && (why === undefined || why === '')) throw new ERR_APPROVAL_REASON_REQUIRED(id, approval.ruleId)
    const decided = await this.approvals.decide(id, {
      approverIssuer: approver.issuer,
      approverSubject: approverName(approver),
      decision: 'deny',
      ...(why !== undefined && why !== '' && { reason: why })
    }, approval.settings)
    if (decided.result !== 'denied') throw new ERR_APPROVAL_CLOSED(id, decided.approval.status)
    return { approval: decided.approval, result: 'denied' }
  }

  /** The requester takes the statement back (a client cancel). Another principal's id is not found. */
  async withdraw (id: string, requester: Principal): Promise<ApprovalRecord> {
    const withdrawn = await this.approvals.withdraw(id, requesterKey(requesterOf(requester)))
    if (withdrawn !== undefined) return withdrawn
    const approval = await this.#own(id, requester)
    throw new ERR_APPROVAL_CLOSED(id, approval.status)
  }

  /**
   * What a polling front end does with a held statement: still waiting (with the status
   * message), run it now (claimed here, exactly once), already run, or the error that ends it
   * (denied by whom and why, expired, withdrawn). Only the requester may poll it.
   */
  async resolve (id: string, requester: Principal): Promise<ResolveOutcome> {
    const approval = await this.#own(id, requester)
    const ended = closedError(approval)
    if (ended !== undefined) throw ended
    if (approval.status === 'pending') return { state: 'pending', approval, message: waitingMessage(approval) }
    if (approval.status === 'approved') {
      // A lease: the poll's front end starts the held statement next (staleClaim, reclaim).
      const claimed = await this.approvals.claim(id, this.replica, { lease: true })
      if (claimed !== undefined) return { state: 'granted', approval: claimed }
      return await this.resolve(id, requester)
    }
    return { state: 'executed', approval }
  }

  /**
   * The requester's approval when it was claimed more than the lease ago: a front end whose
   * statement still reads held then knows the claimer stopped before starting it.
   */
  async staleClaim (id: string, requester: Principal, leaseSeconds = this.claimLeaseSeconds): Promise<ApprovalRecord | undefined> {
    await this.#own(id, requester)
    return await this.approvals.staleClaim(id, leaseSeconds)
  }

  /** Housekeeping: marks approvals past their expiry (reads already treat them as expired). */
  async expire (limit = 500): Promise<ApprovalRecord[]> {
    return await this.approvals.expire(limit)
  }

  async listGrants (filter: GrantListFilter, cursor?: string, limit?: number): Promise<Page<GrantRecord>> {
    return await this.grants.list(filter, cursor, limit)
  }

  async revokeGrant (id: string, by: Principal): Promise<GrantRecord> {
    const revoked = await this.grants.revoke(id, approverName(by))
    if (revoked !== undefined) return revoked
    const grant = await this.grants.get(id)
    if (grant === undefined) throw new ERR_NOT_FOUND(`grant ${id}`)
    // Revoking twice is not an error: the grant is revoked, as asked.
    return grant
  }

  async #own (id: string, requester: Principal): Promise<ApprovalRecord> {
    const approval = await this.approvals.get(id)
    // Handles belong to their caller: someone else's approval id is as good as unknown.
    if (approval === undefined || requesterKey(approval.requester) !== requesterKey(requesterOf(requester))) throw new ERR_NOT_FOUND(`approval ${id}`)
    return approval
  }
}
