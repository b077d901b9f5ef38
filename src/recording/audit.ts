// Reads what the verifier needs from the store: chain registrations, checkpoints, and events
// one chain at a time (memory bounded by the longest chain, not the table), then the
// store-wide checks: repeated events, registered chains left empty, unchained rows.
import type { Store } from '../store/store.js'
import type { CheckpointKey } from './chain.js'
import { DUPLICATE_CANDIDATES, findDuplicates } from './duplicates.js'
import { EVENT_FIELDS, type StoredEvent } from './event.js'
import { findIncomplete, formatIncomplete } from './incomplete.js'
import type { OutsideCopies } from './outside.js'
import {
  ChainWalker, chainsWithoutEvents, settle, verifyChain, warning,
  type ChainRow, type CheckpointRow, type VerifyContext, type VerifyIssue, type VerifyReport, type VerifyWarning
} from './verify.js'

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
async function walkChain (store: Store, chain: string, ctx: VerifyContext): Promise<{ walker: ChainWalker, events: number }> {
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
  walker.finish()
  return { walker, events }
}

const LISTED = 1000

/** Exact repeats of an event: the store finds the candidates, `findDuplicates` judges them. */
async function duplicates (store: Store): Promise<VerifyIssue[]> {
  const ids = (await store.query<{ requestId: string }>(DUPLICATE_CANDIDATES, [LISTED + 1])).map((r) => r.requestId)
  if (ids.length === 0) return []
  const events = await store.query<StoredEvent>(
    `select ${EVENT_FIELDS} from session_events e where e.chain is not null and e.request_id = any($1::text[]) order by e.id`,
    [ids.slice(0, LISTED)])
  const found = findDuplicates(events)
  if (ids.length > LISTED) {
    found.push({ kind: 'duplicate', chain: null, seq: null, eventId: null, requestId: null, detail: `more than ${LISTED} request ids repeat an event; only the first ${LISTED} are listed` })
  }
  return found
}

export interface VerifyStoreOptions {
  /** Warnings fail verification too. */
  strict?: boolean
  /** Checkpoint copies kept outside the store (`parseOutsideCopies`). */
  outside?: OutsideCopies
}

/** Verifies the live store. */
export async function verifyStore (store: Store, key?: CheckpointKey, options: VerifyStoreOptions = {}): Promise<VerifyReport> {
  const chains = await loadChains(store)
  const checkpoints = await loadCheckpoints(store)
  const ctx: VerifyContext = { key, chains, checkpoints, outside: options.outside?.byChain }
  const issues: VerifyIssue[] = []
  const warnings: VerifyWarning[] = []
  const collect = (w: ChainWalker): void => { issues.push(...w.issues); warnings.push(...w.warnings) }
  let events = 0

  const present = await store.query<{ chain: string }>('select distinct chain from session_events where chain is not null order by chain')
  for (const { chain } of present) {
    const walked = await walkChain(store, chain, ctx)
    events += walked.events
    collect(walked.walker)
  }
  const chained = events
  const seen = new Set(present.map((p) => p.chain))
  // Chains the store's checkpoints or the outside copies name but no event is left of.
  for (const chain of chainsWithoutEvents(ctx, seen)) collect(verifyChain(chain, [], ctx))
  for (const registration of chains.values()) {
    if (seen.has(registration.id) || checkpoints.has(registration.id) || ctx.outside?.has(registration.id) === true) continue
    // A first write that failed leaves this too; so does deleting a chain but not its registration.
    warnings.push(warning('empty-chain', registration.id, `chain ${registration.id} (writer ${registration.writer}) is registered but has no events and no checkpoints`))
  }
  issues.push(...await duplicates(store))

  // Each is reported; past the first thousand only their number is (the report stays readable).
  const unchained = await store.query<StoredEvent>(
    `select ${EVENT_FIELDS} from session_events e where e.chain is null order by e.id limit ${LISTED}`)
  const [more] = unchained.length < LISTED
    ? [{ n: 0 }]
    : await store.query<{ n: number }>(`select (count(*) - ${LISTED})::int as n from session_events where chain is null`)
  for (const e of unchained) issues.push({ kind: 'inserted', chain: null, seq: null, eventId: e.id, requestId: e.requestId, detail: 'not part of any chain' })
  events += unchained.length + (more?.n ?? 0)
  if ((more?.n ?? 0) > 0) {
    issues.push({ kind: 'inserted', chain: null, seq: null, eventId: null, requestId: null, detail: `${more?.n ?? 0} more events are not part of any chain` })
  }
  const checkpointCount = [...checkpoints.values()].reduce((n, l) => n + l.length, 0)
  const outside = options.outside === undefined ? undefined : { checkpoints: options.outside.checkpoints, chains: options.outside.byChain.size }
  const incomplete = await findIncomplete(store)
  return settle({
    strict: options.strict === true, events, chains: present.length, checkpoints: checkpointCount, ...(outside !== undefined && { outside }), issues, warnings, incomplete
  }, ctx, 'store', chained)
}

/** One line per finding, for the CLI and logs. */
export function formatReport (report: VerifyReport): string {
  const lines = report.issues.map((i) =>
    `${i.kind.toUpperCase().padEnd(9)} chain ${i.chain ?? '-'} seq ${i.seq ?? '-'} event ${i.eventId ?? '-'}` +
    `${i.requestId === null ? '' : ` request ${i.requestId}`}: ${i.detail}`)
  for (const w of report.warnings) lines.push(`warning: ${w.chain === null ? '' : `chain ${w.chain}: `}${w.detail}`)
  if (report.incomplete !== undefined) lines.push(...formatIncomplete(report.incomplete))
  const verdict = report.ok ? 'OK' : report.issues.length === 0 ? 'FAILED (--strict: warnings fail)' : 'FAILED'
  const outside = report.outside === undefined ? '' : `, ${report.outside.checkpoints} outside checkpoint copies`
  lines.push(`${verdict}: ${report.events} events in ${report.chains} chains, ${report.checkpoints} checkpoints${outside}, ` +
    `${report.issues.length} issues, ${report.warnings.length} warnings` +
    `${(report.incomplete?.count ?? 0) > 0 ? `, ${report.incomplete?.count ?? 0} admitted statements without a completion` : ''}`)
  return lines.join('\n')
}
