// Statement handles and query ids, bound to the principal that created them. Sluice issues its
// own ids (UUIDs) rather than passing the warehouse's through: a client only ever holds ids
// Sluice can check, and a lookup by anyone but the owner looks exactly like an unknown id.
// Finished results (already masked by the pipeline) stay here for async fetches, multi-
// statement children, SQL API partitions and connector chunks until their time runs out.
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { Principal } from '../../identity/principal.js'
import type { RoundTrip } from '../../pipeline.js'
import type { ResultSchema } from '../../pipeline/types.js'
import type { FormatChoices } from './result-format.js'
import type { RowTypeEntry } from './upstream.js'

/** A finished, masked result as the front ends encode it. */
export interface StoredResult {
  rowtype: RowTypeEntry[]
  schema: ResultSchema
  rows: unknown[][]
  statementTypeId?: number
  upstreamQueryId?: string
  final: { database?: string, schema?: string, warehouse?: string, role?: string }
  parameters: Array<{ name: string, value: unknown }>
  /** Child ids of a multi-statement request, in order, and their statement type ids. */
  children?: string[]
  childTypes?: number[]
  /** The result format the statement's parameters asked for (children inherit the request's). */
  formats?: FormatChoices
  /** Said to the client instead of "Statement executed successfully." (a result cut at its row limit). */
  notice?: string
}

export type HandleState = 'running' | 'succeeded' | 'failed' | 'aborted'

export interface Handle {
  id: string
  owner: string
  principal: Principal
  connection: string
  sql: string
  createdOn: number
  state: HandleState
  result?: StoredResult
  error?: Error & { code?: string }
  /** Settles when the statement has finished, whatever the outcome. */
  done: Promise<void>
  abort: AbortController
  finishedAt?: number
  /** Why an aborted statement stopped: the client cancelled it or its timeout ran out. */
  cancelReason?: 'client' | 'timeout'
  /** What running it recorded (masked capture, masked columns), for the fetch that serves it. */
  trip?: RoundTrip
  /** The connector's own requestId, for `abort-request` by request id. */
  clientRequestId?: string
  /** The Sluice session that ran it (`snowflake:<id>`), for cancelling a session's statements. */
  sessionKey?: string
}

/**
 * A fetch that serves a result which ran under another request (async, 333333 polls) records
 * what that run captured: the masked rows as released and the masked columns.
 */
export function carryTrip (handle: Handle, trip: RoundTrip): void {
  const source = handle.trip
  if (source === undefined || source === trip) return
  if (trip.capture === undefined && source.capture !== undefined) trip.capture = source.capture
  if (trip.maskedColumns === undefined && source.maskedColumns !== undefined) trip.maskedColumns = source.maskedColumns
  if (trip.upstreamId === undefined && source.upstreamId !== undefined) trip.upstreamId = source.upstreamId
  if (trip.rowsLimited === undefined && source.rowsLimited !== undefined) trip.rowsLimited = source.rowsLimited
  // The request that serves the result (or failure) completes the statement admitted earlier.
  if (trip.statementId === undefined && source.statementId !== undefined) trip.statementId = source.statementId
}

export function ownerKey (p: Principal): string {
  return `${p.issuer}\n${p.subject}`
}

export class HandleStore {
  readonly #handles = new Map<string, Handle>()
  readonly #ttlMs: number
  readonly #max: number
  readonly #chunkKey: Buffer

  /** `chunkKey`: signs chunk tokens; derived from secrets.key so every replica accepts them. */
  constructor (options: { ttlSeconds?: number, max?: number, chunkKey?: Buffer } = {}) {
    this.#ttlMs = (options.ttlSeconds ?? 3600) * 1000
    this.#max = options.max ?? 10_000
    this.#chunkKey = options.chunkKey ?? randomBytes(32)
  }

