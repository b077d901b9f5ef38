// Idle upstream sessions the SQL API reuses between its stateless requests. A Snowflake session
// carries state a statement can read (LAST_QUERY_ID(), RESULT_SCAN of earlier results, session
// variables, temporary objects), so a session is only ever reused by the principal it was opened
// for, in the same context: the key is the principal's identity (issuer + subject, as handles
// use) with database, schema, warehouse and role. This class only keeps the books; the upstream
// client opens and closes the sessions.
import type { UpstreamSession } from './upstream.js'
import type { SessionContext } from './query-data.js'

/**
 * Per-key idle limit × this is the pool's overall limit: with principals in the key, the number
 * of keys grows with the callers, and every idle session is an open session upstream.
 */
const KEYS_PER_POOL = 32

export function poolKey (owner: string, c: SessionContext): string {
  return JSON.stringify([owner, c.database ?? '', c.schema ?? '', c.warehouse ?? '', c.role ?? ''])
}

export class IdleSessions {
  readonly #perKey: number
  readonly #max: number
  /** Insertion order is release order: the first key holds the least recently released session. */
  readonly #idle = new Map<string, UpstreamSession[]>()
  #count = 0

  constructor (perKey: number) {
    this.#perKey = perKey
    this.#max = perKey * KEYS_PER_POOL
  }

  get size (): number { return this.#count }

  take (key: string): UpstreamSession | undefined {
    const list = this.#idle.get(key)
    const session = list?.pop()
    if (session === undefined) return undefined
    this.#count--
    if (list?.length === 0) this.#idle.delete(key)
    return session
  }

  /** Keeps a session for reuse; returns the sessions to close (this one when its key is full, or the oldest). */
  put (key: string, session: UpstreamSession): UpstreamSession[] {
    const list = this.#idle.get(key) ?? []
    if (list.length >= this.#perKey) return [session]
    list.push(session)
    // Re-inserting moves the key to the end: most recently released.
    this.#idle.delete(key)
    this.#idle.set(key, list)
    this.#count++
    const evicted: UpstreamSession[] = []
    while (this.#count > this.#max) {
      const [oldestKey, oldest] = this.#idle.entries().next().value as [string, UpstreamSession[]]
      const gone = oldest.shift()
      if (gone !== undefined) evicted.push(gone)
      this.#count--
      if (oldest.length === 0) this.#idle.delete(oldestKey)
    }
    return evicted
  }

  drain (): UpstreamSession[] {
    const all = [...this.#idle.values()].flat()
    this.#idle.clear()
    this.#count = 0
    return all
  }
}
