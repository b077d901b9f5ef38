// Duplicate request ids, judged as an auditor would. A request may legitimately leave more
// than one event — an admitted and a completed one, one per statement, a retry — and those
// siblings differ in content (time, outcome, SQL). An exact repeat of one event, the same
// request id with the same content, is what a copied row looks like: a head event duplicated
// with a freshly computed link verifies link by link, so only its identity gives it away.
//
// Identity leaves out the chain position (chain, seq, hashes): a copy is a copy wherever it
// was spliced in. An event whose content retention purged keeps only its digest, which
// names its chain too, so purged events repeat only within one chain.
import { canonicalJson, DIGEST_FIELDS, sha256 } from './chain.js'
import { COLUMNS, type StoredEvent } from './event.js'
import type { VerifyIssue } from './verify.js'

const CONTENT_FIELDS = DIGEST_FIELDS.filter((f) => f !== 'chain')

/** What makes two events the same event; null for unchained rows (reported on their own). */
export function eventIdentity (e: StoredEvent): string | null {
  if (e.chain === null) return null
  if (e.purgedAt !== null) return `purged:${e.chain}:${e.eventDigest ?? ''}`
  return sha256(Buffer.from(canonicalJson(CONTENT_FIELDS.map((f) => e[f] ?? null)))).toString('hex')
}

/** Every later copy of an event seen before, in store order (id), as a `duplicate` issue. */
export function findDuplicates (events: Iterable<StoredEvent>): VerifyIssue[] {
  const byRequest = new Map<string, StoredEvent[]>()
  for (const e of events) {
    if (e.chain === null) continue
    const list = byRequest.get(e.requestId)
    if (list === undefined) byRequest.set(e.requestId, [e])
    else list.push(e)
  }
  const issues: VerifyIssue[] = []
  for (const [requestId, list] of byRequest) {
    if (list.length < 2) continue
    const first = new Map<string, StoredEvent>()
    for (const e of [...list].sort((a, b) => Number(a.id) - Number(b.id))) {
      const identity = eventIdentity(e) as string
      const original = first.get(identity)
      if (original === undefined) {
        first.set(identity, e)
        continue
      }
      issues.push({
        kind: 'duplicate',
        chain: e.chain,
        seq: e.seq,
        eventId: e.id,
        requestId,
        detail: `duplicate request id: repeats event ${original.id} (chain ${original.chain ?? '-'} seq ${original.seq}) exactly`
      })
    }
  }
  return issues
}

const column = (field: string): string => (COLUMNS.find(([key]) => key === field) as (typeof COLUMNS)[number])[1]

/**
 * Request ids that may repeat an event, found by the store in one pass: rows grouped by
 * request id and a hash of the same content `eventIdentity` covers. Siblings with different
 * content never come back, so memory is bounded by the repeats, not by the requests.
 * `eventIdentity` has the last word on what comes back. $1: how many to return.
 */
export const DUPLICATE_CANDIDATES = `select distinct d.request_id as "requestId" from (
    select e.request_id from session_events e where e.chain is not null
    group by e.request_id, md5(row(${CONTENT_FIELDS.map((f) => `e.${column(f)}`).join(', ')},
      case when e.purged_at is not null then e.chain end, case when e.purged_at is not null then e.event_digest end)::text)
    having count(*) > 1) d
  order by 1 limit $1`
