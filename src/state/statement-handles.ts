// Statement handles as records in the store (migrations/0006_statement_handles.sql), behind a
// port, so a poll, a partition, a chunk download or a cancel can reach any replica. A row says
// what a statement is, who owns it, which replica runs it (with a heartbeat), whether a cancel
// was asked for, how it ended, and the result's manifest: never its rows, except the masked
// inline first page. One SQL implementation runs on both store engines (Postgres and PGlite).
// Expiry is part of every lookup (`expires_at > now()`); the purge is a bounded, indexed delete.
import type { Companion, CompanionKind } from '../store/companions.js'
import type { Store } from '../store/store.js'

/** `held`: waiting for a human's approval (src/approvals); released, it runs as `running`. */
export type HandleState = 'held' | 'running' | 'succeeded' | 'failed' | 'aborted'
export type CancelReason = 'client' | 'timeout'

/** How a statement failed, as it was released to the client (never the upstream's own text). */
export interface StoredError {
  /** The catalogue code (SLUICE_…). */
  code: string
  message: string
  statusCode?: number
  snowflakeCode?: string
  sqlState?: string
}

export interface StatementHandleRow<M = unknown, A = unknown, T = unknown> {
  id: string
  /** A digest of the principal (issuer and subject), never the subject in clear. */
  owner: string
  connection: string
  sql: string
  state: HandleState
  /** Epoch milliseconds. */
  createdAt: number
  finishedAt?: number
  expiresAt: number
  replica: string
  heartbeatAt: number
  cancelReason?: CancelReason
  clientRequestId?: string
  sessionKey?: string
  error?: StoredError
  /** The admitted statement record (pipeline/admitted.ts), as the front end encoded it. */
  admitted?: A
  /** The result manifest: rowtype, schema, page list, upstream query id. No rows. */
  manifest?: M
  /** The masked inline first page. */
  firstPage?: unknown[][]
  /** What the run recorded, for the answer that serves it. */
  trip?: T
  /** The approval a held statement waits for (and, once released, was run under). */
  approvalId?: string
  /** A held statement's request as it must run once approved, sealed (src/state/sealed.ts). */
  heldRequest?: Uint8Array
}

export type NewStatementHandle<M = unknown, A = unknown, T = unknown> =
  Pick<StatementHandleRow<M, A, T>, 'id' | 'owner' | 'connection' | 'sql' | 'replica'> &
  Partial<Pick<StatementHandleRow<M, A, T>, 'clientRequestId' | 'sessionKey' | 'admitted' | 'approvalId' | 'heldRequest'>>

export interface HandleOutcome<M = unknown, T = unknown> {
  state: 'succeeded' | 'failed'
  error?: StoredError
  manifest?: M
  firstPage?: unknown[][]
  trip?: T
}

/** What a runner learns from its heartbeat about each of its running statements. */
export interface HeartbeatAnswer {
  id: string
  state: HandleState
  cancelReason?: CancelReason
}

export interface StatementHandleStore {
  /** A running statement; `finished` stores an already finished one in the same write. The row as stored. */
  create: (handle: NewStatementHandle, ttlSeconds: number, finished?: HandleOutcome) => Promise<StatementHandleRow>
  /**
   * An already finished statement's row as `create` would store and return it, not written:
   * `companion` writes it in the statement of the round trip's completed event (src/store/companions.ts).
   */
  finishedCompanion: (handle: NewStatementHandle, ttlSeconds: number, finished: HandleOutcome) => { row: StatementHandleRow, companion: Companion }
  /** The live handle if `owner` owns it: unknown, foreign and expired ids alike are undefined. */
  get: (id: string, owner: string) => Promise<StatementHandleRow | undefined>
  /** The live handle whatever its owner, for a caller that proves ownership otherwise (chunk tokens). */
  getAny: (id: string) => Promise<StatementHandleRow | undefined>
  /** Records the end of a statement still running: the row as stored, undefined when it was cancelled (or marked lost) first. */
  finish: (id: string, outcome: HandleOutcome, ttlSeconds: number) => Promise<StatementHandleRow | undefined>
  /** Marks a running statement aborted with the reason; false when it had already ended. */
  cancel: (id: string, owner: string, reason: CancelReason) => Promise<boolean>
  /** Marks a running statement failed when its replica's heartbeat is older than `staleSeconds`. */
  failIfStale: (id: string, staleSeconds: number, error: StoredError, ttlSeconds: number) => Promise<boolean>
  /** One write for all of a replica's running statements: heartbeats them and says how each stands. */
  heartbeat: (ids: string[], ttlSeconds: number) => Promise<HeartbeatAnswer[]>
  /** The owner's running (or held) statements submitted with this client requestId. */
  runningByRequest: (owner: string, requestId: string) => Promise<StatementHandleRow[]>
  /** The owner's running statements of one Sluice session. */
  runningInSession: (owner: string, sessionKey: string) => Promise<StatementHandleRow[]>
  /**
   * A held statement released to run on `replica` (held → running, heartbeated from now); false
   * when it is no longer held (ended by a cancel or a denial, or released by another poll).
   */
  release: (id: string, replica: string, ttlSeconds: number, admitted?: unknown) => Promise<boolean>
  /** Ends a held statement without running it (denied, expired, withdrawn: failed; a cancel: aborted). */
  endHeld: (id: string, outcome: { state: 'failed', error: StoredError } | { state: 'aborted', cancelReason: CancelReason }, ttlSeconds: number) => Promise<boolean>
  /** The owner's handle of this approval that was released to run (not the held ones). */
  releasedFor: (approvalId: string, owner: string) => Promise<StatementHandleRow | undefined>
  /** Deletes up to `limit` expired handles, oldest first; how many went. */
  purgeExpired: (limit: number) => Promise<number>
}

