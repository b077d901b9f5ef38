// Messages for a tool call that may reach another replica than the one running it (migration
// 0013): a client's `notifications/cancelled` and its answer to an elicitation Sluice sent. Each
// POST has its own server, and a load balancer may send the next POST anywhere, so the replica
// that receives such a message hands it over locally when the call runs there and otherwise
// writes it to the store, where the running replica looks for it (polling, like the Snowflake
// statement heartbeats: no replica-to-replica traffic). Rows are bound to the principal (owner
// digest) and MCP session, so nobody else can cancel or answer for a call.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Store } from '../../store/store.js'

const KEEP = "interval '1 hour'"
const PRUNE_EVERY_MS = 60_000
const POLL_MS = 1000
/**
 * A cancellation written shortly before the call it names reached its replica (the two POSTs
 * raced) still counts; ids are not reused within a session, so an older row cannot be another call's.
 */
const CANCEL_SLACK_SECONDS = 60

export interface SignalTarget {
  owner: string
  /** The MCP session; '' for a stateless client. */
  session: string
}

type Reply = Record<string, unknown>

/** Ids Sluice gives the requests it sends a client, so their answers can be told from anything else. */
export const ELICITATION_ID_PREFIX = 'sluice-elicit-'

export class McpSignals {
  readonly #store: Store
  readonly #cancels = new Map<string, AbortController>()
  readonly #replies = new Map<string, (reply: Reply) => void>()
  #pruned = 0

  constructor (store: Store) {
    this.#store = store
  }

  /**
   * A call now running here: aborts `controller` on a cancellation received here or, found by
   * polling the store, on another replica. Returns the function that ends the watch.
   */
  running (target: SignalTarget, requestId: string | number, controller: AbortController): () => void {
    const key = keyOf(target, 'cancel', String(requestId))
    this.#cancels.set(key, controller)
    const stop = new AbortController()
    const since = new Date(Date.now() - CANCEL_SLACK_SECONDS * 1000).toISOString()
    void (async () => {
      try {
        while (!stop.signal.aborted && !controller.signal.aborted) {
          await sleep(POLL_MS, undefined, { signal: stop.signal })
          const rows = await this.#store.query<{ id: string }>(
            `select id::text as id from mcp_signals where owner = $1 and session_id = $2 and kind = 'cancel' and request_id = $3
             and created_at >= $4::timestamptz limit 1`, [target.owner, target.session, String(requestId), since]).catch(() => [])
          if (rows.length > 0) controller.abort()
        }
      } catch {
        // The watch was ended.
      }
    })()
    return () => {
      stop.abort()
      if (this.#cancels.get(key) === controller) this.#cancels.delete(key)
    }
  }

  /** A `notifications/cancelled`: the call stops here if it runs here, else wherever it runs. */
  async cancel (target: SignalTarget, requestId: string | number): Promise<void> {
    const local = this.#cancels.get(keyOf(target, 'cancel', String(requestId)))
    if (local !== undefined) { local.abort(); return }
    await this.#insert(target, 'cancel', String(requestId), null)
  }

  /** A client's answer to a request Sluice sent it (by its id); false when it is not one of ours. */
  async reply (target: SignalTarget, message: Reply): Promise<boolean> {
    const id = message.id
    if (typeof id !== 'string' || !id.startsWith(ELICITATION_ID_PREFIX)) return false
    const local = this.#replies.get(keyOf(target, 'reply', id))
    if (local !== undefined) { local(message); return true }
    await this.#insert(target, 'reply', id, JSON.stringify(message))
    return true
  }

  /** Waits for the client's answer to request `id`, received by this replica or another. */
  async awaitReply (target: SignalTarget, id: string, options: { until: number, signal: AbortSignal }): Promise<Reply | undefined> {
    const key = keyOf(target, 'reply', id)
    const stop = new AbortController()
    const onAbort = (): void => { stop.abort() }
    options.signal.addEventListener('abort', onAbort, { once: true })
    try {
      return await new Promise<Reply | undefined>((resolve) => {
        this.#replies.set(key, (reply) => { stop.abort(); resolve(reply) })
        void (async () => {
          try {
            while (!stop.signal.aborted && Date.now() < options.until) {
              const rows = await this.#store.query<{ message: Reply | string }>(
                `delete from mcp_signals where owner = $1 and session_id = $2 and kind = 'reply' and request_id = $3 returning message`,
                [target.owner, target.session, id]).catch(() => [])
              const row = rows[0]
              if (row !== undefined) { resolve(typeof row.message === 'string' ? JSON.parse(row.message) as Reply : row.message); return }
              await sleep(Math.min(POLL_MS, Math.max(0, options.until - Date.now())), undefined, { signal: stop.signal })
            }
          } catch {
            // Ended: answered here, or the call was cancelled.
          }
          resolve(undefined)
        })()
      })
    } finally {
      stop.abort()
      options.signal.removeEventListener('abort', onAbort)
      this.#replies.delete(key)
    }
  }

  async #insert (target: SignalTarget, kind: 'cancel' | 'reply', requestId: string, message: string | null): Promise<void> {
    const now = Date.now()
    if (now - this.#pruned > PRUNE_EVERY_MS) {
      this.#pruned = now
      await this.#store.query(`delete from mcp_signals where created_at < now() - ${KEEP}`).catch(() => undefined)
    }
    await this.#store.query('insert into mcp_signals (owner, session_id, kind, request_id, message) values ($1, $2, $3, $4, $5::text::jsonb)',
      [target.owner, target.session, kind, requestId, message])
  }
}

function keyOf (target: SignalTarget, kind: string, id: string): string {
  return `${target.owner}\u0000${target.session}\u0000${kind}\u0000${id}`
}
