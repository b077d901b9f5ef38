// Turns what one round trip did (the pipeline's RoundTrip plus the HTTP facts) into the event
// the writer chains: fingerprint, redacted parameters, flattened analysis and masking for the
// indexed filters, the compressed capture and its digest. Protocol-free: front ends and the
// recording plugin describe a round trip, this decides what of it is kept.
import type { Principal } from '../identity/principal.js'
import type { RoundTrip } from '../pipeline.js'
import { compressCapture } from './capture.js'
import { isoMicros, sha256, storable } from './chain.js'
import { sqlFingerprint, type ParamRedactor } from './fingerprint.js'
import { sqlSearchVector } from './fulltext.js'
import { attachedTextFacts } from './text-facts.js'
import { isCatalogIntrospection } from '../sql/introspection.js'
import type { PendingEvent } from './writer.js'
import type { TraceRef } from '../tracing/spans.js'
import type { Companion } from '../store/companions.js'

export interface RoundTripFacts {
  requestId: string
  frontEnd: string
  principal?: Principal | null
  sessionId?: string | null
  connection?: string | null
  route?: string | null
  method?: string | null
  statusCode?: number | null
  outcome: string
  /** `admitted` / `completed` for the two events of an admitted statement. */
  phase?: 'admitted' | 'completed' | null
  errorCode?: string | null
  /** Overrides the decision's reason (e.g. why authentication failed). */
  reason?: string | null
  durationMs?: number | null
  /** When the round trip began, µs since the epoch. */
  startedAtMicros: number
  sourceIp?: string | null
  userAgent?: string | null
  bytesReturned?: number | null
  trip?: RoundTrip | null
  /**
   * The round trip's trace, when tracing is on. Kept in the `analysis` JSON column (hashed
   * with it, as every column is) rather than a column of its own: no migration, no change to
   * the digest's field list, so chains written before verify exactly as they did.
   */
  trace?: TraceRef | null
  /**
   * A tool protocol's call (MCP tools/call): the tool, the protocol session and the client as it
   * named itself, and the statements the call caused. Kept in the `analysis` JSON column, as the
   * trace is, for the same reason: no migration, no change to the digest's field list.
   */
  tool?: ToolCallRef | null
  /** Rows the event's statement commits with it (RoundTrip.companions); not part of the event. */
  companions?: readonly Companion[]
}

export interface ToolCallRef {
  name: string
  /** The protocol's own session id (MCP `Mcp-Session-Id`). */
  protocolSession?: string
  client?: { name?: string, version?: string }
  /** The admitted statements this call caused (their events carry the same statement ids). */
  statementIds?: string[]
  /** An approval the call waited on or reported. */
  approvalId?: string
  /**
   * A catalogue read (MCP list_schemas, list_tables, describe_table): which metadata it read, of
   * what. It reads the warehouse's catalogue only (information_schema, BigQuery dataset and table
   * listings), never rows, so it is recorded as introspection rather than as a statement.
   */
  introspection?: { reads: 'schemas' | 'tables' | 'columns', schema?: string, table?: string }
}

export interface BuildOptions {
  redact: ParamRedactor
}

// Agents repeat statements verbatim (retries, polling, generated code): remember recent ones.
const FINGERPRINTS = new Map<string, string>()
const FINGERPRINT_CACHE = 2000
const FINGERPRINT_MAX_SQL = 8192

function fingerprintOf (sql: string): string {
  const hit = FINGERPRINTS.get(sql)
  if (hit !== undefined) return hit
  const fp = sqlFingerprint(sql)
  if (sql.length <= FINGERPRINT_MAX_SQL) {
    if (FINGERPRINTS.size >= FINGERPRINT_CACHE) FINGERPRINTS.delete(FINGERPRINTS.keys().next().value as string)
    FINGERPRINTS.set(sql, fp)
  }
  return fp
}

function unique (values: Iterable<string>): string[] {
  return [...new Set(values)].sort()
}