const ms = (column: string): string => `(extract(epoch from ${column}) * 1000)::float8`

// The row without the JSON the writer itself just sent (the first page alone can be megabytes):
// what the writes return, completed from their own input.
const SCALAR_COLUMNS = `id::text as id, owner, connection, sql, state, ${ms('created_at')} as "createdAt",
  ${ms('finished_at')} as "finishedAt", ${ms('expires_at')} as "expiresAt", replica, ${ms('heartbeat_at')} as "heartbeatAt",
  cancel_reason as "cancelReason", client_request_id as "clientRequestId", session_key as "sessionKey",
  approval_id::text as "approvalId"`

const COLUMNS = `${SCALAR_COLUMNS}, error, admitted, manifest, first_page as "firstPage", trip, held_request as "heldRequest"`

const LIVE = 'expires_at > now()'

const CREATE = `insert into statement_handles
    (id, owner, connection, sql, state, created_at, finished_at, expires_at, replica, heartbeat_at,
     client_request_id, session_key, admitted, error, manifest, first_page, trip, approval_id, held_request)
  values ($1::uuid, $2, $3, $4, $5, now(), case when $5 in ('running', 'held') then null else now() end,
    now() + make_interval(secs => $6::float8), $7, now(), $8, $9, $10::text::jsonb, $11::text::jsonb,
    $12::text::jsonb, $13::text::jsonb, $14::text::jsonb, $15::uuid, $16)
  returning ${SCALAR_COLUMNS}`

// CREATE of a finished row, for rows that travel as companions of an event: the same columns
// and timestamps (the store's clock), read from a JSON array.
const FINISHED_HANDLES: CompanionKind = {
  name: 'statement_handles',
  insert: (param) => `insert into statement_handles
      (id, owner, connection, sql, state, created_at, finished_at, expires_at, replica, heartbeat_at,
       client_request_id, session_key, admitted, error, manifest, first_page, trip, approval_id)
    select r.id, r.owner, r.connection, r.sql, r.state, now(), now(), now() + make_interval(secs => r.ttl), r.replica, now(),
      r.client_request_id, r.session_key, r.admitted, r.error, r.manifest, r.first_page, r.trip, r.approval_id
    from json_to_recordset(${param}::text::json) as r(id uuid, owner text, connection text, sql text, state text, ttl float8,
      replica text, client_request_id text, session_key text, admitted jsonb, error jsonb, manifest jsonb, first_page jsonb,
      trip jsonb, approval_id uuid)`
}

// Only a held row is released, once: the approval's claim already made this replica the runner.
const RELEASE = `update statement_handles set state = 'running', replica = $2, heartbeat_at = now(),
    expires_at = greatest(expires_at, now() + make_interval(secs => $3::float8)), admitted = $4::text::jsonb, held_request = null
  where id = $1::uuid and state = 'held' and ${LIVE} returning 1 as ok`

const END_HELD = `update statement_handles set state = $2, finished_at = now(), error = $3::text::jsonb, cancel_reason = $4,
    expires_at = now() + make_interval(secs => $5::float8), held_request = null
  where id = $1::uuid and state = 'held' returning 1 as ok`

