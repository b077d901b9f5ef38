// Idempotency keys for both Snowflake front ends: the SQL API's `requestId` query parameter and
// the connector's (snowflake-sdk and the Python connector send one per statement and resend it,
// with retryCount / retryReason / request_guid added, when they retry a query-request).
//
// A key belongs to (principal, connection) and is bound, in the store, to the first request that
// used it: its handle and digests of its statement text and of the rest of the request. A retry
// (same digests) gets that handle; the key with another request is refused and nothing runs. The
// policy decided the first request, so a retry cannot smuggle another statement past it under an
// earlier "success". Handles live in the store too (statements.ts), so a retry is answered with
// the first request's handle on whichever replica it reaches.
// One exception to "never twice": a first request whose statement provably never left for the
// warehouse (SLUICE_UPSTREAM_UNAVAILABLE, answered as retryable) gives its key to the retry, or
// the retry the client was told to make would only be told the same again.
import { createHash, randomUUID } from 'node:crypto'
import { ERR_BAD_REQUEST, ERR_IDEMPOTENCY_CONFLICT, ERR_IDEMPOTENCY_UNAVAILABLE } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import type { IdempotencyBinding, IdempotencyKey, IdempotencyStore } from '../../state/idempotency.js'
import { ownerKey, type Handle } from './handles.js'
import type { SnowflakeStatements } from './statements.js'

/** What a request asked for, as far as a retry must repeat it. */
export interface RequestShape {
  frontEnd: string
  sql: string
  /** Everything else that shapes the result (bindings, parameters, context…); key order is ignored. */
  rest: Record<string, unknown>
}

export interface Fingerprint {
  frontEnd: string
  statementHash: string
  requestHash: string
}

export interface IdempotencyOptions {
  /** How long a key stays bound. */
  ttlSeconds: number
  /** Expired keys are purged at most this often, in batches of `purgeBatch`. */
  purgeEverySeconds?: number
  purgeBatch?: number
  log?: { warn: (obj: object, msg?: string) => void }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MAX_CONNECTOR_REQUEST_ID = 256

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')

/** JSON with object keys sorted and undefined left out, so equal requests hash alike. */
function canonical (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v === undefined ? null : v)).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

export function fingerprint (shape: RequestShape): Fingerprint {
  return { frontEnd: shape.frontEnd, statementHash: sha256(shape.sql), requestHash: sha256(canonical(shape.rest)) }
}

function single (value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new ERR_BAD_REQUEST('requestId must be given once')
  if (value === '') throw new ERR_BAD_REQUEST('requestId must not be empty: leave it out, or send a UUID')
  return value
}

/** The SQL API's requestId (spec: format uuid), checked; undefined when the client sent none. */
export function sqlApiRequestId (value: unknown): string | undefined {
  const id = single(value)
  if (id !== undefined && !UUID.test(id)) throw new ERR_BAD_REQUEST(`requestId must be a UUID (got ${JSON.stringify(id.slice(0, 64))})`)
  return id
}

/** The connector's requestId: the drivers send UUIDs, snowflake-sdk lets a caller choose any string. */
export function connectorRequestId (value: unknown): string | undefined {
  const id = single(value)
  if (id !== undefined && id.length > MAX_CONNECTOR_REQUEST_ID) throw new ERR_BAD_REQUEST(`requestId must be at most ${MAX_CONNECTOR_REQUEST_ID} characters`)
  return id
}

/**
 * What snowflake-sdk sends when a caller resubmits a request by its id without SQL
 * (`execute({ requestId })`): Snowflake answers it with the first request's result.
 */
export function resubmitText (requestId: string): string {
  return `SELECT 'Error retrieving query results for request id: ${requestId}, please use RESULT_SCAN instead' AS ErrorMessage;`
}

/** A statement that failed before it was sent: the warehouse cannot have run it. */
function neverRan (handle: Handle): boolean {
  return handle.state === 'failed' && handle.error?.code === 'SLUICE_UPSTREAM_UNAVAILABLE'
}

export class Idempotency {
  /** This gateway process, as recorded with the keys it binds. */
  readonly replica: string
  readonly #store: IdempotencyStore
  readonly #handles: SnowflakeStatements
  readonly #options: Required<Omit<IdempotencyOptions, 'log'>> & Pick<IdempotencyOptions, 'log'>
  // Same-key requests on this replica take turns between claiming a key and starting its
  // statement, so a retry never looks for a handle that is about to exist. Entries live only
  // as long as that step.
  readonly #inflight = new Map<string, Promise<void>>()
  #lastPurge = 0

  constructor (store: IdempotencyStore, handles: SnowflakeStatements, options: IdempotencyOptions) {
    this.#store = store
    this.#handles = handles
    this.replica = handles.replica
    this.#options = { purgeEverySeconds: 60, purgeBatch: 500, ...options }
  }

  keyOf (principal: Principal, connection: string, requestId: string): IdempotencyKey {
    return { owner: sha256(ownerKey(principal)), connection, requestId }
  }

