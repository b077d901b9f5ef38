// Re-links every chain and says what is wrong, in an auditor's words: an event modified,
// deleted, inserted, reordered or duplicated, or a checkpoint that does not hold. The same
// algorithm runs over the live store and over an export file; only where the rows come from
// differs.
//
// Per chain, events in seq order:
//  - content: sha256(canonical content) must equal event_digest (skipped for events whose
//    content retention purged), and sha256(prev_hash || event_digest) must equal hash;
//  - links: prev_hash must be the previous event's hash (or the retention checkpoint's, or 32
//    zero bytes for the first event). When it is not, the shape of the break says why:
//    linking to an earlier event's predecessor → that earlier event was inserted; linking to
//    some other event of the chain → reordered; a gap in seq → deleted; else the predecessor
//    was rewritten;
//  - checkpoints: signed by the configured key, and the event at their seq has their hash
//    (a checkpoint past the last event means the tail was deleted). A `close` checkpoint is
//    the writer's last word: any event after it was inserted.
//
// What the chain cannot prove alone is that nothing came after its last checkpoint: anyone
// with write access to the store can compute a digest and a link (no secret is involved), so
// a tail beyond the last signed checkpoint is reported as unanchored, and a store without any
// checkpoint as unanchored altogether. These are warnings, not errors: a running gateway
// always has a tail it has not checkpointed yet. Copies of the checkpoints kept outside the
// store (`outside`) anchor further and reveal truncation and whole chains deleted.
import { eventDigest, GENESIS, linkHash, verifyBody, type CheckpointKey } from './chain.js'
import { findDuplicates } from './duplicates.js'
import type { StoredEvent } from './event.js'
import { incompleteIn, type IncompleteReport } from './incomplete.js'

/** Errors: something in the trail was changed. Any one fails verification. */
export type IssueKind = 'modified' | 'deleted' | 'inserted' | 'reordered' | 'checkpoint' | 'duplicate'

export interface VerifyIssue {
  kind: IssueKind
  chain: string | null
  seq: number | null
  eventId: string | null
  requestId: string | null
  detail: string
}

/**
 * Warnings: what the trail cannot vouch for, though nothing shows it was changed. They fail
 * verification only when it is strict.
 *  - unanchored: events after a chain's last signed checkpoint (`seq` is that checkpoint's,
 *    null when the chain has none; `count` the events);
 *  - no-checkpoints: events and not one checkpoint (deleted, or none written yet);
 *  - empty-chain: a registered chain with no events and no checkpoints;
 *  - no-key: signatures were not checked.
 */
export type WarningKind = 'unanchored' | 'no-checkpoints' | 'empty-chain' | 'no-key'

export interface VerifyWarning {
  kind: WarningKind
  chain: string | null
  seq: number | null
  count: number | null
  detail: string
}

export interface ChainRow { id: string, writer: string, startedAt: string, keyId: string | null, signature: string | null }
export interface CheckpointRow {
  chain: string
  seq: number
  hash: string
  kind: 'periodic' | 'close' | 'retention'
  createdAt: string
  keyId: string | null
  signature: string | null
}

/** A checkpoint as kept outside the store; unsigned (and without a time) when no key was set. */
export type OutsideCheckpoint = Omit<CheckpointRow, 'createdAt'> & { createdAt: string | null }

export interface VerifyReport {
  /** No issue, and under `strict` no warning either. */
  ok: boolean
  strict: boolean
  events: number
  chains: number
  checkpoints: number
  /** Present when checkpoint copies from outside the store were compared. */
  outside?: { checkpoints: number, chains: number }
  issues: VerifyIssue[]
  warnings: VerifyWarning[]
  /**
   * Admitted statements without a completion (a crash, or a result withheld because its
   * completion could not be recorded). Not tampering: listed, never an issue or a warning.
   */
  incomplete?: IncompleteReport
}

