// Reads what the verifier needs from the store: chain registrations, checkpoints, and events
// one chain at a time (memory bounded by the longest chain, not the table).
import type { Store } from '../store/store.js'
import type { CheckpointKey } from './chain.js'
import { EVENT_FIELDS, type StoredEvent } from './event.js'
import { ChainWalker, verifyAll, type ChainRow, type CheckpointRow, type VerifyContext, type VerifyIssue, type VerifyReport } from './verify.js'

const PAGE = 5000

export async function loadChains (store: Store, ids?: string[]): Promise<Map<string, ChainRow>> {
  const rows = await store.query<ChainRow>(
    `select id, writer, started_at as "startedAt", key_id as "keyId", encode(signature, 'hex') as signature
     from recording_chains ${ids === undefined ? '' : 'where id = any($1::text[])'} order by started_at, id`,
    ids === undefined ? [] : [ids])
  return new Map(rows.map((r) => [r.id, r]))
}

export async function loadCheckpoints (store: Store, ids?: string[]): Promise<Map<string, CheckpointRow[]>> {
  const rows = await store.query<CheckpointRow>(
    `select chain, seq::float8 as seq, encode(hash, 'hex') as hash, kind, created_at as "createdAt",
       key_id as "keyId", encode(signature, 'hex') as signature
     from checkpoints ${ids === undefined ? '' : 'where chain = any($1::text[])'} order by chain, seq, id`,
    ids === undefined ? [] : [ids])
  const map = new Map<string, CheckpointRow[]>()
  for (const r of rows) {
    const list = map.get(r.chain)
    if (list === undefined) map.set(r.chain, [r])
    else list.push(r)
  }
  return map
}

/** Feeds one chain to a walker page by page: memory is one page plus the chain's hashes. */
async function walkChain (store: Store, chain: string, ctx: VerifyContext): Promise<{ issues: VerifyIssue[], events: number }> {
  const hashes = new Set((await store.query<{ h: string }>(
    "select encode(hash, 'hex') as h from session_events where chain = $1 and hash is not null", [chain])).map((r) => r.h))
  const walker = new ChainWalker(chain, ctx, hashes)
  let events = 0
  let afterSeq = -1
  let afterId = '0'
  for (;;) {
    const page = await store.query<StoredEvent>(
      `select ${EVENT_FIELDS} from session_events e where e.chain = $1 and (e.seq, e.id) > ($2::bigint, $3::bigint)
       order by e.seq, e.id limit ${PAGE}`, [chain, String(afterSeq), afterId])
    for (const e of page) walker.visit(e)
    events += page.length
    if (page.length < PAGE) break
    const last = page[page.length - 1] as StoredEvent
    afterSeq = last.seq
    afterId = last.id
  }
  return { issues: walker.finish(), events }
}

/** Verifies the live store. */
export async function verifyStore (store: Store, key?: CheckpointKey): Promise<VerifyReport> {
  const chains = await loadChains(store)
  const checkpoints = await loadCheckpoints(store)
  const ctx: VerifyContext = { key, chains, checkpoints }
  const issues: VerifyIssue[] = []
  let events = 0

  const present = await store.query<{ chain: string }>('select distinct chain from session_events where chain is not null order by chain')
  for (const { chain } of present) {
    const walked = await walkChain(store, chain, ctx)
    events += walked.events
    issues.push(...walked.issues)
  }
  // Each is reported; past the first thousand only their number is (the report stays readable).
  const unchained = await store.query<StoredEvent>(
    `select ${EVENT_FIELDS} from session_events e where e.chain is null order by e.id limit 1000`)
  const [more] = unchained.length < 1000
    ? [{ n: 0 }]
    : await store.query<{ n: number }>('select (count(*) - 1000)::int as n from session_events where chain is null')
  const seen = new Set(present.map((p) => p.chain))
  // Chains that have checkpoints but no events at all any more.
  const emptied = new Map([...checkpoints].filter(([chain]) => !seen.has(chain)))
  const rest = verifyAll(unchained, { ...ctx, checkpoints: emptied })
  events += rest.events
  issues.push(...rest.issues)
  const warnings = rest.warnings
  if ((more?.n ?? 0) > 0) {
    events += more?.n ?? 0
    issues.push({ kind: 'inserted', chain: null, seq: null, eventId: null, requestId: null, detail: `${more?.n ?? 0} more events are not part of any chain` })
  }
  const checkpointCount = [...checkpoints.values()].reduce((n, l) => n + l.length, 0)
  return { ok: issues.length === 0, events, chains: present.length, checkpoints: checkpointCount, issues, warnings }
}

/** One line per issue, for the CLI and logs. */
export function formatReport (report: VerifyReport): string {
  const lines = report.issues.map((i) =>
    `${i.kind.toUpperCase().padEnd(9)} chain ${i.chain ?? '-'} seq ${i.seq ?? '-'} event ${i.eventId ?? '-'}` +
    `${i.requestId === null ? '' : ` request ${i.requestId}`}: ${i.detail}`)
  for (const w of report.warnings) lines.push(`warning: ${w}`)
  lines.push(`${report.ok ? 'OK' : 'FAILED'}: ${report.events} events in ${report.chains} chains, ${report.checkpoints} checkpoints, ${report.issues.length} issues`)
  return lines.join('\n')
}
