// Exports for auditors and SIEMs, streamed (memory bounded by one page). JSON Lines carries
// everything verification needs — chain registrations, checkpoints, each chain's starting
// link, the events with their hashes — and ends with a seal: sha256 over every line before
// it, signed with the checkpoint key, so the file as a whole proves it was not edited.
// CSV is for spreadsheets: the same event fields, flattened, not verifiable on its own.
import { createHash } from 'node:crypto'
import type { Store } from '../store/store.js'
import { signBody, verifyBody, type CheckpointKey } from './chain.js'
import { EVENT_FIELDS, type StoredEvent } from './event.js'
import { loadChains, loadCheckpoints } from './audit.js'
import { normaliseTime } from './filters.js'
import { rejudge, verifyAll, type ChainRow, type CheckpointRow, type VerifyReport } from './verify.js'

export type ExportFormat = 'jsonl' | 'csv'

export interface ExportOptions {
  /** ISO 8601; inclusive. */
  since?: string
  /** ISO 8601; exclusive. */
  until?: string
  format: ExportFormat
  key?: CheckpointKey
}

const PAGE = 1000
const FAR_PAST = '0001-01-01T00:00:00Z'
const FAR_FUTURE = '9999-12-31T00:00:00Z'

interface ChainSlice { chain: string, lo: number, hi: number, prevHash: string }

/**
 * Per chain, the seq range of events that occurred in [since, until). The whole seq range is
 * exported — also an event inside it that started before `since` (a long round trip) —
 * so the slice is contiguous and verifies without false "deleted" reports.
 */
async function slices (store: Store, since: string, until: string): Promise<ChainSlice[]> {
  return await store.query<ChainSlice>(
    `select b.chain, b.lo, b.hi, encode(s.prev_hash, 'hex') as "prevHash" from (
       select chain, min(seq)::float8 as lo, max(seq)::float8 as hi from session_events
       where chain is not null and occurred_at >= $1::text::timestamptz and occurred_at < $2::text::timestamptz
       group by chain) b
     join lateral (select prev_hash from session_events x where x.chain = b.chain and x.seq = b.lo::bigint order by x.id limit 1) s on true
     order by b.chain`, [since, until])
}

async function * events (store: Store, list: ChainSlice[], since: string, until: string): AsyncGenerator<StoredEvent> {
  for (const slice of list) {
    let afterSeq = slice.lo - 1
    let afterId = '0'
    for (;;) {
      const page = await store.query<StoredEvent>(
        `select ${EVENT_FIELDS} from session_events e where e.chain = $1 and e.seq between $5::bigint and $2::bigint
           and (e.seq, e.id) > ($3::bigint, $4::bigint) order by e.seq, e.id limit ${PAGE}`,
        [slice.chain, String(slice.hi), String(afterSeq), afterId, String(slice.lo)])
      yield * page
      if (page.length < PAGE) break
      const last = page[page.length - 1] as StoredEvent
      afterSeq = last.seq
      afterId = last.id
    }
  }
  let afterId = '0'
  for (;;) {
    const page = await store.query<StoredEvent>(
      `select ${EVENT_FIELDS} from session_events e where e.chain is null and e.id > $1::bigint
         and e.occurred_at >= $2::text::timestamptz and e.occurred_at < $3::text::timestamptz order by e.id limit ${PAGE}`,
      [afterId, since, until])
    yield * page
    if (page.length < PAGE) break
    afterId = (page[page.length - 1] as StoredEvent).id
  }
}

