// Submitting a statement and reading how it stands, the same for both Snowflake front ends, so
// each is a codec: wire request → submit / settle / page / cancel → wire answer. Submitting
// checks the client's requestId (a retry is answered with the first handle), admits the request
// through the pipeline, takes an upstream session only once admitted, and starts the statement
// on this replica with its handle in the store. Settling waits (here or by re-reading the row)
// and says what the front end must render.
import { ERR_SNOWFLAKE_CANCELLED } from '../../errors.js'
import type { Pipeline, RoundTrip } from '../../pipeline.js'
import { admittedRecord } from '../../pipeline/admitted.js'
import { pendingApproval } from '../../pipeline/held.js'
import { prepareRequest, runPrepared, type ExecuteRequest, type PrepareInput, type Prepared } from './execute.js'
import { heldRequestOf } from './held.js'
import { carryTrip, type Handle } from './handles.js'
import type { Fingerprint, Idempotency } from './idempotency.js'
import type { StoredResult } from './manifest.js'
import { pollFailure, type SnowflakeStatements } from './statements.js'
import type { UpstreamSession } from './upstream.js'

export interface SubmitDeps {
  pipeline: Pipeline
  statements: SnowflakeStatements
  idempotency: Idempotency
}

export interface SubmitOptions {
  /** The client's idempotency key, when it sent one. */
  requestId?: string
  fingerprint: Fingerprint
  /** Async: the statement outlives this request, whose round trip records it as pending. */
  async: boolean
  /** The Sluice session that runs it (`snowflake:<id>`), for cancelling a session's statements. */
  sessionKey?: string
  /** The SQL API's request timeout, kept by the replica that runs it. */
  timeoutSeconds?: number
  /**
   * The front end waits in its protocol (SQL API 202, connector 333333): a statement a rule holds
   * gets a held handle instead of the refusal. A caller that cannot poll leaves it unset.
   */
  hold?: boolean
  /** The upstream session to run on, taken once admitted; `release` when the statement ends. */
  session: () => Promise<{ session: UpstreamSession, release: () => void }>
}

export interface Submitted {
  handle: Handle
  /** False when the requestId named an earlier submission, which this request only reads. */
  submitted: boolean
}

export async function submit (deps: SubmitDeps, input: PrepareInput, options: SubmitOptions, trip: RoundTrip): Promise<Submitted> {
  const { requestId, fingerprint: fp } = options
  const connection = input.settings.name
  // The same requestId again: answered with the first submission's handle when it is the same
  // request, refused when it is another (idempotency.ts); never run twice, never re-decided.
  const earlier = requestId === undefined ? undefined : await deps.idempotency.earlier(input.principal, connection, requestId, fp)
  if (earlier !== undefined) return { handle: earlier, submitted: false }
  const execute = { pipeline: deps.pipeline, statements: deps.statements }
  // Admitted first: a refused statement never takes an upstream session, nor binds its
  // requestId, so a retry of it is decided (and refused) again.
  let prepared: Prepared
  try {
    prepared = await prepareRequest(execute, input, trip)
  } catch (err) {
    const approvalId = pendingApproval(err, trip)
    if (approvalId === undefined || options.hold !== true) throw err
    return await hold(deps, input, options, approvalId, trip)
  }
  const { session, release } = await options.session()
  // An async statement's own trip is completed by the request that serves it (carryTrip).
  const runTrip: RoundTrip = options.async ? { statementId: prepared.admission.statementId } : trip
  let started = false
  const start = async (id?: string): Promise<Handle> => await deps.statements.start(input.principal, connection, input.sql, async (signal, handleId) => {
    started = true
    try {
      const req: ExecuteRequest = { ...input, session, signal }
      return await runPrepared(execute, req, prepared, runTrip, handleId)
    } finally {
      release()
    }
  }, {
    ...(id === undefined ? {} : { id }),
    ...(requestId === undefined ? {} : { clientRequestId: requestId }),
    ...(options.sessionKey === undefined ? {} : { sessionKey: options.sessionKey }),
    ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
    admitted: admittedRecord(prepared.statement, prepared.admission),
    trip: runTrip,
    // The client waits for it here: its row is written only if it runs on (statements.ts).
    deferRow: !options.async,
    // Released by an approval (a resend of a held statement): its held handle serves this run.
    ...(trip.hold?.state === 'granted' && trip.hold.approvalId !== undefined && { approvalId: trip.hold.approvalId })
  })
  try {
    const handle = requestId === undefined ? await start() : await deps.idempotency.bind(input.principal, connection, requestId, fp, start)
    return { handle, submitted: started }
  } finally {
    // Another request took the key meanwhile (or the handle could not be stored): nothing runs.
    if (!started) release()
  }
}

/**
 * A statement a rule holds for approval: a handle in the store that waits (nothing runs, no
 * upstream session is taken); the client polls it like a running statement (held.ts). Its
 * requestId is bound to it, so a retry of the submission polls the same approval.
 */
async function hold (deps: SubmitDeps, input: PrepareInput, options: SubmitOptions, approvalId: string, trip: RoundTrip): Promise<Submitted> {
  const { requestId, fingerprint: fp } = options
  trip.pending = true
  // The refusal admit() threw is the protocol's "still running" here, not an error.
  delete trip.errorCode
  const minutes = trip.decision?.approval?.expiresAfterMinutes ?? 30
  const start = async (id?: string): Promise<Handle> => await deps.statements.hold(input.principal, input.settings.name, input.sql, approvalId, heldRequestOf(input, options.timeoutSeconds), {
    heldSeconds: minutes * 60,
    ...(id === undefined ? {} : { id }),
    ...(requestId === undefined ? {} : { clientRequestId: requestId }),
    ...(options.sessionKey === undefined ? {} : { sessionKey: options.sessionKey })
  })
  const handle = requestId === undefined ? await start() : await deps.idempotency.bind(input.principal, input.settings.name, requestId, fp, start)
  return { handle, submitted: true }
}

/** How a statement stands, for the front end to render in its protocol. */
export type Settled =
  | { state: 'running', handle: Handle }
  | { state: 'aborted', handle: Handle, reason: 'client' | 'timeout', error: Error }
  | { state: 'failed', handle: Handle, error: Error | undefined }
  | { state: 'succeeded', handle: Handle, result: StoredResult }

/**
 * Waits up to `waitSeconds`, then says how the statement stands and fills the round trip with
 * what its run recorded. `submitted`: this request submitted it, so a retryable failure
 * (unreachable upstream) is answered as retryable; a poll reads it as the statement's failure.
 */
export async function settle (statements: SnowflakeStatements, found: Handle, waitSeconds: number, trip: RoundTrip, submitted: boolean): Promise<Settled> {
  const handle = await statements.wait(found, waitSeconds)
  trip.sql ??= handle.sql
  if (handle.state === 'running') {
    trip.pending = true
    return { state: 'running', handle }
  }
  carryTrip(handle, trip)
  if (handle.state === 'aborted') {
    trip.errorCode = 'SLUICE_SNOWFLAKE_CANCELLED'
    return { state: 'aborted', handle, reason: handle.cancelReason ?? 'client', error: new ERR_SNOWFLAKE_CANCELLED(handle.id) }
  }
  if (handle.state === 'failed' || handle.result === undefined) return { state: 'failed', handle, error: submitted ? handle.error : pollFailure(handle) }
  return { state: 'succeeded', handle, result: handle.result }
}
