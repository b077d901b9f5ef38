// A statement held for a human's approval, the same for both Snowflake front ends: it keeps a
// handle in the store (state `held`, its approval id, the request sealed), so the client waits in
// its own protocol (SQL API 202, connector 333333) and any replica answers its polls. Each poll
// admits the same statement again with its approval id (pipeline/held.ts): still pending, granted
// (claimed by this replica: exactly the approved statement runs here, once, under the same handle),
// run by another replica (its result is served once ready), or ended (denied, expired, withdrawn:
// the handle fails with the error the client is told, on every replica alike).
import { waitForDecision } from '../../approvals/wait.js'
import { waitingMessage } from '../../approvals/messages.js'
import type { ApprovalService } from '../../approvals/service.js'
import { ApprovalError, ERR_APPROVAL_CLAIM_LOST, ERR_APPROVAL_CLOSED, ERR_APPROVAL_EXECUTED, ERR_APPROVAL_HELD_UNREADABLE, ERR_NOT_FOUND, PolicyError, RequestError } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { RoundTrip } from '../../pipeline.js'
import { admittedRecord } from '../../pipeline/admitted.js'
import { pendingApproval } from '../../pipeline/held.js'
import type { SnowflakeSettings } from './config.js'
import { prepareRequest, runPrepared, type ExecuteDeps, type ExecuteRequest, type PrepareInput } from './execute.js'
import { storedError, type Handle } from './handles.js'
import type { SnowflakeUpstream, UpstreamSession } from './upstream.js'
import type { SessionContext } from './query-data.js'
import { errorInfo } from './wire.js'

/** What running a held statement needs beyond its SQL, as the request that was held sent it. */
export interface HeldRequest {
  bindings?: Record<string, unknown>
  parameters?: Record<string, unknown>
  formats?: ExecuteRequest['formats']
  describeOnly?: boolean
  statementCount: number
  context: SessionContext
  client: ExecuteRequest['client']
  sessionId?: string
  /** The SQL API's request timeout, applied once it runs. */
  timeoutSeconds?: number
}

export function heldRequestOf (input: PrepareInput, timeoutSeconds?: number): HeldRequest {
  const held: HeldRequest = { statementCount: input.statementCount, context: input.context, client: input.client }
  if (input.bindings !== undefined) held.bindings = input.bindings
  if (input.parameters !== undefined) held.parameters = input.parameters
  if (input.formats !== undefined) held.formats = input.formats
  if (input.describeOnly === true) held.describeOnly = true
  if (input.sessionId !== undefined) held.sessionId = input.sessionId
  if (timeoutSeconds !== undefined && timeoutSeconds > 0) held.timeoutSeconds = timeoutSeconds
  return held
}

/** What the polling request supplies: who asks, through which front end, on which upstream session. */
export interface HeldPoll {
  frontEnd: string
  requestId: string
  principal: Principal
  settings: SnowflakeSettings
  upstream: SnowflakeUpstream
  refuse?: PrepareInput['refuse']
  /**
   * The connector polls on its login's session, whose context the statement runs in; the SQL
   * API leases a pooled session in the context the held request asked for.
   */
  context?: (held: HeldRequest) => SessionContext
  session: (held: HeldRequest) => Promise<{ session: UpstreamSession, release: () => void }>
}

export interface HeldDeps extends ExecuteDeps {
  approvals: ApprovalService
}

export type HeldOutcome =
  /** Nobody has decided yet: the protocol's "still running", with the status message. */
  | { state: 'waiting', handle: Handle, message: string }
  /** Approved and run by another replica, which has not released the handle yet: poll again. */
  | { state: 'elsewhere', handle: Handle }
  /** No longer held: running here or elsewhere, finished, failed (denied, expired) or cancelled. */
  | { state: 'released', handle: Handle }

/** The message a held statement's client reads while it waits. */
export function waitingFor (approvalId: string, trip: RoundTrip): string {
  return waitingMessage({ id: approvalId, ruleId: trip.decision?.ruleId ?? '?' })
}

/**
 * One poll of a held statement. Waits up to `waitSeconds` for a decision (a store read per
 * interval, so an approval given through any replica ends the wait), then admits the statement
 * again under its approval: the outcome says what the front end renders.
 */
