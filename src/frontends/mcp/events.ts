// Resumable MCP response streams (Streamable HTTP `Last-Event-ID`), with the events in the store
// (migration 0012): the SDK's transport stores every message of a response stream here before
// it writes it (and still stores it when the client has gone), and a client that reconnects to
// any replica is replayed what it missed and then follows the stream, by polling the store, until
// the response that ends it — so a tool call waiting minutes for an approval survives a broken
// connection and a load balancer that sends the reconnect elsewhere.
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Store } from '../../store/store.js'

const KEEP = "interval '1 day'"
const PRUNE_EVERY_MS = 60_000
const BATCH = 200

interface Row { id: string, message: JSONRPCMessage | Record<string, never> | string }

function parsed (message: Row['message']): Record<string, unknown> {
  return (typeof message === 'string' ? JSON.parse(message) : message) as Record<string, unknown>
}

/** A message that is a JSON-RPC response (result or error): the end of its request's stream. */
export function isResponse (message: unknown): boolean {
  const m = message as { id?: unknown, result?: unknown, error?: unknown } | null
  return m !== null && typeof m === 'object' && m.id !== undefined && (m.result !== undefined || m.error !== undefined)
}

export class StoreEventLog {
  readonly #store: Store
  #pruned = 0

  constructor (store: Store) {
    this.#store = store
  }

  /** The SDK's EventStore for one principal's streams. */
  forOwner (owner: string): EventStore {
    const store = this.#store
    return {
      storeEvent: async (streamId, message) => {
        await this.#prune()
        const rows = await store.query<{ id: string }>('insert into mcp_events (stream_id, owner, message) values ($1, $2, $3::text::jsonb) returning id::text as id',
          [streamId, owner, JSON.stringify(message)])
        return (rows[0] as { id: string }).id
      },
      getStreamIdForEventId: async (eventId) => await this.streamOf(owner, eventId),
      replayEventsAfter: async (lastEventId, { send }) => {
        const streamId = await this.streamOf(owner, lastEventId)
        if (streamId === undefined) throw new Error('unknown event id')
        for (const row of await this.after(streamId, lastEventId)) await send(row.id, row.message as JSONRPCMessage)
        return streamId
      }
    }
  }

  async streamOf (owner: string, eventId: string): Promise<string | undefined> {
    if (!/^\d{1,18}$/.test(eventId)) return undefined
    const rows = await this.#store.query<{ stream_id: string }>('select stream_id from mcp_events where id = $1::text::bigint and owner = $2', [eventId, owner])
    return rows[0]?.stream_id
  }

  async after (streamId: string, eventId: string): Promise<Array<{ id: string, message: Record<string, unknown> }>> {
    const rows = await this.#store.query<Row>(`select id::text as id, message from mcp_events where stream_id = $1 and id > $2::text::bigint order by id limit ${BATCH}`, [streamId, eventId])
    return rows.map((r) => ({ id: r.id, message: parsed(r.message) }))
  }

  /**
   * Writes the stream's events after `lastEventId` as SSE, following it until its response was
   * written, the deadline passed or the client went away. Returns whether the response was sent.
   */
  async follow (streamId: string, lastEventId: string, write: (chunk: string) => boolean, options: { until: number, signal: AbortSignal, intervalMs?: number }): Promise<boolean> {
    let cursor = lastEventId
    for (;;) {
      for (const row of await this.after(streamId, cursor)) {
        cursor = row.id
        // Priming events carry no message: the id alone moves the client's cursor.
        const data = Object.keys(row.message).length === 0 ? '' : JSON.stringify(row.message)
        write(data === '' ? `id: ${row.id}\ndata: \n\n` : `event: message\nid: ${row.id}\ndata: ${data}\n\n`)
        if (isResponse(row.message)) return true
      }
      if (Date.now() >= options.until || options.signal.aborted) return false
      try {
        await sleep(options.intervalMs ?? 500, undefined, { signal: options.signal })
      } catch {
        return false
      }
    }
  }

  async #prune (): Promise<void> {
    const now = Date.now()
    if (now - this.#pruned < PRUNE_EVERY_MS) return
    this.#pruned = now
    await this.#store.query(`delete from mcp_events where created_at < now() - ${KEEP}`).catch(() => undefined)
  }
}
