// How one round trip becomes session events, protocol-free: the HTTP recording plugin and the
// PostgreSQL listener describe the request (who, which front end, where from) and call these,
// so every front end writes the same admitted / completed / unauthenticated events.
import { randomUUID } from 'node:crypto'
import { ERR_RESULT_UNRECORDED, ERR_STORE_UNAVAILABLE } from '../errors.js'
import type { Principal } from '../identity/principal.js'
import type { RoundTrip } from '../pipeline.js'
import { nowMicros } from './chain.js'
import type { ChainedEvent } from './event.js'
import type { Recording, SessionRef } from './recorder.js'
import type { EventOutcome } from './sessions.js'

/** The request a round trip belongs to, as its front end knows it. */
export interface RoundTripContext {
  requestId: string
  frontEnd: string
  principal: Principal
  /** The session the events belong to: stable per client session, never the token itself. */
  sessionKey: string
  connection?: string
  /** The route template (HTTP) or protocol message (`Query`, `Execute`). */
  route?: string
  method?: string
  sourceIp?: string
  userAgent?: string
}

// Answers that mean the upstream never ran the statement: a lost completion is then retryable.
const NOT_EXECUTED = new Set(['SLUICE_UPSTREAM_UNAVAILABLE', 'SLUICE_STORE_UNAVAILABLE'])

export function sessionRef (ctx: RoundTripContext): SessionRef {
  return {
    sessionKey: ctx.sessionKey,
    principal: ctx.principal,
    connection: ctx.connection,
    frontEnd: ctx.frontEnd,
    sourceIp: ctx.sourceIp,
    userAgent: ctx.userAgent
  }
}

/** Commits an event of a statement before it runs: the trip's decision-time facts only. */
async function recordBeforeRun (recording: Recording, ctx: RoundTripContext, trip: RoundTrip, outcome: 'admitted' | 'held'): Promise<void> {
  const kept: RoundTrip = {}
  // A held statement has no statement id yet: it is given one when it is admitted.
  const keys = ['sql', 'analysis', 'decision', 'hold', 'params', 'policyVersion', 'estimate', ...(outcome === 'admitted' ? ['statementId'] as const : [])] as const
  for (const key of keys) {
    if (trip[key] !== undefined) (kept as Record<string, unknown>)[key] = trip[key]
  }
  await recording.record({
    requestId: ctx.requestId,
    frontEnd: ctx.frontEnd,
    principal: ctx.principal,
    connection: ctx.connection,
    route: ctx.route,
    method: ctx.method,
    outcome,
    ...(outcome === 'admitted' && { phase: 'admitted' as const }),
    startedAtMicros: nowMicros(),
    sourceIp: ctx.sourceIp,
    userAgent: ctx.userAgent ?? null,
    trip: kept
  }, sessionRef(ctx))
}

/**
 * Commits a statement's admitted event: who, which agent, the SQL, its analysis and the
 * decision (rule included), before the warehouse is called.
 */
export async function recordAdmitted (recording: Recording, ctx: RoundTripContext, trip: RoundTrip): Promise<void> {
  await recordBeforeRun(recording, ctx, trip, 'admitted')
}

/**
 * Commits the event of a statement a rule just held (a new pending approval): who asked, the
 * SQL, its analysis, the decision and the approval it waits on ("held, approval <id>"), before
 * the client hears it waits. A front end that waits in its protocol may release the statement
 * in the same request; this event keeps the moment it was held in the trail.
 */
export async function recordHeld (recording: Recording, ctx: RoundTripContext, trip: RoundTrip): Promise<void> {
  await recordBeforeRun(recording, ctx, trip, 'held')
}

/**
 * The trail's "notified" step of a held statement: a webhook the rule names was told of its
 * approval (or gave up after its retries). Not a client's round trip: no principal, no session.
 */
export async function recordNotified (recording: Recording, n: { approvalId: string, connection: string, webhook: string, delivered: boolean }): Promise<void> {
  await recording.record({
    requestId: randomUUID(),
    frontEnd: 'approvals',
    connection: n.connection,
    outcome: n.delivered ? 'ok' : 'error',
    startedAtMicros: nowMicros(),
    trip: {
      approvalAction: {
        approvalId: n.approvalId,
        summary: n.delivered
          ? `approval ${n.approvalId}: notified through webhook ${n.webhook}`
          : `approval ${n.approvalId}: the notification through webhook ${n.webhook} was given up on after its retries`
      }
    }
  })
}