  /**
   * The handle of the earlier request this one retries, or undefined when the key is unused.
   * Throws when the key was used for another request, or its handle cannot be served here.
   */
  async earlier (principal: Principal, connection: string, requestId: string, fp: Fingerprint): Promise<Handle | undefined> {
    const binding = await this.#lookup(this.keyOf(principal, connection, requestId))
    if (binding === undefined) return undefined
    const handle = await this.#answer(principal, connection, requestId, binding, fp)
    // Decided and run anew; bind() takes the key over from the handle that never ran.
    return neverRan(handle) ? undefined : handle
  }

  /** The handle bound to the key whatever request it came from (snowflake-sdk's resubmit by id). */
  async bound (principal: Principal, connection: string, requestId: string): Promise<Handle | undefined> {
    const binding = await this.#lookup(this.keyOf(principal, connection, requestId))
    if (binding === undefined) return undefined
    return await this.#served(principal, requestId, binding)
  }

  /**
   * Binds the key to a new handle and starts it with `start(id)`, called only when this request
   * won the key. A request that lost the race (another got there first, on any replica) is
   * answered as a retry of the winner or refused; its statement is not started.
   */
  async bind (principal: Principal, connection: string, requestId: string, fp: Fingerprint, start: (handleId: string) => Promise<Handle>): Promise<Handle> {
    const key = this.keyOf(principal, connection, requestId)
    const name = JSON.stringify(key)
    await this.#turn(name)
    let done!: () => void
    this.#inflight.set(name, new Promise<void>((resolve) => { done = resolve }))
    try {
      const handleId = randomUUID()
      const fresh = { handleId, replica: this.replica, ...fp }
      let { claimed, binding } = await this.#store.claim(key, fresh, this.#options.ttlSeconds)
      if (claimed) return await start(handleId)
      let earlier = await this.#answer(principal, connection, requestId, binding, fp)
      if (neverRan(earlier)) {
        ({ claimed, binding } = await this.#store.claim(key, fresh, this.#options.ttlSeconds, earlier.id))
        if (claimed) return await start(handleId)
        earlier = await this.#answer(principal, connection, requestId, binding, fp)
      }
      return earlier
    } finally {
      this.#inflight.delete(name)
      done()
      this.#purgeNowAndThen()
    }
  }

  async #lookup (key: IdempotencyKey): Promise<IdempotencyBinding | undefined> {
    await this.#turn(JSON.stringify(key))
    return await this.#store.lookup(key)
  }

  /** Waits until no request of this replica is between claiming the key and starting its handle. */
  async #turn (name: string): Promise<void> {
    for (let busy = this.#inflight.get(name); busy !== undefined; busy = this.#inflight.get(name)) await busy
  }

  async #answer (principal: Principal, connection: string, requestId: string, binding: IdempotencyBinding, fp: Fingerprint): Promise<Handle> {
    const differs = binding.frontEnd !== fp.frontEnd
      ? `a request through ${binding.frontEnd}`
      : binding.statementHash !== fp.statementHash
        ? 'a different statement text'
        : binding.requestHash !== fp.requestHash ? 'the same statement text with different bindings, parameters or context' : undefined
    if (differs !== undefined) throw new ERR_IDEMPOTENCY_CONFLICT(requestId, connection, `${differs} at ${binding.createdAt}`, binding.handleId)
    return await this.#served(principal, requestId, binding)
  }

  async #served (principal: Principal, requestId: string, binding: IdempotencyBinding): Promise<Handle> {
    let handle = await this.#handles.get(binding.handleId, principal)
    // Bound a moment ago on another replica, which records its handle right after claiming the key.
    for (let tries = 0; handle === undefined && tries < 10 && Date.now() - Date.parse(binding.createdAt) < 5000; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      handle = await this.#handles.get(binding.handleId, principal)
    }
    if (handle !== undefined) return handle
    // Either the key outlived its handle, or the handle was never stored: its final row goes
    // in its completed event's statement (statements.ts), which the audit store refused, or
    // its replica stopped first. Both ways the retry is refused rather than run a second time.
    const expired = Date.now() - Date.parse(binding.createdAt) >= this.#handles.ttlSeconds * 1000
    const why = expired ? 'its result has expired' : 'its outcome was never stored: the audit store did not take it, or its replica stopped first'
    throw new ERR_IDEMPOTENCY_UNAVAILABLE(requestId, binding.handleId, why)
  }

  /** A bounded, indexed purge of expired keys, at most once a minute, off the request's path. */
  #purgeNowAndThen (): void {
    const now = Date.now()
    if (now - this.#lastPurge < this.#options.purgeEverySeconds * 1000) return
    this.#lastPurge = now
    this.#store.purgeExpired(this.#options.purgeBatch).catch((err: unknown) => {
      this.#options.log?.warn({ err: (err as Error).message }, 'idempotency: purging expired keys failed; lookups ignore them anyway')
    })
  }
}
