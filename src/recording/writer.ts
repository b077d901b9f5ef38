// Group commit for session events. Concurrent round trips each hand their event to `write`;
// whatever arrives while one INSERT is in flight waits and goes into the next, so the store
// sees one statement per batch instead of one per request. A caller's promise settles only
// when the statement holding ITS event has committed (or failed), which is what lets the
// front end release the response afterwards: record, then release, at batch throughput.
//
// A writer has a few lanes (batch.lanes), each its own chain with at most one INSERT in
// flight: while one lane's statement runs in the database, the next lane takes what queued up,
// so the gateway's CPU and the database's overlap instead of taking turns. Within a lane the
// chain stays simple and exact: a batch is linked in memory right before it is written, and if
// the write fails the lane moves to a fresh chain — the failed batch may or may not have
// committed (a connection lost after COMMIT), and continuing from either guess could fork it.
// An event may bring companion rows (src/store/companions.ts): its batch's statement writes
// them too, so they commit exactly when the event does.
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { ERR_STORE_UNAVAILABLE, isSluiceError } from '../errors.js'
import { withCompanions, type Companion } from '../store/companions.js'
import type { Store, StoreLog } from '../store/store.js'
import { eventDigest, GENESIS, isoMicros, linkHash, nowMicros, signBody, type CheckpointBody, type CheckpointKey } from './chain.js'
import { INSERT_BATCH, toBatchRow, type AuditEvent, type ChainedEvent } from './event.js'

/** An event before the writer chains it. */
export type PendingEvent = Omit<AuditEvent, 'chain' | 'seq'> & { resultCapture: Buffer | null, sqlSearch: string | null }

export interface WriterOptions {
  /** Chains written in parallel, each with one statement in flight. */
  lanes: number
  maxEvents: number
  maxDelayMs: number
  maxQueue: number
  checkpointEveryEvents: number
  checkpointIntervalSeconds: number
  key?: CheckpointKey
  log?: StoreLog
  /** Told about every committed batch (the webhook sink); must not throw or block. */
  onCommitted?: (events: ChainedEvent[]) => void
  /** Told about every checkpoint written, signature included (the webhook's outside copy). */
  onCheckpoint?: (checkpoint: SignedCheckpoint) => void
  /** Told when a batch failed (the recorder drops cached session ids it may have relied on). */
  onFailure?: () => void
}

interface Waiting {
  event: PendingEvent
  companions: readonly Companion[] | undefined
  resolve: (value: ChainedEvent) => void
  reject: (err: Error) => void
  /** Retried on its own after its batch was refused for its data, not for the store. */
  alone?: boolean
}

interface ChainState {
  id: string
  seq: number
  head: Buffer
  registered: boolean
  checkpointedSeq: number
  checkpointedAt: number
}

interface Lane {
  chain: ChainState
  flushing: Promise<void> | null
}

export class EventWriter {
  readonly #store: Store
  readonly #options: WriterOptions
  #queue: Waiting[] = []
  readonly #lanes: Lane[]
  #scheduled = false
  #failed = false
  #closed = false
  #timer: NodeJS.Timeout | null = null
  readonly writerName = `${hostname()}:${process.pid}`
  /** Committed statements and the events they held (mean batch size = events / batches). */
  readonly stats = { batches: 0, events: 0, failedBatches: 0 }

  constructor (store: Store, options: WriterOptions) {
    this.#store = store
    this.#options = options
    this.#lanes = Array.from({ length: Math.max(1, options.lanes) }, () => ({ chain: this.#newChain(), flushing: null }))
  }

