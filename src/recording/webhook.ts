// Forwards committed events and checkpoints to a SIEM. It runs beside the request path, never
// on it: `push` only appends to a bounded in-memory queue (dropping the oldest items and
// counting them when a receiver is down for long), and one delivery loop posts batches with
// retries and exponential backoff. The store stays the record of truth; this is a copy, and
// a signed checkpoint in the SIEM is an anchor outside the database an attacker would edit:
// checkpoint items carry their creation time, key id and signature, so what the SIEM keeps
// can be checked against the store later (`sluice audit verify --checkpoints`, outside.ts).
import { createHmac } from 'node:crypto'
import type { WebhookConfig } from '../config/types.js'
import type { StoreLog } from '../store/store.js'

export interface WebhookItem {
  /** `approval`: a notification of the approvals room (src/approvals/notify.ts). */
  type: 'event' | 'checkpoint' | 'approval'
  [field: string]: unknown
}

export interface WebhookSinkOptions {
  /** The request body of a batch; default `{ items: [...] }`. */
  encode?: (batch: WebhookItem[]) => string
  /** Told of each batch once it is delivered or given up on (the approvals trail records it). */
  settled?: (batch: WebhookItem[], delivered: boolean) => void
}

export const SIGNATURE_HEADER = 'x-sluice-signature'
export const TIMESTAMP_HEADER = 'x-sluice-timestamp'

/** `sha256=<hex>` over `<timestamp>.<body>`: the timestamp is signed too, so a replay shows. */
export function webhookSignature (secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

export interface WebhookStats { delivered: number, dropped: number, failedAttempts: number, queued: number }

export class WebhookSink {
  readonly #config: WebhookConfig
  readonly #log: StoreLog | undefined
  readonly #queue: WebhookItem[] = []
  #running: Promise<void> | null = null
  #closed = false
  #wake: (() => void) | null = null
  readonly #abort = new AbortController()
  readonly stats: WebhookStats = { delivered: 0, dropped: 0, failedAttempts: 0, queued: 0 }

  readonly #encode: (batch: WebhookItem[]) => string
  readonly #settled: WebhookSinkOptions['settled']

  constructor (config: WebhookConfig, log?: StoreLog, options: WebhookSinkOptions = {}) {
    this.#config = config
    this.#log = log
    this.#encode = options.encode ?? ((batch) => JSON.stringify({ items: batch }))
    this.#settled = options.settled
  }

  push (items: WebhookItem[]): void {
    if (this.#closed) return
    this.#queue.push(...items)
    const excess = this.#queue.length - this.#config.maxQueue
    if (excess > 0) {
      this.#queue.splice(0, excess)
      this.stats.dropped += excess
      this.#log?.warn({ dropped: excess }, 'webhook: queue full, oldest items dropped')
    }
    this.stats.queued = this.#queue.length
    this.#running ??= this.#loop().finally(() => { this.#running = null })
  }

  async #loop (): Promise<void> {
    while (this.#queue.length > 0 && !this.#closed) {
      const batch = this.#queue.slice(0, this.#config.batchSize)
      const ok = await this.#deliver(batch)
      if (!ok) {
        // Given up on after maxAttempts: counted as dropped, the loop moves on.
        this.stats.dropped += batch.length
      } else {
        this.stats.delivered += batch.length
      }
      this.#queue.splice(0, batch.length)
      this.stats.queued = this.#queue.length
      try {
        this.#settled?.(batch, ok)
      } catch {
        // A listener's failure is its own; delivery goes on.
      }
    }
  }

  async #deliver (batch: WebhookItem[]): Promise<boolean> {
    const body = this.#encode(batch)
    for (let attempt = 1; attempt <= this.#config.maxAttempts; attempt++) {
      const timestamp = String(Math.floor(Date.now() / 1000))
      try {
        const res = await fetch(this.#config.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: webhookSignature(this.#config.secret, timestamp, body)
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(this.#config.timeoutMs), this.#abort.signal])
        })
        await res.arrayBuffer().catch(() => undefined)
        if (res.ok) return true
        // A 4xx other than 408/429 will not get better by retrying.
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          this.#log?.warn({ status: res.status }, 'webhook: receiver refused the batch; not retried')
          return false
        }
      } catch {
        // Network error or timeout: retried below.
      }
      this.stats.failedAttempts++
      if (attempt === this.#config.maxAttempts || this.#closed) break
      await this.#sleep(this.#backoff(attempt))
    }
    this.#log?.warn({ items: batch.length }, 'webhook: delivery abandoned after retries')
    return false
  }

  /** Exponential with full jitter, capped: base·2^(n-1) at most, never synchronized replicas. */
  #backoff (attempt: number): number {
    const ceiling = Math.min(this.#config.maxBackoffMs, this.#config.backoffMs * 2 ** (attempt - 1))
    return ceiling / 2 + Math.random() * ceiling / 2
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      timer.unref()
      this.#wake = () => { clearTimeout(timer); resolve() }
    })
    this.#wake = null
  }

  /** Gives in-flight deliveries `graceMs` to finish, then stops retrying. */
  async close (graceMs = 2000): Promise<void> {
    const running = this.#running
    if (running === null) {
      this.#closed = true
      return
    }
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())
    await Promise.race([running, timeout])
    // Whatever is still queued is lost with the process; the store has every event anyway.
    this.#closed = true
    this.#abort.abort()
    this.#wake?.()
  }
}
