// Re-links every chain and says what is wrong, in an auditor's words: an event modified,
// deleted, inserted or reordered, or a checkpoint that does not hold. The same algorithm runs
// over the live store and over an export file; only where the rows come from differs.
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
//    (a checkpoint past the last event means the tail was deleted).
import { eventDigest, GENESIS, linkHash, verifyBody, type CheckpointKey } from './chain.js'
import type { StoredEvent } from './event.js'

export type IssueKind = 'modified' | 'deleted' | 'inserted' | 'reordered' | 'checkpoint'

export interface VerifyIssue {
  kind: IssueKind
  chain: string | null
  seq: number | null
  eventId: string | null
  requestId: string | null
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

export interface VerifyReport {
  ok: boolean
  events: number
  chains: number
  checkpoints: number
  issues: VerifyIssue[]
  warnings: string[]
}

export interface VerifyContext {
  key?: CheckpointKey
  chains: Map<string, ChainRow>
  checkpoints: Map<string, CheckpointRow[]>
  /** Export files: where each chain's slice starts when the export began mid-chain. */
  starts?: Map<string, { seq: number, prevHash: string }>
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

function checkSignature (key: CheckpointKey | undefined, body: object, keyId: string | null, signature: string | null): string | null {
  if (key === undefined) return null
  if (signature === null) return 'is not signed'
  if (keyId !== null && keyId !== key.id) return `is signed by key ${keyId}, not by the configured key ${key.id}`
  return verifyBody(key, body as never, Buffer.from(signature, 'hex')) ? null : 'has an invalid signature'
}

/**
 * Walks one chain's events in (seq, id) order, one at a time, so the live store can be
 * verified page by page. `hashes` holds every stored hash of the chain (a first, cheap pass):
 * telling "reordered" from "deleted" needs to know whether a link points anywhere at all.
 */
export class ChainWalker {
  readonly issues: VerifyIssue[] = []
  readonly #chainId: string
  readonly #ctx: VerifyContext
  readonly #hashes: Set<string>
  readonly #pending = new Map<number, CheckpointRow[]>()
  readonly #retention: CheckpointRow | undefined
  readonly #start: { seq: number, prevHash: string } | undefined
  readonly #rejected: string | null
  #expectedPrev: string
  #expectedSeq: number
  #previous: StoredEvent | null = null