export async function buildEvent (facts: RoundTripFacts, options: BuildOptions): Promise<PendingEvent> {
  const trip: RoundTrip = facts.trip ?? {}
  const p = facts.principal ?? null
  const statements = trip.analysis?.statements ?? []
  const tables = unique(statements.flatMap((s) => [...s.tablesRead, ...s.tablesWritten]))
  const kinds = unique(statements.map((s) => s.kind))
  const masking = trip.maskedColumns ?? []
  const capture = await compressCapture(trip.capture?.result())
  const hold = trip.hold
  // Computed off the event loop with the analysis when it was made of exactly this text.
  const text = trip.sql === undefined ? undefined : attachedTextFacts(trip.analysis, trip.sql)
  const event: PendingEvent = {
    sessionId: facts.sessionId ?? null,
    occurredAt: isoMicros(facts.startedAtMicros),
    requestId: facts.requestId,
    principalSubject: p?.subject ?? null,
    principalIssuer: p?.issuer ?? null,
    principalType: p?.type ?? null,
    groups: p === null ? null : [...p.groups],
    roles: p === null ? null : [...p.roles],
    clientId: p?.clientId ?? null,
    delegation: p === null ? null : p.delegation.map((a) => ({ subject: a.subject, clientId: a.clientId ?? null })),
    connection: facts.connection ?? null,
    frontEnd: facts.frontEnd,
    route: facts.route ?? null,
    method: facts.method ?? null,
    statusCode: facts.statusCode ?? null,
    outcome: facts.outcome,
    errorCode: facts.errorCode ?? trip.errorCode ?? null,
    durationMs: facts.durationMs ?? null,
    sourceIp: facts.sourceIp ?? null,
    userAgent: facts.userAgent ?? null,
    sqlText: trip.sql ?? null,
    sqlFingerprint: trip.sql === undefined ? null : (text?.fingerprint ?? fingerprintOf(trip.sql)),
    bindParams: trip.params === undefined ? null : options.redact(trip.params),
    analysis: trip.analysis === undefined
      ? (facts.trace == null && facts.tool == null ? null : { ...(facts.trace != null && { trace: { ...facts.trace } }), ...(facts.tool != null && { tool: { ...facts.tool } }) })
      : {
          ...(facts.tool != null && { tool: { ...facts.tool } }),
          ...(facts.trace != null && { trace: { ...facts.trace } }),
          dialect: trip.analysis.dialect,
          // Driver type lookups, psql's \d, information_schema: marked so a reader can set them aside.
          ...(isCatalogIntrospection(statements) && { introspection: true }),
          // What a cost-aware rule decided on (null: the warehouse could give none).
          ...(trip.estimate !== undefined && { estimate: trip.estimate === null ? null : { bytes: trip.estimate.bytes ?? null, source: trip.estimate.source } }),
          statements: statements.map((s) => ({
            kind: s.kind,
            tablesRead: s.tablesRead,
            tablesWritten: s.tablesWritten,
            parseError: s.parseError ?? null,
            // A syntax error, refused as one: where the parser stopped.
            ...(s.unparsed !== undefined && { unparsed: { ...s.unparsed } })
          }))
        },
    statementKinds: trip.analysis === undefined ? null : kinds,
    tables: trip.analysis === undefined ? null : tables,
    decision: trip.decision?.effect ?? null,
    ruleId: trip.decision?.ruleId ?? null,
    // A round trip that failed records what the client was told (for upstream failures, the
    // text the pipeline released, never the warehouse's own); otherwise why it was decided.
    reason: facts.reason ?? trip.errorMessage ?? trip.approvalAction?.summary ?? withLimited(withRelease(trip.decision?.reason, hold), trip.rowsLimited) ?? null,
    policyVersion: trip.policyVersion ?? null,
    approvalId: hold !== undefined && 'approvalId' in hold ? hold.approvalId ?? null : trip.approvalAction?.approvalId ?? null,
    approver: hold?.state === 'granted' ? hold.approver ?? null : trip.approvalAction?.approver ?? null,
    // Every count as the masker gave it (rule, values, and for detectors whether the value was
    // masked or only flagged); the indexed list names only columns actually masked.
    masking: trip.maskedColumns === undefined ? null : masking.map((m) => ({ ...m })),
    maskedColumns: trip.maskedColumns === undefined
      ? null
      : unique(masking.filter((m) => (m as { action?: string }).action !== 'flagged').map((m) => m.column)),
    upstreamId: trip.upstreamId ?? null,
    rowsReturned: trip.rowsReturned ?? null,
    bytesReturned: facts.bytesReturned ?? trip.bytesReturned ?? null,
    resultDigest: capture === undefined ? null : sha256(capture.bytes).toString('hex'),
    resultTruncated: capture?.truncated ?? false,
    resultCapture: capture?.bytes ?? null,
    sqlSearch: null,
    statementId: trip.statementId ?? null,
    phase: facts.phase ?? null
  }
  // Everything hashed must be storable as is (no NUL, no lone surrogates); see storable().
  const { resultCapture, ...rest } = event
  const stored = storable(rest)
  const search = text !== undefined && stored.sqlText === trip.sql ? text.search : sqlSearchVector(stored.sqlText)
  return { ...stored, resultCapture, sqlSearch: search }
}

/** A decision's reason, plus the row limit that cut the result (the trail says rows were withheld). */
/** A held statement that runs says what released it: the grant (each use is in the trail), or the approval. */
function withRelease (reason: string | undefined, hold: RoundTrip['hold']): string | undefined {
  // Waiting for a human: the trail says which approval it waits on.
  if (hold?.state === 'pending') return reason === undefined ? `held, approval ${hold.approvalId}` : `${reason}; held, approval ${hold.approvalId}`
  if (hold?.state !== 'granted' || hold.approvalId === undefined) return reason
  const note = hold.grant !== undefined
    ? `released by grant ${hold.grant.id} (given by ${hold.approver ?? '?'}) as approval ${hold.approvalId}`
    : `released by approval ${hold.approvalId} (approved by ${hold.approver ?? '?'})`
  return reason === undefined ? note : `${reason}; ${note}`
}

function withLimited (reason: string | undefined, limited: RoundTrip['rowsLimited']): string | undefined {
  if (limited === undefined) return reason
  const note = `result limited to ${limited.rows} rows by rule ${limited.rule} (limits.${limited.by})`
  return reason === undefined ? note : `${reason}; ${note}`
}