export interface VerifyContext {
  key?: CheckpointKey
  chains: Map<string, ChainRow>
  checkpoints: Map<string, CheckpointRow[]>
  /** Export files: where each chain's slice starts when the export began mid-chain. */
  starts?: Map<string, { seq: number, prevHash: string }>
  /** Checkpoint copies kept outside the store (the SIEM's), by chain. */
  outside?: Map<string, OutsideCheckpoint[]>
}

const ZERO = GENESIS.toString('hex')

function issue (kind: IssueKind, e: Partial<StoredEvent> | null, detail: string, chain?: string | null): VerifyIssue {
  return {
    kind,
    chain: e?.chain ?? chain ?? null,
    seq: e?.seq ?? null,
    eventId: e?.id ?? null,
    requestId: e?.requestId ?? null,
    detail
  }
}

export function warning (kind: WarningKind, chain: string | null, detail: string, seq: number | null = null, count: number | null = null): VerifyWarning {
  return { kind, chain, seq, count, detail }
}

function checkSignature (key: CheckpointKey | undefined, body: object, keyId: string | null, signature: string | null): string | null {
  if (key === undefined) return null
  if (signature === null) return 'is not signed'
  if (keyId !== null && keyId !== key.id) return `is signed by key ${keyId}, not by the configured key ${key.id}`
  return verifyBody(key, body as never, Buffer.from(signature, 'hex')) ? null : 'has an invalid signature'
}

/** A checkpoint the walker holds the chain to: from the store or an outside copy. */
interface Anchor {
  cp: OutsideCheckpoint
  outside: boolean
  /** Its signature holds (or no key was given): it may vouch for the events up to its seq. */
  valid: boolean
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/**
 * Walks one chain's events in (seq, id) order, one at a time, so the live store can be
 * verified page by page. `hashes` holds every stored hash of the chain (a first, cheap pass):
 * telling "reordered" from "deleted" needs to know whether a link points anywhere at all.
 */
export class ChainWalker {
  readonly issues: VerifyIssue[] = []
  readonly warnings: VerifyWarning[] = []
  readonly #chainId: string
  readonly #hashes: Set<string>
  readonly #pending = new Map<number, Anchor[]>()
  readonly #anchors: Anchor[] = []
  readonly #retention: Anchor | undefined
  readonly #closeSeq: number | undefined
  readonly #start: { seq: number, prevHash: string } | undefined
  readonly #unregistered: boolean
  readonly #rejected: string | null
  #expectedPrev: string
  #expectedSeq: number
  #previous: StoredEvent | null = null
  #visited = 0
  /** The last seq a valid checkpoint vouches for, and the events walked past it since. */
  #anchorSeq: number | null = null
  #sinceAnchor = 0
  #firstUnanchored: number | null = null

