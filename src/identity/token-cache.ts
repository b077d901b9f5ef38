// Verified tokens, remembered by their hash so a client's next request skips the signature
// check (an RS256 verification per request was 4–9% of the gateway's CPU at c=16).
//
// What makes a hit safe: only tokens that verified are stored (a refusal is re-checked every
// time); an entry ends at the token's own `exp` (never later, whatever the clock tolerance) and
// when the issuer's keys are due for a refresh; and it names the key-set generation that
// verified it, so once the JWKS is refetched every token is verified again against the new set
// and one signed by a withdrawn key is refused.
import { createHash } from 'node:crypto'
import type { Principal } from './principal.js'

export interface CachedToken {
  principal: Principal
  /** Milliseconds since the epoch after which the entry is not used. */
  until: number
  /** The key-set generation the signature was checked against. */
  generation: number
}

export const DEFAULT_TOKEN_CACHE_SIZE = 10_000

export class TokenCache {
  readonly #entries = new Map<string, CachedToken>()

  constructor (readonly capacity: number = DEFAULT_TOKEN_CACHE_SIZE) {}

  get size (): number {
    return this.#entries.size
  }

  static keyOf (token: string): string {
    // A hash, not the token: a heap snapshot of the cache then holds nothing replayable.
    return createHash('sha256').update(token).digest('base64url')
  }

  /** The principal of a still-valid entry (a copy: callers may not alter the cached one). */
  get (key: string, now: number, generation: number): Principal | undefined {
    const hit = this.#entries.get(key)
    if (hit === undefined) return undefined
    this.#entries.delete(key)
    if (now >= hit.until || hit.generation !== generation) return undefined
    this.#entries.set(key, hit) // most recently used last
    return copyOf(hit.principal)
  }

  set (key: string, entry: CachedToken, now: number): void {
    if (this.capacity <= 0 || entry.until <= now) return
    this.#entries.delete(key)
    this.#entries.set(key, { ...entry, principal: copyOf(entry.principal) })
    if (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }
}

function copyOf (p: Principal): Principal {
  return { ...p, groups: [...p.groups], roles: [...p.roles], delegation: p.delegation.map((a) => ({ ...a })), expiresAt: new Date(p.expiresAt) }
}