const FINISH = `update statement_handles set state = $2, finished_at = now(),
    expires_at = now() + make_interval(secs => $3::float8), error = $4::text::jsonb, manifest = $5::text::jsonb,
    first_page = $6::text::jsonb, trip = $7::text::jsonb
  where id = $1::uuid and state = 'running' returning ${SCALAR_COLUMNS}, admitted`

const CANCEL = `update statement_handles set state = 'aborted', cancel_reason = $3, finished_at = now()
  where id = $1::uuid and owner = $2 and state = 'running' and ${LIVE} returning 1 as ok`

const FAIL_STALE = `update statement_handles set state = 'failed', finished_at = now(), error = $3::text::jsonb,
    expires_at = now() + make_interval(secs => $4::float8)
  where id = $1::uuid and state = 'running' and heartbeat_at < now() - make_interval(secs => $2::float8) returning 1 as ok`

// Running rows are kept alive for as long as their replica heartbeats them.
const HEARTBEAT = `update statement_handles set heartbeat_at = now(),
    expires_at = greatest(expires_at, now() + make_interval(secs => $2::float8))
  where id = any($1::uuid[]) returning id::text as id, state, cancel_reason as "cancelReason"`

/** Exported for the test that shows it is served by the expiry index. */
export const PURGE_HANDLES = `delete from statement_handles where id in (
  select id from statement_handles where expires_at <= now() order by expires_at limit $1)`

const json = (value: unknown): string | null => value === undefined ? null : JSON.stringify(value)

type Raw = Record<string, unknown>

/** Rows as the port returns them: absent fields left out, jsonb parsed (postgres.js and PGlite alike). */
function rowOf (raw: Raw): StatementHandleRow {
  const row: Raw = {}
  for (const [key, value] of Object.entries(raw)) {
    if (value === null || value === undefined) continue
    row[key] = typeof value === 'string' && ['error', 'admitted', 'manifest', 'firstPage', 'trip'].includes(key) ? JSON.parse(value) : value
    if (key === 'heldRequest') row[key] = new Uint8Array(value as Uint8Array)
  }
  return row as unknown as StatementHandleRow
}

/**
 * A row returned without its JSON columns, completed with the values just written: the small
 * ones as a read would give them back (a JSON round trip), the first page (rows of plain JSON
 * values, megabytes at times) as the very rows written.
 */
function withWritten (row: StatementHandleRow, written: Partial<Pick<StatementHandleRow, 'admitted' | 'error' | 'manifest' | 'firstPage' | 'trip'>>): StatementHandleRow {
  const out = row as unknown as Record<string, unknown>
  for (const key of ['admitted', 'error', 'manifest', 'trip'] as const) {
    const value = written[key]
    if (value !== undefined && value !== null) out[key] = JSON.parse(JSON.stringify(value))
  }
  if (written.firstPage !== undefined && written.firstPage !== null) out.firstPage = written.firstPage
  return row
}

