// The recorded event as one table of columns: the batched INSERT, the SELECT every reader
// uses (verify, export, admin API) and the hashed content are all generated from it, so a
// column can never be written one way and hashed or read another.
import type { DigestField } from './chain.js'

export interface AuditEvent {
  chain: string
  seq: number
  sessionId: string | null
  /** UTC, µs: `2026-11-21T07:35:23.123456Z`. */
  occurredAt: string
  requestId: string
  principalSubject: string | null
  principalIssuer: string | null
  principalType: string | null
  groups: string[] | null
  roles: string[] | null
  clientId: string | null
  delegation: unknown
  connection: string | null
  frontEnd: string
  route: string | null
  method: string | null
  statusCode: number | null
  outcome: string
  errorCode: string | null
  durationMs: number | null
  sourceIp: string | null
  userAgent: string | null
  sqlText: string | null
  sqlFingerprint: string | null
  bindParams: unknown
  analysis: unknown
  statementKinds: string[] | null
  tables: string[] | null
  decision: string | null
  ruleId: string | null
  reason: string | null
  policyVersion: string | null
  approvalId: string | null
  approver: string | null
  masking: unknown
  maskedColumns: string[] | null
  upstreamId: string | null
  rowsReturned: number | null
  bytesReturned: number | null
  /** hex of sha256(resultCapture) */
  resultDigest: string | null
  resultTruncated: boolean
  /** The admitted statement this event belongs to (its admitted event and completions share it). */
  statementId?: string | null
  /** `admitted` before the warehouse is called, `completed` before the result is released. */
  phase?: 'admitted' | 'completed' | null
}

/** An event as the writer hands it to the store, chain fields filled in. */
export interface ChainedEvent extends AuditEvent {
  prevHash: Buffer
  eventDigest: Buffer
  hash: Buffer
  resultCapture: Buffer | null
  /** tsvector literal of the SQL for full-text search; derived, so not hashed. */
  sqlSearch: string | null
}

/** An event as read back: hex for binary columns, the store's id. */
export interface StoredEvent extends AuditEvent {
  id: string
  prevHash: string | null
  eventDigest: string | null
  hash: string | null
  purgedAt: string | null
  hasResult: boolean
  /** sha256 of the stored capture as it is now (hex), to compare with resultDigest. */
  captureDigest: string | null
}

type Kind = 'text' | 'uuid' | 'int' | 'bigint' | 'float' | 'bool' | 'json' | 'texts' | 'hex' | 'time' | 'tsv'

// [property, column, kind]. Order is irrelevant to the hash (DIGEST_FIELDS fixes that).
export const COLUMNS: ReadonlyArray<readonly [keyof ChainedEvent & string, string, Kind]> = [
  ['chain', 'chain', 'text'], ['seq', 'seq', 'bigint'], ['sessionId', 'session_id', 'uuid'],
  ['occurredAt', 'occurred_at', 'time'], ['requestId', 'request_id', 'text'],
  ['principalSubject', 'principal_subject', 'text'], ['principalIssuer', 'principal_issuer', 'text'],
  ['principalType', 'principal_type', 'text'], ['groups', 'groups', 'texts'], ['roles', 'roles', 'texts'],
  ['clientId', 'client_id', 'text'], ['delegation', 'delegation', 'json'], ['connection', 'connection', 'text'],
  ['frontEnd', 'front_end', 'text'], ['route', 'route', 'text'], ['method', 'method', 'text'],
  ['statusCode', 'status_code', 'int'], ['outcome', 'outcome', 'text'], ['errorCode', 'error_code', 'text'],
  ['durationMs', 'duration_ms', 'float'], ['sourceIp', 'source_ip', 'text'], ['userAgent', 'user_agent', 'text'],
  ['sqlText', 'sql_text', 'text'], ['sqlFingerprint', 'sql_fingerprint', 'text'], ['bindParams', 'bind_params', 'json'],
  ['analysis', 'analysis', 'json'], ['statementKinds', 'statement_kinds', 'texts'], ['tables', 'tables', 'texts'],
  ['decision', 'decision', 'text'], ['ruleId', 'rule_id', 'text'], ['reason', 'reason', 'text'],
  ['policyVersion', 'policy_version', 'text'], ['approvalId', 'approval_id', 'text'], ['approver', 'approver', 'text'],
  ['masking', 'masking', 'json'], ['maskedColumns', 'masked_columns', 'texts'], ['upstreamId', 'upstream_id', 'text'],
  ['rowsReturned', 'rows_returned', 'bigint'], ['bytesReturned', 'bytes_returned', 'bigint'],
  ['resultDigest', 'result_digest', 'hex'], ['resultTruncated', 'result_truncated', 'bool'],
  ['prevHash', 'prev_hash', 'hex'], ['eventDigest', 'event_digest', 'hex'], ['hash', 'hash', 'hex'],
  ['resultCapture', 'result_capture', 'hex'], ['sqlSearch', 'sql_search', 'tsv'],
  ['statementId', 'statement_id', 'text'], ['phase', 'phase', 'text']
]