  constructor (chainId: string, ctx: VerifyContext, hashes: Set<string>) {
    this.#chainId = chainId
    this.#ctx = ctx
    this.#hashes = hashes
    const registration = ctx.chains.get(chainId)
    this.#rejected = registration === undefined
      ? `chain ${chainId} was never registered by a writer`
      : ((p) => (p === null ? null : `chain ${chainId} registration ${p}`))(checkSignature(ctx.key,
          { chain: registration.id, writer: registration.writer, startedAt: registration.startedAt },
          registration.keyId, registration.signature))
    const checkpoints = ctx.checkpoints.get(chainId) ?? []
    this.#retention = checkpoints.filter((c) => c.kind === 'retention').sort((a, b) => b.seq - a.seq)[0]
    this.#start = ctx.starts?.get(chainId)
    this.#expectedPrev = this.#retention?.hash ?? ZERO
    this.#expectedSeq = (this.#retention?.seq ?? 0) + 1
    if (this.#start !== undefined && this.#start.seq > this.#expectedSeq) {
      this.#expectedPrev = this.#start.prevHash
      this.#expectedSeq = this.#start.seq
    }
    for (const cp of checkpoints) {
      const problem = checkSignature(ctx.key,
        { chain: cp.chain, seq: cp.seq, hash: cp.hash, kind: cp.kind, createdAt: cp.createdAt }, cp.keyId, cp.signature)
      if (problem !== null) this.issues.push(issue('checkpoint', null, `${cp.kind} checkpoint at seq ${cp.seq} ${problem}`, chainId))
      if (cp.kind === 'retention') continue
      if (this.#start !== undefined && cp.seq < this.#start.seq) continue
      if (this.#retention !== undefined && cp.seq <= this.#retention.seq) continue
      this.#pending.set(cp.seq, [...(this.#pending.get(cp.seq) ?? []), cp])
    }
  }

  visit (r: StoredEvent): void {
    const issues = this.issues
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
    if (r.prevHash !== this.#expectedPrev) {
      if (previous !== null && r.prevHash === previous.prevHash) {
        issues.push(issue('inserted', previous, `event ${r.seq} links past it to its predecessor`))
      } else if (this.#hashes.has(r.prevHash)) {
        issues.push(issue('reordered', r, 'links to an event that is not its predecessor'))
      } else if (r.seq > this.#expectedSeq) {
        const count = r.seq - this.#expectedSeq
        issues.push(issue('deleted', r, `${count} event${count === 1 ? '' : 's'} before this one (seq ${this.#expectedSeq}…${r.seq - 1}) missing`))
      } else if (previous !== null) {
        issues.push(issue('modified', previous, 'rewritten: its successor links to a different hash'))
      } else {
        issues.push(issue('deleted', r, 'the events before this one are missing'))
      }
    } else if (r.seq !== this.#expectedSeq) {
      issues.push(issue('reordered', r, `renumbered: seq ${r.seq} where ${this.#expectedSeq} belongs`))
    }
    for (const cp of this.#pending.get(r.seq) ?? []) {
      if (cp.hash !== r.hash) issues.push(issue('modified', r, `hash differs from the ${cp.kind} checkpoint at seq ${cp.seq}`))
    }
    this.#pending.delete(r.seq)
    this.#expectedPrev = r.hash
    this.#expectedSeq = r.seq + 1
    this.#previous = r
  }

  /** Checkpoints whose event never came: deleted (past the last event: the tail). */
  finish (): VerifyIssue[] {
    if (this.#rejected !== null) return this.issues
    const lastSeq = this.#previous?.seq ?? (this.#retention?.seq ?? 0)
    for (const seq of [...this.#pending.keys()].sort((a, b) => a - b)) {
      this.issues.push(issue('deleted', null, seq > lastSeq
        ? `checkpoint names seq ${seq}, the chain ends at ${lastSeq}: its tail was deleted`
        : `event seq ${seq} named by a checkpoint is missing`, this.#chainId))
    }
    return this.issues
  }
}

/** Verifies one chain's events (any order) and returns its issues. */
export function verifyChain (chainId: string, events: StoredEvent[], ctx: VerifyContext): VerifyIssue[] {
  const rows = [...events].sort((a, b) => a.seq - b.seq || Number(a.id) - Number(b.id))
  const walker = new ChainWalker(chainId, ctx, new Set(rows.map((r) => r.hash).filter((h): h is string => h !== null)))
  for (const r of rows) walker.visit(r)
  return walker.finish()
}

/** Verifies everything: groups events by chain; unchained events are reported as inserted. */
export function verifyAll (events: Iterable<StoredEvent>, ctx: VerifyContext, warnings: string[] = []): VerifyReport {
  const byChain = new Map<string, StoredEvent[]>()
  const issues: VerifyIssue[] = []
  let count = 0
  for (const e of events) {
    count++
    if (e.chain === null) {
      issues.push(issue('inserted', e, 'not part of any chain'))
      continue
    }
    const list = byChain.get(e.chain)
    if (list === undefined) byChain.set(e.chain, [e])
    else list.push(e)
  }
  for (const [chain, list] of byChain) issues.push(...verifyChain(chain, list, ctx))
  // A chain with checkpoints but no events left (all deleted, not by retention).
  for (const [chain, cps] of ctx.checkpoints) {
    if (byChain.has(chain)) continue
    if (ctx.starts !== undefined && !ctx.starts.has(chain)) continue
    issues.push(...verifyChain(chain, [], ctx).filter((i) => i.kind !== 'inserted'))
    void cps
  }
  if (ctx.key === undefined) warnings.push('no checkpoint key configured: signatures were not checked')
  const checkpoints = [...ctx.checkpoints.values()].reduce((n, l) => n + l.length, 0)
  return { ok: issues.length === 0, events: count, chains: byChain.size, checkpoints, issues, warnings }
}