  constructor (chainId: string, ctx: VerifyContext, hashes: Set<string>) {
    this.#chainId = chainId
    this.#hashes = hashes
    const registration = ctx.chains.get(chainId)
    this.#unregistered = registration === undefined
    this.#rejected = registration === undefined
      ? `chain ${chainId} was never registered by a writer`
      : ((p) => (p === null ? null : `chain ${chainId} registration ${p}`))(checkSignature(ctx.key,
          { chain: registration.id, writer: registration.writer, startedAt: registration.startedAt },
          registration.keyId, registration.signature))
    const stored = ctx.checkpoints.get(chainId) ?? []
    const outside = ctx.outside?.get(chainId) ?? []
    for (const cp of stored) {
      const problem = checkSignature(ctx.key,
        { chain: cp.chain, seq: cp.seq, hash: cp.hash, kind: cp.kind, createdAt: cp.createdAt }, cp.keyId, cp.signature)
      if (problem !== null) this.issues.push(issue('checkpoint', null, `${cp.kind} checkpoint at seq ${cp.seq} ${problem}`, chainId))
      this.#anchors.push({ cp, outside: false, valid: problem === null })
    }
    for (const cp of outside) {
      // With a key every copy must be signed like the store's own (the webhook sends each
      // signature): a copy that is not, or whose signature fails, was made or changed by
      // someone else. It is reported and then ignored, so a forged copy accuses nothing.
      const problem = cp.createdAt === null && cp.signature !== null
        ? 'carries a signature but no creation time'
        : checkSignature(ctx.key, { chain: cp.chain, seq: cp.seq, hash: cp.hash, kind: cp.kind, createdAt: cp.createdAt ?? '' }, cp.keyId, cp.signature)
      if (problem !== null) {
        this.issues.push(issue('checkpoint', null, `the outside copy of the ${cp.kind} checkpoint at seq ${cp.seq} ${problem}; it was not used`, chainId))
        continue
      }
      this.#anchors.push({ cp, outside: true, valid: true })
      if (!this.#unregistered) this.#compareWithStore(cp, stored)
    }
    // Retention removed the events up to its seq on purpose; an outside copy stands in for a
    // store checkpoint someone deleted (which #compareWithStore reports).
    this.#retention = this.#anchors
      .filter((a) => a.cp.kind === 'retention')
      .sort((a, b) => b.cp.seq - a.cp.seq)[0]
    this.#closeSeq = this.#anchors
      .filter((a) => a.cp.kind === 'close' && a.valid)
      .reduce<number | undefined>((min, a) => (min === undefined || a.cp.seq < min ? a.cp.seq : min), undefined)
    this.#start = ctx.starts?.get(chainId)
    const retentionSeq = this.#retention?.cp.seq
    this.#expectedPrev = this.#retention?.cp.hash ?? ZERO
    this.#expectedSeq = (retentionSeq ?? 0) + 1
    if (this.#retention?.valid === true) this.#anchorSeq = retentionSeq ?? null
    if (this.#start !== undefined && this.#start.seq > this.#expectedSeq) {
      this.#expectedPrev = this.#start.prevHash
      this.#expectedSeq = this.#start.seq
      this.#anchorSeq = null
    }
    for (const a of this.#anchors) {
      if (a.cp.kind === 'retention') continue
      if (this.#start !== undefined && a.cp.seq < this.#start.seq) continue
      if (retentionSeq !== undefined && a.cp.seq <= retentionSeq) continue
      this.#pending.set(a.cp.seq, [...(this.#pending.get(a.cp.seq) ?? []), a])
    }
  }

  /** The store must still hold every checkpoint its outside copies hold, unchanged. */
  #compareWithStore (cp: OutsideCheckpoint, stored: CheckpointRow[]): void {
    const same = stored.filter((s) => s.seq === cp.seq && s.kind === cp.kind)
    if (same.length === 0) {
      this.issues.push(issue('checkpoint', null, `the store has no ${cp.kind} checkpoint at seq ${cp.seq}, the outside copy has one: it was deleted from the store`, this.#chainId))
    } else if (!same.some((s) => s.hash === cp.hash)) {
      this.issues.push(issue('checkpoint', null, `the ${cp.kind} checkpoint at seq ${cp.seq} differs from its outside copy`, this.#chainId))
    }
  }

  visit (r: StoredEvent): void {
    const issues = this.issues
    this.#visited++
    if (this.#rejected !== null) {
      issues.push(issue('inserted', r, this.#rejected))
      return
    }
    if (r.prevHash === null || r.hash === null || r.eventDigest === null) {
      issues.push(issue('inserted', r, 'event carries no chain hashes'))
      return
    }
    if (r.purgedAt === null && eventDigest(r).toString('hex') !== r.eventDigest) {
      issues.push(issue('modified', r, 'content no longer matches its digest'))
    }
    if (r.captureDigest !== null && r.captureDigest !== undefined && r.captureDigest !== r.resultDigest) {
      issues.push(issue('modified', r, 'captured result does not match its digest'))
    }
    if (linkHash(Buffer.from(r.prevHash, 'hex'), Buffer.from(r.eventDigest, 'hex')).toString('hex') !== r.hash) {
      issues.push(issue('modified', r, 'hash does not match prev_hash and digest'))
    }
    const previous = this.#previous
    if (previous !== null && r.seq === previous.seq) {
      issues.push(issue('inserted', r, `second event with seq ${r.seq}`))
      return
    }
    // Digest and link are public arithmetic: an event appended after the close checkpoint
    // links perfectly, and only the checkpoint says the writer had stopped.
    const afterClose = this.#closeSeq !== undefined && r.seq > this.#closeSeq
    if (afterClose) issues.push(issue('inserted', r, `written after the chain's close checkpoint at seq ${this.#closeSeq}: a closed chain takes no more events`))
    if (r.prevHash !== this.#expectedPrev) {
      if (previous !== null && r.prevHash === previous.prevHash) {
        issues.push(issue('inserted', previous, `event ${r.seq} links past it to its predecessor`))
      } else if (this.#hashes.has(r.prevHash)) {
        issues.push(issue('reordered', r, 'links to an event that is not its predecessor'))
      } else if (r.seq > this.#expectedSeq) {
        const count = r.seq - this.#expectedSeq
        issues.push(issue('deleted', r, `${plural(count, 'event')} before this one (seq ${this.#expectedSeq}…${r.seq - 1}) missing`))
      } else if (previous !== null) {
        issues.push(issue('modified', previous, 'rewritten: its successor links to a different hash'))
      } else {
        issues.push(issue('deleted', r, 'the events before this one are missing'))
      }
    } else if (r.seq !== this.#expectedSeq) {
      issues.push(issue('reordered', r, `renumbered: seq ${r.seq} where ${this.#expectedSeq} belongs`))
    }
    let anchored = false
    for (const a of this.#pending.get(r.seq) ?? []) {
      if (a.cp.hash !== r.hash) {
        issues.push(issue('modified', r, `hash differs from the ${a.outside ? 'outside copy of the ' : ''}${a.cp.kind} checkpoint at seq ${a.cp.seq}`))
      } else if (a.valid) {
        anchored = true
      }
    }
    this.#pending.delete(r.seq)
    if (anchored) {
      this.#anchorSeq = r.seq
      this.#sinceAnchor = 0
      this.#firstUnanchored = null
    } else if (!afterClose) {
      this.#sinceAnchor++
      this.#firstUnanchored ??= r.seq
    }
    this.#expectedPrev = r.hash
    this.#expectedSeq = r.seq + 1
    this.#previous = r
  }

  /** Checkpoints whose event never came (deleted; past the last event: the tail), and the unanchored tail. */
  finish (): VerifyIssue[] {
    if (this.#rejected !== null) {
      if (this.#unregistered && this.#visited === 0 && this.#anchors.length > 0) this.#goneAltogether()
      return this.issues
    }
    const lastSeq = this.#previous?.seq ?? (this.#retention?.cp.seq ?? 0)
    for (const seq of [...this.#pending.keys()].sort((a, b) => a - b)) {
      const named = (this.#pending.get(seq) ?? []).some((a) => !a.outside) ? 'checkpoint names' : 'the outside copy of a checkpoint names'
      this.issues.push(issue('deleted', null, seq > lastSeq
        ? `${named} seq ${seq}, the chain ends at ${lastSeq}: its tail was deleted`
        : `event seq ${seq} named by a checkpoint is missing`, this.#chainId))
    }
    if (this.#sinceAnchor > 0) {
      const range = `seq ${this.#firstUnanchored ?? '?'}…${lastSeq}`
      this.warnings.push(warning('unanchored', this.#chainId, this.#anchorSeq === null
        ? `unanchored: ${plural(this.#sinceAnchor, 'event')} and no signed checkpoint covers this chain (${range})`
        : `unanchored: ${plural(this.#sinceAnchor, 'event')} after checkpoint ${this.#anchorSeq} (${range}): no signed checkpoint covers them`,
      this.#anchorSeq, this.#sinceAnchor))
    }
    return this.issues
  }

  /** No registration and no event left, yet checkpoints (the store's or outside) name the chain. */
  #goneAltogether (): void {
    const inStore = this.#anchors.filter((a) => !a.outside)
    const last = Math.max(...this.#anchors.map((a) => a.cp.seq))
    this.issues.push(issue('deleted', null, inStore.length === 0
      ? `the chain is gone from the store (no registration, event or checkpoint is left); the outside copy holds its checkpoints up to seq ${last}`
      : `the chain's registration and every event are gone; its checkpoints name seq up to ${last}`, this.#chainId))
  }
}

/** Verifies one chain's events (any order); the walker holds its issues and warnings. */
export function verifyChain (chainId: string, events: StoredEvent[], ctx: VerifyContext): ChainWalker {
  const rows = [...events].sort((a, b) => a.seq - b.seq || Number(a.id) - Number(b.id))
  const walker = new ChainWalker(chainId, ctx, new Set(rows.map((r) => r.hash).filter((h): h is string => h !== null)))
  for (const r of rows) walker.visit(r)
  walker.finish()
  return walker
}

/** Chains known only from checkpoints (the store's or outside copies) and not in `seen`. */
export function chainsWithoutEvents (ctx: VerifyContext, seen: Set<string>): string[] {
  const ids = new Set([...ctx.checkpoints.keys(), ...(ctx.outside?.keys() ?? [])])
  return [...ids].filter((id) => !seen.has(id)).sort()
}

/** Warnings about the whole trail, and `ok` from what was found. */
export function settle (report: Omit<VerifyReport, 'ok'> & { ok?: boolean }, ctx: VerifyContext, where: 'store' | 'export', chained: number): VerifyReport {
  if (chained > 0 && report.checkpoints === 0) {
    report.warnings.push(warning('no-checkpoints', null,
      `the ${where} holds ${plural(chained, 'event')} and no checkpoint: nothing but the rows themselves vouches for them (checkpoints deleted, or none written yet)`,
      null, chained))
  }
  if (ctx.key === undefined) report.warnings.push(warning('no-key', null, 'no checkpoint key configured: signatures were not checked'))
  return rejudge(report as VerifyReport)
}

/** Recomputes `ok` after issues were added. */
export function rejudge (report: VerifyReport): VerifyReport {
  report.ok = report.issues.length === 0 && (!report.strict || report.warnings.length === 0)
  return report
}

/** Verifies everything in memory (an export): unchained events are reported as inserted. */
export function verifyAll (events: Iterable<StoredEvent>, ctx: VerifyContext, options: { strict?: boolean } = {}): VerifyReport {
  const byChain = new Map<string, StoredEvent[]>()
  const issues: VerifyIssue[] = []
  const warnings: VerifyWarning[] = []
  const all: StoredEvent[] = []
  let unchained = 0
  for (const e of events) {
    all.push(e)
    if (e.chain === null) {
      unchained++
      issues.push(issue('inserted', e, 'not part of any chain'))
      continue
    }
    const list = byChain.get(e.chain)
    if (list === undefined) byChain.set(e.chain, [e])
    else list.push(e)
  }
  const collect = (w: ChainWalker): void => { issues.push(...w.issues); warnings.push(...w.warnings) }
  for (const [chain, list] of byChain) collect(verifyChain(chain, list, ctx))
  // A chain with checkpoints but no events left (all deleted, not by retention).
  for (const chain of chainsWithoutEvents(ctx, new Set(byChain.keys()))) {
    if (ctx.starts !== undefined && !ctx.starts.has(chain)) continue
    collect(verifyChain(chain, [], ctx))
  }
  issues.push(...findDuplicates(all))
  const checkpoints = [...ctx.checkpoints.values()].reduce((n, l) => n + l.length, 0)
  return settle({ strict: options.strict === true, events: all.length, chains: byChain.size, checkpoints, issues, warnings, incomplete: incompleteIn(all) }, ctx, 'export', all.length - unchained)
}