/** The outcome an event records; `statusCode` is the HTTP status, absent for other protocols. */
export function outcomeOf (statusCode: number | undefined, trip: RoundTrip): EventOutcome {
  if (statusCode === 401) return 'unauthenticated'
  if (trip.hold?.state === 'pending') return 'held'
  // Refused for want of an approval is a refusal: nothing ran and nothing waits.
  if (trip.decision?.effect === 'deny' || trip.errorCode === 'SLUICE_POLICY_DENIED' || trip.errorCode === 'SLUICE_APPROVAL_REQUIRED' || trip.errorCode === 'SLUICE_MCP_JUSTIFICATION_REQUIRED') return 'denied'
  // Some protocols answer errors with 200 (the Snowflake connector's success:false), so the
  // error code the front end set decides, not the status alone.
  if (trip.errorCode !== undefined) return 'error'
  return statusCode === undefined || statusCode < 400 ? 'ok' : 'error'
}

export interface CompletionFacts {
  statusCode?: number
  durationMs: number
  bytesReturned?: number | null
}

/** The event that completes a round trip, written before its answer leaves the gateway. */
export async function recordCompleted (recording: Recording, ctx: RoundTripContext, trip: RoundTrip, facts: CompletionFacts): Promise<ChainedEvent> {
  // The answer that releases an admitted statement's result (or its failure) completes it.
  const phase = trip.statementId !== undefined && trip.pending !== true ? 'completed' as const : null
  trip.completing = true
  const companions = trip.companions === undefined ? undefined : [...trip.companions]
  return await recording.record({
    requestId: ctx.requestId,
    frontEnd: ctx.frontEnd,
    principal: ctx.principal,
    connection: ctx.connection,
    route: ctx.route,
    method: ctx.method,
    statusCode: facts.statusCode ?? null,
    outcome: outcomeOf(facts.statusCode, trip),
    phase,
    durationMs: facts.durationMs,
    startedAtMicros: nowMicros() - Math.round(facts.durationMs * 1000),
    sourceIp: ctx.sourceIp,
    userAgent: ctx.userAgent ?? null,
    bytesReturned: trip.bytesReturned ?? facts.bytesReturned ?? null,
    trip,
    ...(companions !== undefined && { companions })
  }, sessionRef(ctx))
}

/**
 * What the client is told when its round trip could not be recorded (the answer is withheld):
 * admitted (so possibly run upstream) and not refused by an upstream that never ran it, the
 * statement stands in the trail as admitted and the client must not just retry.
 */
export function unrecordedRefusal (trip: RoundTrip, requestId: string): { error: Error & { code: string, statusCode?: number }, ran: boolean } {
  const ran = trip.statementId !== undefined && !NOT_EXECUTED.has(trip.errorCode ?? '')
  const error = (ran
    ? new ERR_RESULT_UNRECORDED(`statement ${trip.statementId ?? ''}, request ${requestId}`)
    : new ERR_STORE_UNAVAILABLE('the round trip could not be recorded')) as Error & { code: string, statusCode?: number }
  return { error, ran }
}

export interface AuthFailureFacts {
  requestId: string
  frontEnd: string
  route?: string
  method?: string
  sourceIp?: string
  userAgent?: string
  errorCode?: string
  reason: string
  /** The HTTP status the client got; absent for other protocols. */
  statusCode?: number
}

/**
 * A forged or expired token is exactly what an auditor looks for. Rejects when the store
 * fails; callers log that and refuse all the same.
 */
export async function recordAuthFailure (recording: Recording, facts: AuthFailureFacts): Promise<void> {
  await recording.record({
    requestId: facts.requestId,
    frontEnd: facts.frontEnd,
    route: facts.route,
    method: facts.method,
    statusCode: facts.statusCode ?? null,
    outcome: 'unauthenticated',
    errorCode: facts.errorCode ?? null,
    reason: facts.reason,
    durationMs: 0,
    startedAtMicros: nowMicros(),
    sourceIp: facts.sourceIp,
    userAgent: facts.userAgent ?? null
  })
}
