// Search over sessions and events for the admin API. Keyset pagination only: a page ends with
// an opaque cursor (the sort key of its last row) and the next page starts strictly after it,
// so page 10,000 costs what page 1 costs, and nothing ever counts the whole table.
import { ERR_BAD_REQUEST } from '../errors.js'
import type { Store } from '../store/store.js'
import { decompressCapture, type CapturedResult } from './capture.js'
import { EVENT_FIELDS, type StoredEvent } from './event.js'
import { eventCursor, normaliseEventFilter, normaliseSessionFilter, sessionCursor } from './filters.js'
import { searchQuery } from './fulltext.js'
import { INCOMPLETE_CONDITION } from './incomplete.js'

export interface EventFilter {
  principal?: string
  /** The agent: client id, or any subject / client id in the delegation chain. */
  agent?: string
  connection?: string
  since?: string
  until?: string
  decision?: string
  rule?: string
  /** `db.schema.table`, or a trailing part of it (`orders`, `public.orders`). */
  table?: string
  maskedColumn?: string
  outcome?: string
  frontEnd?: string
  sessionId?: string
  requestId?: string
  /** Every event of one held statement: held, decided, admitted, completed. */
  approvalId?: string
  fingerprint?: string
  /** Full-text search of the SQL (web search syntax: words, "phrases", -exclusions, or). */
  q?: string
  /** Only admitted events no completion followed (a crash, or a result withheld). */
  incomplete?: boolean
}

export interface SessionFilter {
  principal?: string
  agent?: string
  connection?: string
  frontEnd?: string
  since?: string
  until?: string
}

export interface Page<T> { items: T[], nextCursor: string | null }

export const DEFAULT_PAGE = 50
export const MAX_PAGE = 500

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Collects WHERE conditions with their bound parameters; values are never interpolated. */
class Where {
  readonly conditions: string[] = []
  readonly params: unknown[] = []

  bind (value: unknown): string {
    this.params.push(value)
    return `$${this.params.length}`
  }

  add (condition: (bind: (v: unknown) => string) => string): void {
    this.conditions.push(condition((v) => this.bind(v)))
  }

  sql (): string {
    return this.conditions.length === 0 ? '' : `where ${this.conditions.join(' and ')}`
  }
}

export function encodeCursor (key: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

export function decodeCursor (cursor: string | undefined): Record<string, string> | undefined {
  if (cursor === undefined || cursor === '') return undefined
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]))
    }
  } catch {}
  throw new ERR_BAD_REQUEST('cursor is not one this API issued')
}

function limitOf (limit: number | undefined, max = MAX_PAGE): number {
  return Math.min(Math.max(Math.trunc(limit ?? DEFAULT_PAGE), 1), max)
}

function agentCondition (column: string, b: (v: unknown) => string, agent: string): string {
  const p = b(agent)
  return `(${column}.client_id = ${p} or ${column}.delegation @> jsonb_build_array(jsonb_build_object('subject', ${p}::text))
    or ${column}.delegation @> jsonb_build_array(jsonb_build_object('clientId', ${p}::text)))`
}

function eventWhere (filter: EventFilter): Where {
  // Checked and normalised before any of it is bound (filters.ts): no value may fail in SQL.
  const f = normaliseEventFilter(filter)
  const w = new Where()
  if (f.principal !== undefined) w.add((b) => `e.principal_subject = ${b(f.principal)}`)
  if (f.agent !== undefined) w.add((b) => agentCondition('e', b, f.agent as string))
  if (f.connection !== undefined) w.add((b) => `e.connection = ${b(f.connection)}`)
  if (f.since !== undefined) w.add((b) => `e.occurred_at >= ${b(f.since)}::text::timestamptz`)
  if (f.until !== undefined) w.add((b) => `e.occurred_at < ${b(f.until)}::text::timestamptz`)
  if (f.decision !== undefined) w.add((b) => `e.decision = ${b(f.decision)}`)
  if (f.rule !== undefined) w.add((b) => `e.rule_id = ${b(f.rule)}`)
  if (f.table !== undefined) {
    const table = f.table.toLowerCase()
    w.add((b) => {
      const p = b(table)
      return `(e.tables @> array[${p}::text] or exists (select 1 from unnest(e.tables) t where right(t, length(${p}) + 1) = '.' || ${p}))`
    })
  }
  if (f.maskedColumn !== undefined) w.add((b) => `e.masked_columns @> array[${b(f.maskedColumn)}::text]`)
  if (f.outcome !== undefined) w.add((b) => `e.outcome = ${b(f.outcome)}`)
  if (f.frontEnd !== undefined) w.add((b) => `e.front_end = ${b(f.frontEnd)}`)
  if (f.sessionId !== undefined) w.add((b) => `e.session_id = ${b(f.sessionId)}::uuid`)
  if (f.requestId !== undefined) w.add((b) => `e.request_id = ${b(f.requestId)}`)
  if (f.approvalId !== undefined) w.add((b) => `e.approval_id = ${b(f.approvalId)}`)
  if (f.fingerprint !== undefined) w.add((b) => `e.sql_fingerprint = ${b(f.fingerprint)}`)
  if (f.incomplete === true) w.add(() => `(${INCOMPLETE_CONDITION})`)
  if (f.q !== undefined) {
    // Tokenized like the stored vector (fulltext.ts); a query with no words matches nothing.
    const query = searchQuery(f.q)
    w.add((b) => (query === null ? 'false' : `e.sql_search @@ ${b(query)}::tsquery`))
  }
  return w
}

