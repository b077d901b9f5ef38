// The recording service a gateway runs: sessions (cached, so a continuing session costs no
// extra statement), the batched chained writer, the admission probe, periodic checkpoints,
// the retention timer and the SIEM webhook. Plain class, no Fastify: the plugin is wiring.
import type { RecordingConfig } from '../config/types.js'
import { ERR_STORE_UNAVAILABLE, isSluiceError } from '../errors.js'
import type { Store, StoreLog } from '../store/store.js'
import { buildEvent, type RoundTripFacts } from './build.js'
import { isoMicros, loadCheckpointKey, type CheckpointKey } from './chain.js'
import type { ChainedEvent } from './event.js'
import { createParamRedactor, type ParamRedactor } from './fingerprint.js'
import { runRetention, type RetentionReport } from './retention.js'
import { SessionRecorder, type OpenSessionInput } from './sessions.js'
import { WebhookSink } from './webhook.js'
import { EventWriter } from './writer.js'

/** Which session a round trip belongs to: the same shape the session table is opened with. */
export type SessionRef = OpenSessionInput

const SESSION_CACHE_MAX = 10_000

export class Recording {
  readonly store: Store
  readonly config: RecordingConfig
  readonly sessions: SessionRecorder
  readonly writer: EventWriter
  readonly key: CheckpointKey | undefined
  readonly webhook: WebhookSink | undefined
  readonly #redact: ParamRedactor
  readonly #log: StoreLog | undefined
  // session key + issuer + subject → session id. Keyed by the principal too, so another
  // principal presenting the same key misses the cache and is refused by the upsert.
  readonly #sessionIds = new Map<string, string>()
  #probe: Promise<void> | null = null
  #nextProbe: Promise<void> | null = null
  #retentionTimer: NodeJS.Timeout | null = null
  #retentionRun: Promise<unknown> | null = null
  readonly #bumps = new Map<string, { n: number, micros: number }>()
  #bumpTimer: NodeJS.Timeout | null = null

