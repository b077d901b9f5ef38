// Sessions and session events as rows: the store-facing half of recording. Every value is a
// bound parameter; the only SQL text built here comes from the fixed column table below.
import { randomUUID } from 'node:crypto'
import { ERR_FORBIDDEN } from '../errors.js'
import type { Principal } from '../identity/principal.js'
import type { Store } from '../store/store.js'

export type EventOutcome = 'ok' | 'denied' | 'error' | 'unauthenticated' | 'held' | 'admitted'
export type EventDecision = 'allow' | 'deny' | 'require_approval'

export interface OpenSessionInput {
  /** Stable per client session, e.g. a hash of the token and the front end; never the token. */
  sessionKey: string
  principal: Principal
  connection?: string
  frontEnd: string
  sourceIp?: string
  userAgent?: string
}

/** One round trip. Fields after `userAgent` belong to statement recording and may be absent. */
export interface SessionEventInput {
  /** Absent when the round trip failed before a session existed (e.g. authentication). */
  sessionId?: string | null
  /** Default: the database clock. A string keeps microseconds (ISO 8601 with offset). */
  occurredAt?: Date | string
  requestId: string
  principalSubject?: string | null
  connection?: string | null
  frontEnd: string
  route?: string | null
  method?: string | null
  statusCode?: number | null
  outcome: EventOutcome
  errorCode?: string | null
  durationMs?: number | null
  sourceIp?: string | null
  userAgent?: string | null
  sqlText?: string | null
  sqlFingerprint?: string | null
  bindParams?: unknown
  analysis?: unknown
  decision?: EventDecision | null
  ruleId?: string | null
  reason?: string | null
  policyVersion?: string | null
  approvalId?: string | null
  approver?: string | null
  masking?: unknown
  upstreamId?: string | null
  rowsReturned?: number | null
  bytesReturned?: number | null
  resultCapture?: Uint8Array | null
  resultTruncated?: boolean
  chain?: string | null
  prevHash?: Uint8Array | null
  hash?: Uint8Array | null
}

/** An event as stored: every column present, NULL as null. */
export type SessionEvent = {
  id: string
  /** UTC, microsecond precision: `2025-01-31T12:00:00.123456Z`. */
  occurredAt: string
  resultTruncated: boolean
} & {
  [K in Exclude<keyof SessionEventInput, 'occurredAt' | 'resultTruncated'>]-?:
  Exclude<SessionEventInput[K], undefined> | null
}

export interface SessionRecord {
  id: string
  sessionKey: string
  principalSubject: string
  principalIssuer: string
  principalType: 'human' | 'machine'
  groups: string[]
  roles: string[]
  clientId: string | null
  delegation: Principal['delegation']
  connection: string | null
  frontEnd: string
  sourceIp: string | null
  userAgent: string | null
  startedAt: Date
  lastSeenAt: Date
  eventCount: number
}

type EventKey = Exclude<keyof SessionEventInput, 'occurredAt' | 'resultTruncated'>
type Kind = 'text' | 'uuid' | 'int' | 'bigint' | 'float' | 'json' | 'bytes'

// property → [column, kind]. Drives the INSERT, the SELECT aliases and the casts at once.
const EVENT_COLUMNS: ReadonlyArray<[EventKey, string, Kind]> = [
  ['sessionId', 'session_id', 'uuid'],
  ['requestId', 'request_id', 'text'],
  ['principalSubject', 'principal_subject', 'text'],
  ['connection', 'connection', 'text'],
  ['frontEnd', 'front_end', 'text'],
  ['route', 'route', 'text'],
  ['method', 'method', 'text'],
  ['statusCode', 'status_code', 'int'],
  ['outcome', 'outcome', 'text'],
  ['errorCode', 'error_code', 'text'],
  ['durationMs', 'duration_ms', 'float'],
  ['sourceIp', 'source_ip', 'text'],
  ['userAgent', 'user_agent', 'text'],
  ['sqlText', 'sql_text', 'text'],
  ['sqlFingerprint', 'sql_fingerprint', 'text'],
  ['bindParams', 'bind_params', 'json'],
  ['analysis', 'analysis', 'json'],
  ['decision', 'decision', 'text'],
  ['ruleId', 'rule_id', 'text'],
  ['reason', 'reason', 'text'],
  ['policyVersion', 'policy_version', 'text'],
  ['approvalId', 'approval_id', 'text'],
  ['approver', 'approver', 'text'],
  ['masking', 'masking', 'json'],
  ['upstreamId', 'upstream_id', 'text'],
  ['rowsReturned', 'rows_returned', 'bigint'],
  ['bytesReturned', 'bytes_returned', 'bigint'],
  ['resultCapture', 'result_capture', 'bytes'],
  ['chain', 'chain', 'text'],
  ['prevHash', 'prev_hash', 'bytes'],
  ['hash', 'hash', 'bytes']
]

// JSON travels as text and is cast in SQL: bound straight to jsonb, postgres.js would encode
// a string a second time, and the two engines would store different things.
const CAST: Record<Kind, string> = {
  text: 'text', uuid: 'uuid', int: 'integer', bigint: 'bigint', float: 'double precision', json: 'text::jsonb', bytes: 'bytea'
}