export async function pollHeld (deps: HeldDeps, handle: Handle, poll: HeldPoll, trip: RoundTrip, waitSeconds: number): Promise<HeldOutcome> {
  const approvalId = handle.approvalId
  trip.sql ??= handle.sql
  if (approvalId === undefined) return { state: 'released', handle }
  const held = deps.statements.heldRequest<HeldRequest>(handle)
  if (held === undefined) throw new ERR_APPROVAL_HELD_UNREADABLE(handle.id, approvalId)
  if (waitSeconds > 0) {
    const status = await waitForDecision(deps.approvals, approvalId, poll.principal, { until: Date.now() + waitSeconds * 1000 }).catch(() => 'pending' as const)
    // Decided while this poll waited, perhaps by a poll on another replica that ran it.
    if (status !== 'pending') handle = await deps.statements.get(handle.id, poll.principal) ?? handle
    if (handle.state !== 'held') return { state: 'released', handle }
  }
  const input: PrepareInput = {
    frontEnd: poll.frontEnd,
    requestId: poll.requestId,
    principal: poll.principal,
    settings: poll.settings,
    upstream: poll.upstream,
    context: poll.context?.(held) ?? held.context,
    sql: handle.sql,
    statementCount: held.statementCount,
    client: held.client,
    approvalId,
    ...(held.bindings !== undefined && { bindings: held.bindings }),
    ...(held.parameters !== undefined && { parameters: held.parameters }),
    ...(held.formats !== undefined && { formats: held.formats }),
    ...(held.describeOnly === true && { describeOnly: true }),
    ...(held.sessionId !== undefined && { sessionId: held.sessionId }),
    ...(poll.refuse !== undefined && { refuse: poll.refuse })
  }
  let prepared
  try {
    prepared = await prepareRequest(deps, input, trip)
  } catch (err) {
    if (pendingApproval(err, trip) !== undefined) {
      trip.pending = true
      delete trip.errorCode
      return { state: 'waiting', handle, message: waitingFor(approvalId, trip) }
    }
    if (err instanceof ERR_APPROVAL_EXECUTED) return await ranElsewhere(deps, handle, poll.principal, approvalId)
    // Denied, expired, withdrawn, or refused outright by a policy changed meanwhile: the handle
    // ends with what the client is told, so every later poll (any replica) answers the same. A
    // store or upstream outage ends nothing: the next poll asks again.
    if (!endsTheWait(err)) throw err
    const info = errorInfo(err, handle.id)
    const ended = await deps.statements.endHeld(handle, { state: 'failed', error: storedError(info, (err as { statusCode?: number }).statusCode) })
    if (ended.state === 'held') throw err
    return { state: 'released', handle: ended }
  }
  // Claimed by this replica: exactly the approved statement runs now, under the same handle.
  const { session, release } = await poll.session(held)
  // The run outlives this poll; the request that serves its result completes it (carryTrip).
  const runTrip: RoundTrip = { statementId: prepared.admission.statementId }
  const req: ExecuteRequest = { ...input, session }
  const released = await deps.statements.release(handle, async (signal, id) => {
    try {
      return await runPrepared(deps, { ...req, signal }, prepared, runTrip, id)
    } finally {
      release()
    }
  }, {
    admitted: admittedRecord(prepared.statement, prepared.admission),
    trip: runTrip,
    ...(held.timeoutSeconds !== undefined && { timeoutSeconds: held.timeoutSeconds })
  }).catch((err: unknown) => { release(); throw err })
  if (released === undefined) {
    // Cancelled between the claim and now: nothing runs.
    release()
    return { state: 'released', handle: await deps.statements.get(handle.id, poll.principal) ?? handle }
  }
  return { state: 'released', handle: released }
}

function endsTheWait (err: unknown): boolean {
  return err instanceof ApprovalError || err instanceof PolicyError || err instanceof RequestError || err instanceof ERR_NOT_FOUND
}

/** Another poll (this replica or another) claimed the approval: its handle serves the result. */
async function ranElsewhere (deps: HeldDeps, handle: Handle, principal: Principal, approvalId: string): Promise<HeldOutcome> {
  const now = await deps.statements.get(handle.id, principal)
  if (now !== undefined && now.state !== 'held') return { state: 'released', handle: now }
  // The same statement sent twice holds two handles of one approval: the other one ran it.
  const twin = await deps.statements.releasedFor(approvalId, handle.owner)
  if (twin !== undefined) return { state: 'released', handle: twin }
  // Claimed, yet no handle of it started within the lease: the claimer stopped between its claim
  // and the release (killed, or a store write failed). Running it here could run it twice (the
  // claimer may have reached Snowflake before it died), so the statement ends, saying so. The
  // store arbitrates a claimer that was only slow: its release and this end both require `held`.
  const lost = await deps.approvals.staleClaim(approvalId, principal)
  if (lost === undefined) return { state: 'elsewhere', handle }
  const err = new ERR_APPROVAL_CLAIM_LOST(approvalId, lost.claimedBy ?? '?')
  const ended = await deps.statements.endHeld(handle, { state: 'failed', error: storedError(errorInfo(err, handle.id), err.statusCode) })
  return ended.state === 'held' ? { state: 'elsewhere', handle: ended } : { state: 'released', handle: ended }
}

/**
 * A client's cancel of a held statement: the approval is withdrawn (approvers see it closed) and
 * the handle aborted. Returns the handle as it stands: still `running` when a poll released it
 * first, which the front end then cancels as any running statement.
 */
export async function cancelHeld (deps: Pick<HeldDeps, 'approvals' | 'statements'>, handle: Handle, principal: Principal): Promise<Handle> {
  if (handle.approvalId !== undefined) {
    await deps.approvals.withdraw(handle.approvalId, principal).catch((err: unknown) => {
      // Already decided or gone: the handle is aborted all the same, so nothing runs under it.
      if (!(err instanceof ERR_APPROVAL_CLOSED) && !(err instanceof ERR_NOT_FOUND)) throw err
    })
  }
  return await deps.statements.endHeld(handle, { state: 'aborted', cancelReason: 'client' })
}