export class StoreStatementHandles implements StatementHandleStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  // The writes return the row as stored, so the runner needs no read after them.
  async create (handle: NewStatementHandle, ttlSeconds: number, finished?: HandleOutcome): Promise<StatementHandleRow> {
    const state = finished?.state ?? (handle.heldRequest === undefined ? 'running' : 'held')
    const [raw] = await this.#store.query<Raw>(CREATE, [handle.id, handle.owner, handle.connection, handle.sql, state,
      ttlSeconds, handle.replica, handle.clientRequestId ?? null, handle.sessionKey ?? null, json(handle.admitted),
      json(finished?.error), json(finished?.manifest), json(finished?.firstPage), json(finished?.trip),
      handle.approvalId ?? null, handle.heldRequest === undefined ? null : Buffer.from(handle.heldRequest)])
    return withWritten(rowOf(raw!), { ...(handle.admitted !== undefined && { admitted: handle.admitted }), ...finished })
  }

  finishedCompanion (handle: NewStatementHandle, ttlSeconds: number, finished: HandleOutcome): { row: StatementHandleRow, companion: Companion } {
    const companion: Companion = {
      kind: FINISHED_HANDLES,
      row: {
        id: handle.id, owner: handle.owner, connection: handle.connection, sql: handle.sql, state: finished.state, ttl: ttlSeconds,
        replica: handle.replica, client_request_id: handle.clientRequestId ?? null, session_key: handle.sessionKey ?? null,
        admitted: handle.admitted ?? null, error: finished.error ?? null, manifest: finished.manifest ?? null,
        first_page: finished.firstPage ?? null, trip: finished.trip ?? null, approval_id: handle.approvalId ?? null
      }
    }
    // What CREATE's RETURNING would say, by this process's clock instead of the store's.
    const now = Date.now()
    const scalars: StatementHandleRow = {
      id: handle.id, owner: handle.owner, connection: handle.connection, sql: handle.sql, state: finished.state,
      createdAt: now, finishedAt: now, expiresAt: now + ttlSeconds * 1000, replica: handle.replica, heartbeatAt: now,
      ...(handle.clientRequestId !== undefined && { clientRequestId: handle.clientRequestId }),
      ...(handle.sessionKey !== undefined && { sessionKey: handle.sessionKey }),
      ...(handle.approvalId !== undefined && { approvalId: handle.approvalId })
    }
    return { row: withWritten(scalars, { ...(handle.admitted !== undefined && { admitted: handle.admitted }), ...finished }), companion }
  }

  async get (id: string, owner: string): Promise<StatementHandleRow | undefined> {
    const [raw] = await this.#store.query<Raw>(`select ${COLUMNS} from statement_handles where id = $1::uuid and owner = $2 and ${LIVE}`, [id, owner])
    return raw === undefined ? undefined : rowOf(raw)
  }

  async getAny (id: string): Promise<StatementHandleRow | undefined> {
    const [raw] = await this.#store.query<Raw>(`select ${COLUMNS} from statement_handles where id = $1::uuid and ${LIVE}`, [id])
    return raw === undefined ? undefined : rowOf(raw)
  }

  async finish (id: string, outcome: HandleOutcome, ttlSeconds: number): Promise<StatementHandleRow | undefined> {
    const [raw] = await this.#store.query<Raw>(FINISH, [id, outcome.state, ttlSeconds, json(outcome.error),
      json(outcome.manifest), json(outcome.firstPage), json(outcome.trip)])
    return raw === undefined ? undefined : withWritten(rowOf(raw), outcome)
  }

  async cancel (id: string, owner: string, reason: CancelReason): Promise<boolean> {
    return (await this.#store.query(CANCEL, [id, owner, reason])).length > 0
  }

  async failIfStale (id: string, staleSeconds: number, error: StoredError, ttlSeconds: number): Promise<boolean> {
    return (await this.#store.query(FAIL_STALE, [id, staleSeconds, json(error), ttlSeconds])).length > 0
  }

  async heartbeat (ids: string[], ttlSeconds: number): Promise<HeartbeatAnswer[]> {
    if (ids.length === 0) return []
    const rows = await this.#store.query<Raw>(HEARTBEAT, [ids, ttlSeconds])
    return rows.map((r) => rowOf(r) as unknown as HeartbeatAnswer)
  }

  async runningByRequest (owner: string, requestId: string): Promise<StatementHandleRow[]> {
    const rows = await this.#store.query<Raw>(`select ${COLUMNS} from statement_handles
      where owner = $1 and client_request_id = $2 and state in ('running', 'held') and ${LIVE}`, [owner, requestId])
    return rows.map(rowOf)
  }

  async runningInSession (owner: string, sessionKey: string): Promise<StatementHandleRow[]> {
    const rows = await this.#store.query<Raw>(`select ${COLUMNS} from statement_handles
      where owner = $1 and session_key = $2 and state = 'running' and ${LIVE}`, [owner, sessionKey])
    return rows.map(rowOf)
  }

  async release (id: string, replica: string, ttlSeconds: number, admitted?: unknown): Promise<boolean> {
    return (await this.#store.query(RELEASE, [id, replica, ttlSeconds, json(admitted)])).length > 0
  }

  async endHeld (id: string, outcome: { state: 'failed', error: StoredError } | { state: 'aborted', cancelReason: CancelReason }, ttlSeconds: number): Promise<boolean> {
    const error = outcome.state === 'failed' ? json(outcome.error) : null
    const reason = outcome.state === 'aborted' ? outcome.cancelReason : null
    return (await this.#store.query(END_HELD, [id, outcome.state, error, reason, ttlSeconds])).length > 0
  }

  async releasedFor (approvalId: string, owner: string): Promise<StatementHandleRow | undefined> {
    const [raw] = await this.#store.query<Raw>(`select ${COLUMNS} from statement_handles
      where approval_id = $1::uuid and owner = $2 and state <> 'held' and ${LIVE} order by created_at limit 1`, [approvalId, owner])
    return raw === undefined ? undefined : rowOf(raw)
  }

  async purgeExpired (limit: number): Promise<number> {
    const rows = await this.#store.query<{ n: string }>(`with gone as (${PURGE_HANDLES} returning 1) select count(*) as n from gone`, [limit])
    return Number(rows[0]?.n ?? 0)
  }
}
