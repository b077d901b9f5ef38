// Connector sessions (snowflake-sdk, the Python connector) as records in the store
// (migrations/0005_connector_sessions.sql), behind a port, so a client that logged in on one
// replica is answered by any other: every lookup reads the row, a renewal or logout on one
// replica is seen by the next request anywhere. One SQL implementation runs on both store
// engines. Expiry is part of every lookup (`expires_at > now()`, the database's clock, one for
// all replicas); the purge is a bounded, indexed claim-and-delete of the oldest expired rows.
import type { Principal } from '../identity/principal.js'
import type { Store } from '../store/store.js'

/** The upstream session a connector session runs its statements on. */
export interface StoredUpstream {
  /** USE context it was opened with (database, schema, warehouse, role). */
  context: Record<string, string>
  sessionId?: number | string
  parameters: Array<{ name: string, value: unknown }>
  serverVersion?: string
  /** Its session and master tokens, sealed (src/state/sealed.ts): never in clear in the store. */
  sealed: Uint8Array
  /** Bumped by each renewal or re-login, so a replica holding older tokens can tell. */
  version: number
}

export interface ConnectorSessionRecord {
  id: number
  /** Digests of Sluice's own session and master tokens; the tokens themselves are never stored. */
  tokenHash: string
  masterHash: string
  principal: Principal
  /** The connection by name: each replica resolves it to its own settings and upstream client. */
  connection: string
  application?: string
  /** The client's result formats (opaque JSON to the store). */
  formats?: unknown
  upstream: StoredUpstream
}

export interface StoredConnectorSession extends ConnectorSessionRecord {
  tokenExpiresAt: Date
  /** The master token's end, and the row's: past it the session is gone. */
  expiresAt: Date
  /** Whether the session token is still live (by the database's clock); if not, it can be renewed. */
  tokenLive: boolean
  /** Whole seconds each token has left, by the database's clock (what the client is told). */
  tokenSecondsLeft: number
  masterSecondsLeft: number
}

export interface ConnectorSessionStore {
  /** Stores a new session; its session token lives `tokenSeconds`, its master `masterSeconds`. */
  create: (record: ConnectorSessionRecord, tokenSeconds: number, masterSeconds: number) => Promise<StoredConnectorSession>
  /** The unexpired session whose session token has this digest (its token may have run out). */
  byToken: (tokenHash: string) => Promise<StoredConnectorSession | undefined>
  /**
   * token-request RENEW: gives the live session of this master digest a new session token,
   * living `tokenSeconds` but never past the master's end. The old token stops working at once.
   */
  renew: (masterHash: string, tokenHash: string, tokenSeconds: number) => Promise<StoredConnectorSession | undefined>
  /** The stored upstream session (after another replica may have renewed it). */
  upstream: (id: number) => Promise<StoredUpstream | undefined>
  /**
   * Claims the renewal of the upstream session at version `expected` for `leaseSeconds`, so
   * replicas that all saw its token expire do not all renew it: true for the one that may.
   * A lease left by a replica that died runs out by itself.
   */
  claimRefresh: (id: number, expected: number, leaseSeconds: number) => Promise<boolean>
  /** Gives a claim back without new tokens (the renewal failed): the next replica may try. */
  releaseRefresh: (id: number, expected: number) => Promise<void>
  /**
   * Replaces the upstream session's tokens and details if its version is still `expected`
   * (and ends any renewal claim); the new version, or undefined when another replica stored
   * first (or the session is gone).
   */
  saveUpstream: (id: number, expected: number, upstream: Omit<StoredUpstream, 'version'>) => Promise<number | undefined>
  /** Deletes the session (logout); the deleted record, whose upstream session is the caller's to close. */
  delete: (id: number) => Promise<ConnectorSessionRecord | undefined>
  /**
   * Deletes up to `limit` expired sessions, oldest first, and returns them: whoever claimed a
   * row closes its upstream session; replicas purging at once never claim the same row twice.
   */
  claimExpired: (limit: number) => Promise<ConnectorSessionRecord[]>
}

interface Row {
  id: string
  tokenHash: string
  masterHash: string
  principal: Record<string, unknown>
  connection: string
  application: string | null
  formats: unknown
  context: Record<string, string>
  upstreamSessionId: number | string | null
  parameters: Array<{ name: string, value: unknown }>
  serverVersion: string | null
  sealed: Uint8Array
  version: number
  tokenExpiresAt: Date
  expiresAt: Date
  tokenLive: boolean
  tokenSecondsLeft: number
  masterSecondsLeft: number
}

const RECORD = `id::text as id, token_hash as "tokenHash", master_hash as "masterHash", principal, connection,
  application, formats, upstream_context as context, upstream_session_id as "upstreamSessionId",
  upstream_parameters as parameters, upstream_server_version as "serverVersion", upstream_sealed as sealed,
  upstream_version as version, token_expires_at as "tokenExpiresAt", expires_at as "expiresAt",
  token_expires_at > now() as "tokenLive",
  greatest(0, floor(extract(epoch from token_expires_at - now())))::int as "tokenSecondsLeft",
  greatest(0, floor(extract(epoch from expires_at - now())))::int as "masterSecondsLeft"`

const UPSTREAM = `upstream_context as context, upstream_session_id as "upstreamSessionId", upstream_parameters as parameters,
  upstream_server_version as "serverVersion", upstream_sealed as sealed, upstream_version as version`

const CREATE = `insert into connector_sessions (id, token_hash, master_hash, token_expires_at, expires_at, principal,
    connection, application, formats, upstream_context, upstream_session_id, upstream_parameters,
    upstream_server_version, upstream_sealed)
  values ($1::bigint, $2, $3, now() + make_interval(secs => $4::float8), now() + make_interval(secs => $5::float8),
    $6::text::jsonb, $7, $8, $9::text::jsonb, $10::text::jsonb, $11::text::jsonb, $12::text::jsonb, $13, $14)
  returning ${RECORD}`

