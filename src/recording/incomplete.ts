// Admitted statements that never completed: the admitted event was committed (so the warehouse
// may have run the statement) but no completion followed — the gateway died in between, or the
// store failed after the warehouse ran it and the result was withheld. Neither is tampering (the
// chain is intact); both are what an auditor must see, so verify, the CLI and the admin API
// list them.
import type { Store } from '../store/store.js'
import type { StoredEvent } from './event.js'

export interface IncompleteStatement {
  statementId: string
  eventId: string
  chain: string | null
  seq: number | null
  requestId: string
  occurredAt: string
  principalSubject: string | null
  connection: string | null
  sqlText: string | null
}

export interface IncompleteReport {
  count: number
  /** The oldest ones, up to the listing limit. */
  statements: IncompleteStatement[]
}

/** `from session_events e`: an admitted event no completion of the same statement follows. */
export const INCOMPLETE_CONDITION = `e.phase = 'admitted' and not exists (
  select 1 from session_events c where c.statement_id = e.statement_id and c.phase = 'completed')`

export async function findIncomplete (store: Store, limit = 100): Promise<IncompleteReport> {
  const rows = await store.query<IncompleteStatement>(
    `select e.statement_id as "statementId", e.id::text as "eventId", e.chain, e.seq::float8 as seq, e.request_id as "requestId",
       to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "occurredAt",
       e.principal_subject as "principalSubject", e.connection, e.sql_text as "sqlText"
     from session_events e where ${INCOMPLETE_CONDITION} order by e.id limit ${Math.max(1, Math.trunc(limit))}`)
  const count = rows.length < limit
    ? rows.length
    : (await store.query<{ n: number }>(`select count(*)::int as n from session_events e where ${INCOMPLETE_CONDITION}`))[0]?.n ?? rows.length
  return { count, statements: rows }
}

/** The same over events in memory (an export file). */
export function incompleteIn (events: Iterable<StoredEvent>, limit = 100): IncompleteReport {
  const admitted = new Map<string, StoredEvent>()
  const completed = new Set<string>()
  for (const e of events) {
    if (e.statementId === null || e.statementId === undefined) continue
    if (e.phase === 'admitted') admitted.set(e.statementId, e)
    else if (e.phase === 'completed') completed.add(e.statementId)
  }
  const open = [...admitted.values()].filter((e) => !completed.has(e.statementId as string))
  return {
    count: open.length,
    statements: open.slice(0, limit).map((e) => ({
      statementId: e.statementId as string,
      eventId: e.id,
      chain: e.chain,
      seq: e.seq,
      requestId: e.requestId,
      occurredAt: e.occurredAt,
      principalSubject: e.principalSubject,
      connection: e.connection,
      sqlText: e.sqlText
    }))
  }
}

export function formatIncomplete (report: IncompleteReport): string[] {
  const lines = report.statements.map((s) =>
    `incomplete: statement ${s.statementId} (event ${s.eventId}, request ${s.requestId}, ${s.occurredAt}, ${s.principalSubject ?? '-'} on ${s.connection ?? '-'}) ` +
    'was admitted and may have run upstream, but no completion was recorded')
  if (report.count > report.statements.length) lines.push(`incomplete: ${report.count - report.statements.length} more`)
  return lines
}