const RECORDSET_TYPE: Record<Kind, string> = {
  text: 'text', uuid: 'uuid', int: 'integer', bigint: 'bigint', float: 'double precision', bool: 'boolean',
  json: 'jsonb', texts: 'text[]', hex: 'text', time: 'text', tsv: 'text'
}

// Column i travels under the key `c<i>`: with 47 columns, spelling out their names in every
// row would be a quarter of what is sent and parsed for each event.
const KEYS = COLUMNS.map((_, i) => `c${i}`)

function valueExpr (key: string, kind: Kind): string {
  if (kind === 'hex') return `decode(r.${key}, 'base64')`
  if (kind === 'time') return `r.${key}::timestamptz`
  if (kind === 'tsv') return `r.${key}::tsvector`
  return `r.${key}`
}

/**
 * One statement per batch: the events travel as one JSON array (a single parameter, whatever
 * the batch size — no 65535-parameter ceiling, one parse) and are inserted in batch order.
 * `json`, not `jsonb`: each row is read once, so building the binary form first only costs.
 */
export const INSERT_BATCH = (() => {
  const defs = COLUMNS.map(([, , kind], i) => `${KEYS[i] as string} ${RECORDSET_TYPE[kind]}`)
  const columns = COLUMNS.map(([, column]) => column)
  const values = COLUMNS.map(([, , kind], i) => valueExpr(KEYS[i] as string, kind))
  return `insert into session_events (${columns.join(', ')})
select ${values.join(', ')} from json_to_recordset($1::text::json) as r(ord integer, ${defs.join(', ')}) order by r.ord`
})()

/** The JSON object for one event in INSERT_BATCH's array. */
export function toBatchRow (event: ChainedEvent, ord: number): Record<string, unknown> {
  const row: Record<string, unknown> = { ord }
  for (let i = 0; i < COLUMNS.length; i++) {
    const [key, , kind] = COLUMNS[i] as (typeof COLUMNS)[number]
    const value = event[key]
    // Binary travels as base64 (a third larger, not twice like hex); the digest uses hex.
    row[KEYS[i] as string] = kind !== 'hex' || value === null || value === undefined
      ? value ?? null
      : (typeof value === 'string' ? Buffer.from(value, 'hex') : Buffer.from(value as Uint8Array)).toString('base64')
  }
  return row
}

function readExpr (column: string, kind: Kind, alias: string): string {
  if (kind === 'hex') return `encode(e.${column}, 'hex') as "${alias}"`
  if (kind === 'time') return `to_char(e.${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "${alias}"`
  // bigint arrives as a string on both engines; as float8 it is a number again, exact far
  // beyond any row, byte or sequence count, so a read event hashes like the written one.
  if (kind === 'bigint') return `e.${column}::float8 as "${alias}"`
  return `e.${column} as "${alias}"`
}

/** SELECT list for `from session_events e`; the capture itself is left out (see hasResult). */
export const EVENT_FIELDS = [
  'e.id::text as id',
  ...COLUMNS.filter(([key]) => key !== 'resultCapture' && key !== 'sqlSearch').map(([key, column, kind]) => readExpr(column, kind, key)),
  `to_char(e.purged_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "purgedAt"`,
  '(e.result_capture is not null) as "hasResult"',
  `encode(sha256(e.result_capture), 'hex') as "captureDigest"`
].join(', ')

/** The hashed content of a stored event, normalised exactly like the writer's. */
export function digestInput (event: AuditEvent): Record<DigestField, unknown> {
  return event as unknown as Record<DigestField, unknown>
}
