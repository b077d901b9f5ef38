// Retention without breaking the chain. Three cuts, each per connection (default otherwise):
//  - result captures older than resultDays are dropped; the event keeps result_digest, which
//    is what its hash covers, so it still verifies;
//  - expired events at the start of a chain are deleted, after a signed `retention`
//    checkpoint records the hash of the last one removed: the first remaining event links to
//    it, so the verifier tells "removed by retention" from "deleted by someone";
//  - expired events behind a younger one (another connection keeps events longer) cannot go
//    without cutting the chain, so their content is purged in place: the row keeps only its
//    place (chain, seq, hashes, time, connection) and its event_digest, so links still check.
import type { RetentionConfig } from '../config/types.js'
import type { Store } from '../store/store.js'
import { isoMicros, nowMicros, type CheckpointKey } from './chain.js'
import { insertCheckpoint, type SignedCheckpoint } from './writer.js'

export interface RetentionReport {
  capturesDropped: number
  eventsDeleted: number
  eventsPurged: number
  sessionsDeleted: number
  checkpoints: number
}

const PURGED_COLUMNS = [
  'session_id', 'principal_subject', 'principal_issuer', 'principal_type', 'groups', 'roles', 'client_id',
  'delegation', 'route', 'method', 'status_code', 'error_code', 'duration_ms', 'source_ip', 'user_agent',
  'sql_text', 'sql_fingerprint', 'bind_params', 'analysis', 'statement_kinds', 'tables', 'decision', 'rule_id',
  'reason', 'policy_version', 'approval_id', 'approver', 'masking', 'masked_columns', 'upstream_id',
  'rows_returned', 'bytes_returned', 'result_capture', 'sql_search'
]

/** $1 now, $2 per-connection settings (jsonb), $3 default days for `field`. */
function expired (field: 'days' | 'resultDays'): string {
  return `e.occurred_at < $1::text::timestamptz - make_interval(days => coalesce(($2::text::jsonb -> e.connection ->> '${field}')::int, $3::int))`
}

/**
 * `onCheckpoint` hears each retention checkpoint once its transaction committed: the SIEM's
 * copy then says the deletion was retention's, which a store-only record could not prove
 * to anyone who also suspects the store.
 */
export async function runRetention (
  store: Store, config: RetentionConfig, key?: CheckpointKey, now = new Date(), onCheckpoint?: (checkpoint: SignedCheckpoint) => void
): Promise<RetentionReport> {
  const report: RetentionReport = { capturesDropped: 0, eventsDeleted: 0, eventsPurged: 0, sessionsDeleted: 0, checkpoints: 0 }
  const settings = JSON.stringify(config.connections)
  const at = now.toISOString()

  const captures = await store.query<{ n: number }>(
    `with d as (update session_events e set result_capture = null
       where e.result_capture is not null and ${expired('resultDays')} returning 1)
     select count(*)::int as n from d`, [at, settings, config.resultDays])
  report.capturesDropped = captures[0]?.n ?? 0

  // Per chain: the longest prefix that is all expired (or already purged) can be deleted.
  const chains = await store.query<{ chain: string, min_seq: number, max_seq: number, first_live: number | null }>(
    `select e.chain, min(e.seq)::float8 as min_seq, max(e.seq)::float8 as max_seq,
       (min(e.seq) filter (where not (${expired('days')}) and e.purged_at is null))::float8 as first_live
     from session_events e where e.chain is not null group by e.chain`, [at, settings, config.days])
  for (const c of chains) {
    const last = (c.first_live ?? c.max_seq + 1) - 1
    if (last < c.min_seq) continue
    const written = await store.transaction(async (tx) => {
      const [row] = await tx.query<{ hash: string }>(
        `select encode(hash, 'hex') as hash from session_events where chain = $1 and seq = $2::bigint order by id limit 1`,
        [c.chain, String(last)])
      if (row === undefined) return undefined
      const checkpoint = await insertCheckpoint(tx, key, { chain: c.chain, seq: last, hash: row.hash, kind: 'retention', createdAt: isoMicros(nowMicros()) })
      const deleted = await tx.query<{ n: number }>(
        'with d as (delete from session_events where chain = $1 and seq <= $2::bigint returning 1) select count(*)::int as n from d',
        [c.chain, String(last)])
      report.eventsDeleted += deleted[0]?.n ?? 0
      report.checkpoints++
      return checkpoint
    })
    if (written !== undefined) onCheckpoint?.(written)
  }

  const purged = await store.query<{ n: number }>(
    `with p as (update session_events e set purged_at = now(), ${PURGED_COLUMNS.map((c) => `${c} = null`).join(', ')}
       where e.purged_at is null and e.chain is not null and ${expired('days')} returning 1)
     select count(*)::int as n from p`, [at, settings, config.days])
  report.eventsPurged = purged[0]?.n ?? 0

  // Events written before chaining existed (or by the low-level SessionRecorder) just expire.
  const legacy = await store.query<{ n: number }>(
    `with d as (delete from session_events e where e.chain is null and ${expired('days')} returning 1)
     select count(*)::int as n from d`, [at, settings, config.days])
  report.eventsDeleted += legacy[0]?.n ?? 0

  const sessions = await store.query<{ n: number }>(
    `with d as (delete from sessions s where s.last_seen_at < $1::text::timestamptz - make_interval(days => $2::int)
       and not exists (select 1 from session_events e where e.session_id = s.id) returning 1)
     select count(*)::int as n from d`, [at, config.days])
  report.sessionsDeleted = sessions[0]?.n ?? 0
  return report
}