/** The lines of an export, each without its newline. */
export async function * exportLines (store: Store, options: ExportOptions): AsyncGenerator<string> {
  // Checked before the first query, as the admin API's filters are (filters.ts).
  const since = normaliseTime(options.since, 'since') ?? FAR_PAST
  const until = normaliseTime(options.until, 'until') ?? FAR_FUTURE
  const list = await slices(store, since, until)
  if (options.format === 'csv') {
    yield CSV_COLUMNS.join(',')
    for await (const e of events(store, list, since, until)) yield CSV_COLUMNS.map((c) => csvCell(e[c])).join(',')
    return
  }
  const digest = createHash('sha256')
  let count = 0
  const emit = (value: object): string => {
    const line = JSON.stringify(value)
    digest.update(line).update('\n')
    count++
    return line
  }
  const ids = list.map((s) => s.chain)
  yield emit({ type: 'export', version: 1, since, until, exportedAt: new Date().toISOString(), keyId: options.key?.id ?? null, chains: list.map((s) => ({ id: s.chain, firstSeq: s.lo, lastSeq: s.hi, prevHash: s.prevHash })) })
  for (const chain of (await loadChains(store, ids)).values()) yield emit({ type: 'chain', ...chain })
  const bounds = new Map(list.map((s) => [s.chain, s.hi]))
  for (const cps of (await loadCheckpoints(store, ids)).values()) {
    for (const cp of cps) if (cp.kind === 'retention' || cp.seq <= (bounds.get(cp.chain) ?? 0)) yield emit({ type: 'checkpoint', ...cp })
  }
  for await (const e of events(store, list, since, until)) yield emit({ type: 'event', ...e })
  const seal = { lines: count, sha256: digest.digest('hex') }
  const signature = signBody(options.key, seal)
  yield JSON.stringify({ type: 'seal', ...seal, keyId: options.key?.id ?? null, signature: signature?.toString('hex') ?? null })
}

export const CSV_COLUMNS: Array<keyof StoredEvent> = [
  'id', 'occurredAt', 'chain', 'seq', 'sessionId', 'requestId', 'principalSubject', 'principalIssuer', 'principalType',
  'groups', 'roles', 'clientId', 'delegation', 'connection', 'frontEnd', 'route', 'method', 'statusCode', 'outcome',
  'errorCode', 'durationMs', 'sourceIp', 'userAgent', 'sqlText', 'sqlFingerprint', 'bindParams', 'statementKinds',
  'tables', 'decision', 'ruleId', 'reason', 'policyVersion', 'approvalId', 'approver', 'masking', 'maskedColumns',
  'upstreamId', 'rowsReturned', 'bytesReturned', 'resultDigest', 'resultTruncated', 'prevHash', 'hash'
]

/** RFC 4180; a leading = + - @ is prefixed with ' so a spreadsheet never runs SQL text as a formula. */
export function csvCell (value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value)
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n']/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/** Verifies a JSON Lines export: the seal, then every chain slice it holds. */
export function verifyExport (text: string, key?: CheckpointKey, options: { strict?: boolean } = {}): VerifyReport {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const chains = new Map<string, ChainRow>()
  const checkpoints = new Map<string, CheckpointRow[]>()
  const starts = new Map<string, { seq: number, prevHash: string }>()
  const list: StoredEvent[] = []
  const digest = createHash('sha256')
  let seal: { lines: number, sha256: string, keyId: string | null, signature: string | null } | undefined
  let counted = 0
  for (const line of lines) {
    const record = JSON.parse(line) as { type: string } & Record<string, unknown>
    if (record.type === 'seal') {
      seal = record as never
      continue
    }
    digest.update(line).update('\n')
    counted++
    const { type, ...rest } = record
    if (type === 'export') {
      for (const c of rest.chains as Array<{ id: string, firstSeq: number, prevHash: string }>) starts.set(c.id, { seq: c.firstSeq, prevHash: c.prevHash })
    } else if (type === 'chain') {
      chains.set(String(rest.id), rest as unknown as ChainRow)
    } else if (type === 'checkpoint') {
      const cp = rest as unknown as CheckpointRow
      checkpoints.set(cp.chain, [...(checkpoints.get(cp.chain) ?? []), cp])
    } else if (type === 'event') {
      list.push(rest as unknown as StoredEvent)
    }
  }
  const report = verifyAll(list, { key, chains, checkpoints, starts }, options)
  const sealIssue = (detail: string): void => {
    report.issues.push({ kind: 'modified', chain: null, seq: null, eventId: null, requestId: null, detail })
  }
  if (seal === undefined) {
    sealIssue('the export has no seal: it was cut short or its last line removed')
  } else if (seal.lines !== counted || seal.sha256 !== digest.digest('hex')) {
    sealIssue(`the export was altered after it was sealed (${counted} lines, seal says ${seal.lines})`)
  } else if (key !== undefined && (seal.signature === null || !verifyBody(key, { lines: seal.lines, sha256: seal.sha256 }, Buffer.from(seal.signature, 'hex')))) {
    sealIssue('the seal is not signed by the configured key')
  }
  return rejudge(report)
}