  /** The first lane's chain (the only one when lanes = 1). */
  get chainId (): string { return (this.#lanes[0] as Lane).chain.id }
  get chainIds (): string[] { return this.#lanes.map((l) => l.chain.id) }
  get pending (): number { return this.#queue.length }
  /** True after a failed batch until one succeeds: admission refuses new statements meanwhile. */
  get failing (): boolean { return this.#failed }

  /** Starts the periodic checkpoint timer (unref'd: it never keeps a process alive). */
  start (): void {
    if (this.#timer !== null) return
    const everyMs = this.#options.checkpointIntervalSeconds * 1000
    this.#timer = setInterval(() => {
      for (const lane of this.#lanes) {
        if (Date.now() - lane.chain.checkpointedAt < everyMs) continue
        this.#checkpointLane(lane, 'periodic').catch((err: Error) => this.#options.log?.warn({ err: err.message }, 'recording: periodic checkpoint failed'))
      }
    }, Math.max(250, Math.min(everyMs / 4, 5000)))
    this.#timer.unref()
  }

  /**
   * Resolves with the chained event once it has committed, with its `companions` in the same
   * statement; rejects with ERR_STORE_UNAVAILABLE.
   */
  async write (event: PendingEvent, companions?: readonly Companion[]): Promise<ChainedEvent> {
    if (this.#closed) throw new ERR_STORE_UNAVAILABLE('the recorder is closed')
    if (this.#queue.length >= this.#options.maxQueue) {
      throw new ERR_STORE_UNAVAILABLE(`${this.#queue.length} events are waiting for the store`)
    }
    return await new Promise<ChainedEvent>((resolve, reject) => {
      this.#queue.push({ event, companions, resolve, reject })
      this.#schedule()
    })
  }

  #schedule (): void {
    if (this.#scheduled) return
    if (!this.#lanes.some((l) => l.flushing === null)) return
    this.#scheduled = true
    const run = (): void => {
      this.#scheduled = false
      for (const lane of this.#lanes) {
        if (this.#queue.length === 0) return
        if (lane.flushing !== null) continue
        lane.flushing = this.#flushLoop(lane).finally(() => {
          lane.flushing = null
          if (this.#queue.length > 0) this.#schedule()
        })
      }
    }
    if (this.#options.maxDelayMs > 0) setTimeout(run, this.#options.maxDelayMs)
    else setImmediate(run)
  }

  async #flushLoop (lane: Lane): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#queue[0]?.alone === true ? 1 : this.#options.maxEvents)
      await this.#flush(lane, batch)
    }
  }

  async #flush (lane: Lane, batch: Waiting[]): Promise<void> {
    const chain = lane.chain
    let seq = chain.seq
    let head = chain.head
    const chained: ChainedEvent[] = batch.map(({ event }) => {
      seq += 1
      const full = { ...event, chain: chain.id, seq } as ChainedEvent
      full.prevHash = head
      full.eventDigest = eventDigest(full)
      full.hash = linkHash(head, full.eventDigest)
      head = full.hash
      return full
    })
    try {
      if (!chain.registered) await this.#register(chain)
      const { sql, params } = withCompanions(INSERT_BATCH, 1, batch.flatMap((w) => w.companions ?? []))
      await this.#store.query(sql, [JSON.stringify(chained.map(toBatchRow)), ...params])
    } catch (err) {
      // A fresh chain: the old one may or may not hold this batch (see the header comment).
      if (lane.chain === chain) lane.chain = this.#newChain()
      this.stats.failedBatches++
      this.#options.onFailure?.()
      const unavailable = isSluiceError(err) && err.code === 'SLUICE_STORE_UNAVAILABLE'
      this.#options.log?.warn({ err: (err as Error).message, events: batch.length }, 'recording: batch write failed')
      if (!unavailable && batch.length > 1) {
        // The store refused the data, not the connection: one bad event (or companion row) must
        // not fail the round trips it happened to share a batch with. Each is retried on its own, first.
        for (const w of batch) w.alone = true
        this.#queue.unshift(...batch)
        return
      }
      this.#failed = true
      const refusal = unavailable ? err as Error : Object.assign(new ERR_STORE_UNAVAILABLE((err as Error).message), { cause: err })
      for (const w of batch) w.reject(refusal)
      return
    }
    chain.seq = seq
    chain.head = head
    this.#failed = false
    this.stats.batches++
    this.stats.events += batch.length
    batch.forEach((w, i) => w.resolve(chained[i] as ChainedEvent))
    this.#options.onCommitted?.(chained)
    if (chain.seq - chain.checkpointedSeq >= this.#options.checkpointEveryEvents) {
      this.#checkpointLane(lane, 'periodic').catch((e: Error) => this.#options.log?.warn({ err: e.message }, 'recording: checkpoint failed'))
    }
  }

  #newChain (): ChainState {
    return { id: randomUUID(), seq: 0, head: GENESIS, registered: false, checkpointedSeq: 0, checkpointedAt: Date.now() }
  }

  async #register (chain: ChainState): Promise<void> {
    const body = { chain: chain.id, writer: this.writerName, startedAt: isoMicros(nowMicros()) }
    const signature = signBody(this.#options.key, body)
    await this.#store.query(
      'insert into recording_chains (id, writer, started_at, key_id, signature) values ($1, $2, $3, $4, decode($5, \'hex\')) on conflict (id) do nothing',
      [body.chain, body.writer, body.startedAt, this.#options.key?.id ?? null, signature?.toString('hex') ?? null])
    chain.registered = true
  }

  /**
   * Signs and stores "this chain is at seq N with hash H", for every lane. Written after the
   * batch it covers committed, so a checkpoint never names an event that is not in the store.
   */
  async checkpoint (kind: 'periodic' | 'close'): Promise<void> {
    await Promise.all(this.#lanes.map(async (lane) => { await this.#checkpointLane(lane, kind) }))
  }

  async #checkpointLane (lane: Lane, kind: 'periodic' | 'close'): Promise<void> {
    const chain = lane.chain
    // A close is written even where a periodic checkpoint already stands: it alone tells the
    // verifier that nothing may follow, so an event appended later shows as inserted.
    if (chain.seq === 0 || (chain.seq === chain.checkpointedSeq && kind !== 'close')) return
    const seq = chain.seq
    const hash = chain.head.toString('hex')
    chain.checkpointedSeq = seq
    chain.checkpointedAt = Date.now()
    const written = await insertCheckpoint(this.#store, this.#options.key, { chain: chain.id, seq, hash, kind, createdAt: isoMicros(nowMicros()) })
    this.#options.onCheckpoint?.(written)
  }

  /** Waits for queued events, writes a closing checkpoint, stops the timer. */
  async close (): Promise<void> {
    if (this.#closed) return
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    for (;;) {
      const busy = this.#lanes.map((l) => l.flushing).filter((f) => f !== null)
      if (busy.length > 0) await Promise.all(busy)
      else if (this.#queue.length > 0 || this.#scheduled) await new Promise((resolve) => setTimeout(resolve, 1))
      else break
    }
    this.#closed = true
    await this.checkpoint('close').catch((err: Error) => this.#options.log?.warn({ err: err.message }, 'recording: closing checkpoint failed'))
  }
}

/** A checkpoint as stored: its body, and the key and signature over it (null without a key). */
export interface SignedCheckpoint extends CheckpointBody {
  keyId: string | null
  signature: string | null
}

export async function insertCheckpoint (
  store: Pick<Store, 'query'>,
  key: CheckpointKey | undefined,
  body: CheckpointBody
): Promise<SignedCheckpoint> {
  const signature = signBody(key, body)
  await store.query(
    `insert into checkpoints (chain, seq, hash, kind, created_at, key_id, signature)
     values ($1, $2::bigint, decode($3, 'hex'), $4, $5, $6, decode($7, 'hex'))`,
    [body.chain, String(body.seq), body.hash, body.kind, body.createdAt, key?.id ?? null, signature?.toString('hex') ?? null])
  return { ...body, keyId: key?.id ?? null, signature: signature?.toString('hex') ?? null }
}