  /** Registers a statement and runs `work` for it; the handle is usable at once. */
  start (principal: Principal, connection: string, sql: string, work: (h: Handle) => Promise<StoredResult>, id: string = randomUUID()): Handle {
    this.#sweep()
    const handle: Handle = {
      id,
      owner: ownerKey(principal),
      principal,
      connection,
      sql,
      createdOn: Date.now(),
      state: 'running',
      abort: new AbortController(),
      done: Promise.resolve()
    }
    this.#handles.set(handle.id, handle)
    handle.done = work(handle).then((result) => {
      if (handle.state === 'running') {
        handle.state = 'succeeded'
        handle.result = result
      }
    }, (err: unknown) => {
      if (handle.state === 'running') handle.state = 'failed'
      handle.error ??= err as Error
    }).finally(() => { handle.finishedAt = Date.now() })
    return handle
  }

  /** Stores an already finished result (multi-statement children). */
  put (principal: Principal, connection: string, sql: string, result: StoredResult): Handle {
    return this.start(principal, connection, sql, async () => result)
  }

  /** The handle if `principal` owns it; undefined for unknown and foreign ids alike. */
  get (id: string, principal: Principal): Handle | undefined {
    const handle = this.#handles.get(id)
    if (handle === undefined || handle.owner !== ownerKey(principal)) return undefined
    if (this.#expired(handle)) {
      this.#handles.delete(id)
      return undefined
    }
    return handle
  }

  /** For chunk downloads, which carry a Sluice-signed chunk token instead of a session. */
  getForChunk (id: string, token: string): Handle | undefined {
    const handle = this.#handles.get(id)
    if (handle === undefined || !this.#verifyChunkToken(handle, token)) return undefined
    return handle
  }

  /** The owner's running statement submitted with this client requestId, if any. */
  byClientRequest (principal: Principal, requestId: string): Handle | undefined {
    const owner = ownerKey(principal)
    for (const handle of this.#handles.values()) {
      if (handle.owner === owner && handle.clientRequestId === requestId) return handle
    }
    return undefined
  }

  /** The owner's statements still running in one Sluice session. */
  runningIn (principal: Principal, sessionKey: string): Handle[] {
    const owner = ownerKey(principal)
    return [...this.#handles.values()].filter((h) => h.owner === owner && h.sessionKey === sessionKey && h.state === 'running')
  }

  cancel (handle: Handle, reason: 'client' | 'timeout' = 'client'): void {
    if (handle.state !== 'running') return
    handle.state = 'aborted'
    handle.cancelReason = reason
    handle.error = undefined
    handle.abort.abort()
  }

  /** A short-lived token that lets only this handle's owner download its chunks. */
  chunkToken (handle: Handle, ttlSeconds = 600): string {
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds
    return `${expires}.${this.#mac(handle, expires)}`
  }

  #verifyChunkToken (handle: Handle, token: string): boolean {
    const [expiresText, mac] = token.split('.')
    const expires = Number(expiresText)
    if (!Number.isInteger(expires) || mac === undefined || expires < Date.now() / 1000) return false
    const want = Buffer.from(this.#mac(handle, expires))
    const got = Buffer.from(mac)
    return want.length === got.length && timingSafeEqual(want, got)
  }

  #mac (handle: Handle, expires: number): string {
    return createHmac('sha256', this.#chunkKey).update(`${handle.id}\n${handle.owner}\n${expires}`).digest('base64url')
  }

  #expired (handle: Handle): boolean {
    return handle.finishedAt !== undefined && Date.now() - handle.finishedAt > this.#ttlMs
  }

  #sweep (): void {
    for (const [id, handle] of this.#handles) if (this.#expired(handle)) this.#handles.delete(id)
    // Bounded memory: the oldest finished results go first.
    if (this.#handles.size < this.#max) return
    for (const [id, handle] of this.#handles) {
      if (handle.state !== 'running') this.#handles.delete(id)
      if (this.#handles.size < this.#max * 0.9) break
    }
  }

  clear (): void {
    for (const handle of this.#handles.values()) handle.abort.abort()
    this.#handles.clear()
  }
}