  constructor (store: Store, config: RecordingConfig, log?: StoreLog) {
    this.store = store
    this.config = config
    this.#log = log
    this.key = loadCheckpointKey(config.checkpointKey)
    this.sessions = new SessionRecorder(store)
    this.#redact = createParamRedactor({ names: config.redact.params, values: config.redact.values })
    this.webhook = config.webhook === undefined ? undefined : new WebhookSink(config.webhook, log)
    const webhook = this.webhook
    this.writer = new EventWriter(store, {
      ...config.batch,
      checkpointEveryEvents: config.checkpointEveryEvents,
      checkpointIntervalSeconds: config.checkpointIntervalSeconds,
      key: this.key,
      log,
      onCommitted: webhook === undefined ? undefined : (events) => webhook.push(events.map(webhookEvent)),
      onCheckpoint: webhook === undefined ? undefined : (cp) => webhook.push([{ type: 'checkpoint', ...cp }]),
      // A cached session id the store no longer has (retention) would fail every batch it is in.
      onFailure: () => { this.#sessionIds.clear() }
    })
  }

  /** Timers: checkpoints, retention. All unref'd and stopped by close(). */
  start (): void {
    this.writer.start()
    const every = this.config.retention.intervalSeconds
    if (every > 0 && this.#retentionTimer === null) {
      this.#retentionTimer = setInterval(() => { void this.retention().catch(() => undefined) }, every * 1000)
      this.#retentionTimer.unref()
    }
  }

  async retention (now?: Date): Promise<RetentionReport> {
    const webhook = this.webhook
    const run = runRetention(this.store, this.config.retention, this.key, now,
      webhook === undefined ? undefined : (cp) => { webhook.push([{ type: 'checkpoint', ...cp }]) })
    this.#retentionRun = run
    try {
      const report = await run
      this.#log?.info({ ...report }, 'recording: retention done')
      return report
    } catch (err) {
      this.#log?.warn({ err: (err as Error).message }, 'recording: retention failed')
      throw err
    } finally {
      this.#retentionRun = null
    }
  }

  /** Finds or opens the session; cached after the first round trip of a session. */
  async session (ref: SessionRef): Promise<{ id: string, counted: boolean }> {
    const cacheKey = `${ref.sessionKey}\u0000${ref.principal.issuer}\u0000${ref.principal.subject}`
    const cached = this.#sessionIds.get(cacheKey)
    if (cached !== undefined) return { id: cached, counted: false }
    const { id } = await this.sessions.openOrContinue(ref)
    if (this.#sessionIds.size >= SESSION_CACHE_MAX) {
      const oldest = this.#sessionIds.keys().next().value
      if (oldest !== undefined) this.#sessionIds.delete(oldest)
    }
    this.#sessionIds.set(cacheKey, id)
    return { id, counted: true }
  }

  /**
   * Writes the round trip's event and resolves once it has committed. Rejects with
   * ERR_STORE_UNAVAILABLE (or the session's ERR_FORBIDDEN) when it could not be recorded.
   */
  async record (facts: RoundTripFacts, session?: SessionRef): Promise<ChainedEvent> {
    let sessionId: string | null = null
    let counted = true
    if (session !== undefined) {
      try {
        const s = await this.session(session)
        sessionId = s.id
        counted = s.counted
      } catch (err) {
        if (isSluiceError(err)) throw err
        throw Object.assign(new ERR_STORE_UNAVAILABLE((err as Error).message), { cause: err })
      }
    }
    const event = await buildEvent({ ...facts, sessionId }, { redact: this.#redact })
    const written = await this.writer.write(event, facts.companions)
    if (sessionId !== null && !counted) this.#bump(sessionId, facts.startedAtMicros)
    return written
  }

  // A continuing session's counters (event_count, last_seen_at) are bumped in one UPDATE per
  // second rather than in each batch: two lanes updating the same session rows in their
  // INSERTs would wait on each other's row locks. The counters are a convenience for listing
  // sessions; the events themselves are the record, and they are never late.
  #bump (sessionId: string, micros: number): void {
    const b = this.#bumps.get(sessionId)
    if (b === undefined) this.#bumps.set(sessionId, { n: 1, micros })
    else {
      b.n++
      if (micros > b.micros) b.micros = micros
    }
    if (this.#bumpTimer === null) {
      this.#bumpTimer = setTimeout(() => { void this.flushSessionCounters() }, 1000)
      this.#bumpTimer.unref()
    }
  }

  async flushSessionCounters (): Promise<void> {
    if (this.#bumpTimer !== null) clearTimeout(this.#bumpTimer)
    this.#bumpTimer = null
    if (this.#bumps.size === 0) return
    const rows = [...this.#bumps].map(([id, b]) => ({ id, n: b.n, seen: isoMicros(b.micros) }))
    this.#bumps.clear()
    await this.store.query(
      `update sessions s set event_count = s.event_count + b.n, last_seen_at = greatest(s.last_seen_at, b.seen::timestamptz)
       from json_to_recordset($1::text::json) as b(id uuid, n integer, seen text) where s.id = b.id`,
      [JSON.stringify(rows)]).catch((err: Error) => this.#log?.warn({ err: err.message, sessions: rows.length }, 'recording: session counters not updated'))
  }

  /**
   * Resolves when the store answered a probe that STARTED after this call, so a statement
   * admitted now knows the store was reachable after it arrived. Concurrent callers share
   * probes (at most one running and one queued), so the cost is one round trip per burst.
   */
  async ensureWritable (): Promise<void> {
    if (!this.config.admissionCheck) return
    if (this.writer.pending >= this.config.batch.maxQueue) {
      throw new ERR_STORE_UNAVAILABLE(`${this.writer.pending} events are waiting for the store`)
    }
    if (this.#probe === null) {
      this.#probe = this.#runProbe()
      return await this.#probe
    }
    this.#nextProbe ??= this.#probe.catch(() => undefined).then(async () => {
      this.#nextProbe = null
      this.#probe = this.#runProbe()
      return await this.#probe
    })
    return await this.#nextProbe
  }

  async #runProbe (): Promise<void> {
    try {
      await this.store.ping()
    } catch (err) {
      if (isSluiceError(err) && err.code === 'SLUICE_STORE_UNAVAILABLE') throw err
      throw Object.assign(new ERR_STORE_UNAVAILABLE((err as Error).message), { cause: err })
    } finally {
      this.#probe = null
    }
  }

  async close (): Promise<void> {
    if (this.#retentionTimer !== null) clearInterval(this.#retentionTimer)
    this.#retentionTimer = null
    await this.#retentionRun?.catch(() => undefined)
    await this.writer.close()
    await this.flushSessionCounters()
    await this.webhook?.close()
  }
}

/** What the SIEM gets of an event: everything but the captured result itself. */
function webhookEvent (e: ChainedEvent): { type: 'event', [k: string]: unknown } {
  const { resultCapture, prevHash, eventDigest, hash, ...rest } = e
  return { type: 'event', ...rest, prevHash: prevHash.toString('hex'), hash: hash.toString('hex') }
}