/** Newest first. */
export async function searchEvents (store: Store, filter: EventFilter, cursor?: string, limit?: number): Promise<Page<StoredEvent>> {
  const n = limitOf(limit)
  const w = eventWhere(filter)
  const after = eventCursor(decodeCursor(cursor))
  if (after !== undefined) w.add((b) => `e.id < ${b(after.id)}::bigint`)
  const rows = await store.query<StoredEvent>(
    `select ${EVENT_FIELDS} from session_events e ${w.sql()} order by e.id desc limit ${n + 1}`, w.params)
  const items = rows.slice(0, n)
  const last = items[items.length - 1]
  return { items, nextCursor: rows.length > n && last !== undefined ? encodeCursor({ id: last.id }) : null }
}

export interface SessionSummary {
  id: string
  principalSubject: string
  principalIssuer: string
  principalType: string
  groups: string[]
  roles: string[]
  clientId: string | null
  delegation: unknown
  connection: string | null
  frontEnd: string
  sourceIp: string | null
  userAgent: string | null
  startedAt: string
  lastSeenAt: string
  eventCount: number
}

const US = (column: string): string => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** Most recently started first. */
export async function searchSessions (store: Store, unchecked: SessionFilter, cursor?: string, limit?: number): Promise<Page<SessionSummary>> {
  const n = limitOf(limit)
  const filter = normaliseSessionFilter(unchecked)
  const w = new Where()
  if (filter.principal !== undefined) w.add((b) => `s.principal_subject = ${b(filter.principal)}`)
  if (filter.agent !== undefined) w.add((b) => agentCondition('s', b, filter.agent as string))
  if (filter.connection !== undefined) w.add((b) => `s.connection = ${b(filter.connection)}`)
  if (filter.frontEnd !== undefined) w.add((b) => `s.front_end = ${b(filter.frontEnd)}`)
  // Sessions that were active at some point in [since, until).
  if (filter.since !== undefined) w.add((b) => `s.last_seen_at >= ${b(filter.since)}::text::timestamptz`)
  if (filter.until !== undefined) w.add((b) => `s.started_at < ${b(filter.until)}::text::timestamptz`)
  const after = sessionCursor(decodeCursor(cursor))
  if (after !== undefined) {
    w.add((b) => `(s.started_at, s.id) < (${b(after.t)}::text::timestamptz, ${b(after.id)}::uuid)`)
  }
  const rows = await store.query<SessionSummary>(
    `select s.id, s.principal_subject as "principalSubject", s.principal_issuer as "principalIssuer",
       s.principal_type as "principalType", s.groups, s.roles, s.client_id as "clientId", s.delegation,
       s.connection, s.front_end as "frontEnd", s.source_ip as "sourceIp", s.user_agent as "userAgent",
       ${US('s.started_at')} as "startedAt", ${US('s.last_seen_at')} as "lastSeenAt", s.event_count::float8 as "eventCount"
     from sessions s ${w.sql()} order by s.started_at desc, s.id desc limit ${n + 1}`, w.params)
  const items = rows.slice(0, n)
  const last = items[items.length - 1]
  return { items, nextCursor: rows.length > n && last !== undefined ? encodeCursor({ t: last.startedAt, id: last.id }) : null }
}

export type TimelineEvent = StoredEvent & { result: CapturedResult | null }

/** A session's events in the order they happened, with their captured results. */
export async function sessionTimeline (store: Store, sessionId: string, cursor?: string, limit?: number): Promise<Page<TimelineEvent>> {
  if (!UUID.test(sessionId)) throw new ERR_BAD_REQUEST('session id must be a UUID')
  // Captures are up to resultCaptureBytes each: a smaller page ceiling keeps responses sane.
  const n = limitOf(limit, 100)
  const after = eventCursor(decodeCursor(cursor))
  const rows = await store.query<StoredEvent & { capture: Uint8Array | null }>(
    `select ${EVENT_FIELDS}, e.result_capture as capture from session_events e
     where e.session_id = $1::uuid and e.id > $2::bigint order by e.id limit ${n + 1}`, [sessionId, after?.id ?? '0'])
  const items = await Promise.all(rows.slice(0, n).map(async ({ capture, ...e }) => ({ ...e, result: await decompressCapture(capture) })))
  const last = items[items.length - 1]
  return { items, nextCursor: rows.length > n && last !== undefined ? encodeCursor({ id: last.id }) : null }
}

export async function getEvent (store: Store, id: string): Promise<TimelineEvent | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined
  const rows = await store.query<StoredEvent & { capture: Uint8Array | null }>(
    `select ${EVENT_FIELDS}, e.result_capture as capture from session_events e where e.id = $1::bigint`, [id])
  const row = rows[0]
  if (row === undefined) return undefined
  const { capture, ...e } = row
  return { ...e, result: await decompressCapture(capture) }
}