const INSERT_EVENT = (() => {
  const columns = ['occurred_at', 'result_truncated', ...EVENT_COLUMNS.map(([, column]) => column)]
  // Through text, like JSON: postgres.js sends a timestamptz parameter via Date, dropping µs.
  const values = ['coalesce($1::text::timestamptz, clock_timestamp())', '$2::boolean',
    ...EVENT_COLUMNS.map(([, , kind], i) => `$${i + 3}::${CAST[kind]}`)]
  return `insert into session_events (${columns.join(', ')}) values (${values.join(', ')}) returning id`
})()

const SELECT_EVENT = (() => {
  // bigint counters come back as numbers here (exact far beyond any row or byte count), so
  // a read event has the same types as the input that wrote it.
  const read = (column: string, kind: Kind): string => (kind === 'bigint' ? `${column}::float8` : column)
  const fields = [
    'id',
    `to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "occurredAt"`,
    'result_truncated as "resultTruncated"',
    ...EVENT_COLUMNS.map(([key, column, kind]) => `${read(column, kind)} as "${key}"`)
  ]
  return `select ${fields.join(', ')} from session_events`
})()

const UPSERT_SESSION = `
insert into sessions (id, session_key, principal_subject, principal_issuer, principal_type, groups, roles,
  client_id, delegation, connection, front_end, source_ip, user_agent, started_at, last_seen_at, event_count)
values ($1::uuid, $2, $3, $4, $5, $6::text[], $7::text[], $8, $9::text::jsonb, $10, $11, $12, $13, now(), now(), 1)
on conflict (session_key) do update
  set last_seen_at = now(), event_count = sessions.event_count + 1
  where sessions.principal_subject = excluded.principal_subject
    and sessions.principal_issuer = excluded.principal_issuer
returning id`

const SELECT_SESSION = `
select id, session_key as "sessionKey", principal_subject as "principalSubject",
  principal_issuer as "principalIssuer", principal_type as "principalType", groups, roles,
  client_id as "clientId", delegation, connection, front_end as "frontEnd", source_ip as "sourceIp",
  user_agent as "userAgent", started_at as "startedAt", last_seen_at as "lastSeenAt",
  event_count::float8 as "eventCount"
from sessions where id = $1::uuid`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DEFAULT_LIMIT = 100
const MAX_LIMIT = 1000

function json (value: unknown): string | null {
  if (value === undefined || value === null) return null
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
}

function param (value: unknown, kind: Kind): unknown {
  if (kind === 'json') return json(value)
  return value ?? null
}

export class SessionRecorder {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  /**
   * Finds the session by its key or starts it, and counts this round trip (last_seen_at,
   * event_count). One statement, so concurrent first requests of a session agree on one id.
   * A key held by another principal is refused: sessions belong to whoever started them.
   */
  async openOrContinue (input: OpenSessionInput): Promise<{ id: string, isNew: boolean }> {
    const candidate = randomUUID()
    const p = input.principal
    const rows = await this.#store.query<{ id: string }>(UPSERT_SESSION, [
      candidate, input.sessionKey, p.subject, p.issuer, p.type, p.groups, p.roles, p.clientId ?? null,
      json(p.delegation) ?? '[]', input.connection ?? null, input.frontEnd, input.sourceIp ?? null,
      input.userAgent ?? null
    ])
    const row = rows[0]
    if (row === undefined) throw new ERR_FORBIDDEN('this session belongs to another principal')
    return { id: row.id, isNew: row.id === candidate }
  }

  /**
   * Low level: one row, written as given and outside any hash chain (`sluice audit verify`
   * reports such rows as inserted). The gateway records through `Recording` (recorder.ts),
   * which batches and chains; this stays for tools and tests that need a raw row.
   */
  async writeEvent (event: SessionEventInput): Promise<{ id: string }> {
    const occurredAt = event.occurredAt instanceof Date ? event.occurredAt.toISOString() : event.occurredAt ?? null
    const params = [occurredAt, event.resultTruncated ?? false,
      ...EVENT_COLUMNS.map(([key, , kind]) => param(event[key], kind))]
    const rows = await this.#store.query<{ id: string | number }>(INSERT_EVENT, params)
    return { id: String(rows[0]?.id) }
  }

  /** Events in the order they were written, oldest first. */
  async listEvents (filter: { sessionId?: string, limit?: number } = {}): Promise<SessionEvent[]> {
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT)
    if (filter.sessionId === undefined) {
      return await this.#store.query<SessionEvent>(`${SELECT_EVENT} order by id limit $1`, [limit])
    }
    // Not a uuid, so no session: answer "none" rather than let the cast fail the request.
    if (!UUID.test(filter.sessionId)) return []
    return await this.#store.query<SessionEvent>(
      `${SELECT_EVENT} where session_id = $1::uuid order by id limit $2`, [filter.sessionId, limit])
  }

  async getSession (id: string): Promise<SessionRecord | undefined> {
    if (!UUID.test(id)) return undefined
    return (await this.#store.query<SessionRecord>(SELECT_SESSION, [id]))[0]
  }
}