const BY_TOKEN = `select ${RECORD} from connector_sessions where token_hash = $1 and expires_at > now()`

const RENEW = `update connector_sessions
  set token_hash = $2, token_expires_at = least(now() + make_interval(secs => $3::float8), expires_at)
  where master_hash = $1 and expires_at > now()
  returning ${RECORD}`

const SAVE_UPSTREAM = `update connector_sessions
  set upstream_session_id = $3::text::jsonb, upstream_parameters = $4::text::jsonb, upstream_server_version = $5,
    upstream_sealed = $6, upstream_version = upstream_version + 1, upstream_refresh_until = null
  where id = $1::bigint and upstream_version = $2 and expires_at > now()
  returning upstream_version as version`

const CLAIM_REFRESH = `update connector_sessions set upstream_refresh_until = now() + make_interval(secs => $3::float8)
  where id = $1::bigint and upstream_version = $2 and expires_at > now()
    and (upstream_refresh_until is null or upstream_refresh_until <= now())
  returning id`

/** Exported for the test that shows it is served by the expiry index. */
export const CLAIM_EXPIRED = `delete from connector_sessions where id in (
  select id from connector_sessions where expires_at <= now() order by expires_at limit $1 for update skip locked)
  returning ${RECORD}`

const json = (value: unknown): string | null => value === undefined ? null : JSON.stringify(value)

function upstreamOf (row: Pick<Row, 'context' | 'upstreamSessionId' | 'parameters' | 'serverVersion' | 'sealed' | 'version'>): StoredUpstream {
  const upstream: StoredUpstream = { context: row.context, parameters: row.parameters, sealed: row.sealed, version: Number(row.version) }
  if (row.upstreamSessionId !== null) upstream.sessionId = row.upstreamSessionId
  if (row.serverVersion !== null) upstream.serverVersion = row.serverVersion
  return upstream
}

function sessionOf (row: Row): StoredConnectorSession {
  // JSON has no dates: the principal's expiry comes back as ISO text.
  const principal = { ...row.principal, expiresAt: new Date(String(row.principal.expiresAt)) } as unknown as Principal
  const session: StoredConnectorSession = {
    id: Number(row.id),
    tokenHash: row.tokenHash,
    masterHash: row.masterHash,
    principal,
    connection: row.connection,
    upstream: upstreamOf(row),
    tokenExpiresAt: row.tokenExpiresAt,
    expiresAt: row.expiresAt,
    tokenLive: row.tokenLive,
    tokenSecondsLeft: Number(row.tokenSecondsLeft),
    masterSecondsLeft: Number(row.masterSecondsLeft)
  }
  if (row.application !== null) session.application = row.application
  if (row.formats !== null) session.formats = row.formats
  return session
}

export class StoreConnectorSessions implements ConnectorSessionStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  async create (record: ConnectorSessionRecord, tokenSeconds: number, masterSeconds: number): Promise<StoredConnectorSession> {
    const u = record.upstream
    const [row] = await this.#store.query<Row>(CREATE, [String(record.id), record.tokenHash, record.masterHash, tokenSeconds, masterSeconds,
      JSON.stringify(record.principal), record.connection, record.application ?? null, json(record.formats),
      JSON.stringify(u.context), json(u.sessionId), JSON.stringify(u.parameters), u.serverVersion ?? null, Buffer.from(u.sealed)])
    return sessionOf(row as Row)
  }

  async byToken (tokenHash: string): Promise<StoredConnectorSession | undefined> {
    const [row] = await this.#store.query<Row>(BY_TOKEN, [tokenHash])
    return row === undefined ? undefined : sessionOf(row)
  }

  async renew (masterHash: string, tokenHash: string, tokenSeconds: number): Promise<StoredConnectorSession | undefined> {
    const [row] = await this.#store.query<Row>(RENEW, [masterHash, tokenHash, tokenSeconds])
    return row === undefined ? undefined : sessionOf(row)
  }

  async upstream (id: number): Promise<StoredUpstream | undefined> {
    const [row] = await this.#store.query<Row>(`select ${UPSTREAM} from connector_sessions where id = $1::bigint and expires_at > now()`, [String(id)])
    return row === undefined ? undefined : upstreamOf(row)
  }

  async claimRefresh (id: number, expected: number, leaseSeconds: number): Promise<boolean> {
    return (await this.#store.query(CLAIM_REFRESH, [String(id), expected, leaseSeconds])).length === 1
  }

  async releaseRefresh (id: number, expected: number): Promise<void> {
    await this.#store.query('update connector_sessions set upstream_refresh_until = null where id = $1::bigint and upstream_version = $2',
      [String(id), expected])
  }

  async saveUpstream (id: number, expected: number, u: Omit<StoredUpstream, 'version'>): Promise<number | undefined> {
    const [row] = await this.#store.query<{ version: number }>(SAVE_UPSTREAM, [String(id), expected,
      json(u.sessionId), JSON.stringify(u.parameters), u.serverVersion ?? null, Buffer.from(u.sealed)])
    return row === undefined ? undefined : Number(row.version)
  }

  async delete (id: number): Promise<ConnectorSessionRecord | undefined> {
    const [row] = await this.#store.query<Row>(`delete from connector_sessions where id = $1::bigint returning ${RECORD}`, [String(id)])
    return row === undefined ? undefined : sessionOf(row)
  }

  async claimExpired (limit: number): Promise<ConnectorSessionRecord[]> {
    return (await this.#store.query<Row>(CLAIM_EXPIRED, [limit])).map(sessionOf)
  }
}
