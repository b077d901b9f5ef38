// Idempotency keys as records in the store (migrations/0003_idempotency.sql), behind a port so
// the Snowflake front ends never hold them in a gateway's memory: a key reused on any replica is
// seen by all. One SQL implementation runs on both store engines (Postgres and PGlite), which the
// tests run it on. Expiry is part of every lookup (`expires_at > now()`), so correctness never
// waits for a purge; the purge is a bounded, indexed delete of the oldest expired rows.
import { ERR_STORE_UNAVAILABLE } from '../errors.js'
import type { Store } from '../store/store.js'

/** Whose key, on which connection: keys of different principals or connections never meet. */
export interface IdempotencyKey {
  /** A digest of the principal (issuer and subject), never the subject in clear. */
  owner: string
  connection: string
  requestId: string
}

/** What a key is bound to: the first request that used it. */
export interface IdempotencyBinding {
  handleId: string
  frontEnd: string
  statementHash: string
  requestHash: string
  /** The gateway process holding the handle. */
  replica: string
  /** ISO 8601, UTC. */
  createdAt: string
}

export interface IdempotencyStore {
  /**
   * Binds the key unless a live binding exists (one bound to `replacing` does not count: its
   * statement never reached the warehouse). `claimed` says whether this call bound it; the
   * binding returned is the one in force (this call's, or the earlier request's).
   */
  claim: (key: IdempotencyKey, binding: Omit<IdempotencyBinding, 'createdAt'>, ttlSeconds: number, replacing?: string) => Promise<{ claimed: boolean, binding: IdempotencyBinding }>
  /** The live binding of the key, if any. */
  lookup: (key: IdempotencyKey) => Promise<IdempotencyBinding | undefined>
  /** Deletes up to `limit` expired keys, oldest first; how many went. */
  purgeExpired: (limit: number) => Promise<number>
}

const BINDING = `handle_id::text as "handleId", front_end as "frontEnd", statement_hash as "statementHash",
  request_hash as "requestHash", replica, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "createdAt"`

// A row that expired, or one bound to the handle being replaced, is as good as absent: the
// conflict branch takes it over.
const CLAIM = `insert into idempotency_keys as k
    (owner, connection, request_id, handle_id, front_end, statement_hash, request_hash, replica, created_at, expires_at)
  values ($1, $2, $3, $4::uuid, $5, $6, $7, $8, now(), now() + make_interval(secs => $9::float8))
  on conflict (owner, connection, request_id) do update set
    handle_id = excluded.handle_id, front_end = excluded.front_end, statement_hash = excluded.statement_hash,
    request_hash = excluded.request_hash, replica = excluded.replica, created_at = excluded.created_at,
    expires_at = excluded.expires_at
  where k.expires_at <= now() or k.handle_id = $10::uuid
  returning ${BINDING}`

const LOOKUP = `select ${BINDING} from idempotency_keys
  where owner = $1 and connection = $2 and request_id = $3 and expires_at > now()`

/** Exported for the test that shows it is served by the expiry index. */
export const PURGE = `delete from idempotency_keys where (owner, connection, request_id) in (
  select owner, connection, request_id from idempotency_keys where expires_at <= now() order by expires_at limit $1)`

export class StoreIdempotencyKeys implements IdempotencyStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  async claim (key: IdempotencyKey, binding: Omit<IdempotencyBinding, 'createdAt'>, ttlSeconds: number, replacing?: string): Promise<{ claimed: boolean, binding: IdempotencyBinding }> {
    // A live row the insert ran into can expire (or be purged) before it is read: try again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const [mine] = await this.#store.query<IdempotencyBinding>(CLAIM, [key.owner, key.connection, key.requestId,
        binding.handleId, binding.frontEnd, binding.statementHash, binding.requestHash, binding.replica, ttlSeconds, replacing ?? null])
      if (mine !== undefined) return { claimed: true, binding: mine }
      const earlier = await this.lookup(key)
      if (earlier !== undefined) return { claimed: false, binding: earlier }
    }
    throw new ERR_STORE_UNAVAILABLE('an idempotency key could be neither claimed nor read; nothing was run')
  }

  async lookup (key: IdempotencyKey): Promise<IdempotencyBinding | undefined> {
    return (await this.#store.query<IdempotencyBinding>(LOOKUP, [key.owner, key.connection, key.requestId]))[0]
  }

  async purgeExpired (limit: number): Promise<number> {
    const rows = await this.#store.query<{ n: string }>(`with gone as (${PURGE} returning 1) select count(*) as n from gone`, [limit])
    return Number(rows[0]?.n ?? 0)
  }
}
