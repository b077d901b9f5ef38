// Statement handles and query ids as the Snowflake front ends see them: a view of a store row
// (src/state/statement-handles.ts), bound to the principal that created it. Sluice issues its
// own ids (UUIDs) rather than passing the warehouse's through: a client only ever holds ids
// Sluice can check, and a lookup by anyone but the owner looks exactly like an unknown id.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { RecordedFailure } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { RoundTrip } from '../../pipeline.js'
import { decodeAdmitted, type AdmittedRecord } from '../../pipeline/admitted.js'
import type { CancelReason, HandleState, StatementHandleRow, StoredError } from '../../state/statement-handles.js'
import type { ResultManifest, StoredResult } from './manifest.js'

export type { StoredResult, ResultManifest } from './manifest.js'
export type { HandleState } from '../../state/statement-handles.js'

/** What a run recorded that the answer serving it (possibly on another replica) records too. */
export interface TripSummary {
  maskedColumns?: RoundTrip['maskedColumns']
  upstreamId?: string
  rowsLimited?: RoundTrip['rowsLimited']
  statementId?: string
}

/** The admitted statement a handle's later pages are masked under; `part` for a multi-statement child. */
export interface HandleAdmission {
  record: AdmittedRecord
  part?: string
}

export interface Handle {
  id: string
  /** `ownerDigest` of the principal. */
  owner: string
  connection: string
  sql: string
  createdOn: number
  state: HandleState
  finishedAt?: number
  replica: string
  heartbeatAt: number
  /** Why an aborted statement stopped: the client cancelled it or its timeout ran out. */
  cancelReason?: CancelReason
  result?: StoredResult
  error?: RecordedFailure
  trip?: TripSummary
  admitted?: HandleAdmission
  /** The connector's own requestId, for `abort-request` by request id. */
  clientRequestId?: string
  /** The Sluice session that ran it (`snowflake:<id>`), for cancelling a session's statements. */
  sessionKey?: string
  /** The approval a held statement waits for, or that released it. */
  approvalId?: string
  /** A held statement's request, sealed (statements.ts opens it). */
  sealedRequest?: Uint8Array
}

export function ownerKey (p: Principal): string {
  return `${p.issuer}\n${p.subject}`
}

/** What the store keeps of a handle's owner: a digest, never issuer and subject in clear. */
export function ownerDigest (p: Principal): string {
  return createHash('sha256').update(ownerKey(p), 'utf8').digest('hex')
}

export function handleOf (row: StatementHandleRow): Handle {
  const handle: Handle = {
    id: row.id,
    owner: row.owner,
    connection: row.connection,
    sql: row.sql,
    createdOn: Math.round(row.createdAt),
    state: row.state,
    replica: row.replica,
    heartbeatAt: row.heartbeatAt
  }
  if (row.finishedAt !== undefined) handle.finishedAt = Math.round(row.finishedAt)
  if (row.cancelReason !== undefined) handle.cancelReason = row.cancelReason
  if (row.clientRequestId !== undefined) handle.clientRequestId = row.clientRequestId
  if (row.sessionKey !== undefined) handle.sessionKey = row.sessionKey
  if (row.approvalId !== undefined) handle.approvalId = row.approvalId
  if (row.heldRequest !== undefined) handle.sealedRequest = row.heldRequest
  if (row.error !== undefined) handle.error = new RecordedFailure(row.error)
  if (row.trip !== undefined) handle.trip = row.trip as TripSummary
  if (row.manifest !== undefined) handle.result = { manifest: row.manifest as ResultManifest, firstPage: row.firstPage ?? [] }
  if (row.admitted !== undefined) {
    const stored = row.admitted as { record: AdmittedRecord, part?: string }
    handle.admitted = { record: decodeAdmitted(stored.record), ...(stored.part === undefined ? {} : { part: stored.part }) }
  }
  return handle
}

/** The failure as the store keeps it: the released text and the codes the protocols render. */
export function storedError (info: { catalogueCode: string, code: string, sqlState: string, message: string }, statusCode: number | undefined): StoredError {
  const stored: StoredError = { code: info.catalogueCode, message: info.message, snowflakeCode: info.code, sqlState: info.sqlState }
  if (statusCode !== undefined) stored.statusCode = statusCode
  return stored
}

export function tripSummary (trip: RoundTrip): TripSummary {
  const summary: TripSummary = {}
  if (trip.maskedColumns !== undefined) summary.maskedColumns = trip.maskedColumns
  if (trip.upstreamId !== undefined) summary.upstreamId = trip.upstreamId
  if (trip.rowsLimited !== undefined) summary.rowsLimited = trip.rowsLimited
  if (trip.statementId !== undefined) summary.statementId = trip.statementId
  return summary
}

/**
 * A fetch that serves a result which ran under another request (async, 333333 polls, another
 * replica) records what that run recorded: the masked columns, the row limit, the statement.
 */
export function carryTrip (handle: Handle, trip: RoundTrip): void {
  const source = handle.trip
  if (source === undefined) return
  if (trip.maskedColumns === undefined && source.maskedColumns !== undefined) trip.maskedColumns = source.maskedColumns
  if (trip.upstreamId === undefined && source.upstreamId !== undefined) trip.upstreamId = source.upstreamId
  if (trip.rowsLimited === undefined && source.rowsLimited !== undefined) trip.rowsLimited = source.rowsLimited
  // The request that serves the result (or failure) completes the statement admitted earlier.
  if (trip.statementId === undefined && source.statementId !== undefined) trip.statementId = source.statementId
}

/**
 * Short-lived tokens that let only a handle's owner download its chunks, on any replica: the
 * key is derived from secrets.key, and a token is checked against the handle's store row.
 */
export class ChunkTokens {
  readonly #key: Buffer

  constructor (key: Buffer) {
    this.#key = key
  }

  issue (handle: Pick<Handle, 'id' | 'owner'>, ttlSeconds = 600): string {
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds
    return `${expires}.${this.#mac(handle, expires)}`
  }

  verify (handle: Pick<Handle, 'id' | 'owner'>, token: string): boolean {
    const [expiresText, mac] = token.split('.')
    const expires = Number(expiresText)
    if (!Number.isInteger(expires) || mac === undefined || expires < Date.now() / 1000) return false
    const want = Buffer.from(this.#mac(handle, expires))
    const got = Buffer.from(mac)
    return want.length === got.length && timingSafeEqual(want, got)
  }

  #mac (handle: Pick<Handle, 'id' | 'owner'>, expires: number): string {
    return createHmac('sha256', this.#key).update(`${handle.id}\n${handle.owner}\n${expires}`).digest('base64url')
  }
}
