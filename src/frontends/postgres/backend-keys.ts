// The backend keys a PostgreSQL listener issued, kept in the store (migration 0009) so that a
// CancelRequest reaching another replica than the session's is still routed to the right
// upstream backend. One SQL implementation over the Store port (Postgres and PGlite alike).
import type { Store } from '../../store/store.js'

export interface BackendKey {
  pid: number
  secret: number
  connection: string
  upstreamPid: number
  upstreamSecret: number
}

export interface BackendKeyStore {
  /** Registers a key; false when the pid is taken (the caller draws another). */
  put: (key: BackendKey) => Promise<boolean>
  /** The upstream key behind Sluice's (pid, secret), or undefined: no such session, or a wrong secret. */
  find: (pid: number, secret: number) => Promise<BackendKey | undefined>
  remove: (pid: number) => Promise<void>
}

export function storeBackendKeys (store: Store): BackendKeyStore {
  return {
    async put (key) {
      const rows = await store.query<{ pid: number }>(
        `insert into postgres_backend_keys (pid, secret, connection, upstream_pid, upstream_secret)
         values ($1, $2, $3, $4, $5) on conflict (pid) do nothing returning pid`,
        [key.pid, key.secret, key.connection, key.upstreamPid, key.upstreamSecret])
      return rows.length === 1
    },
    async find (pid, secret) {
      const rows = await store.query<{ connection: string, upstream_pid: number, upstream_secret: number }>(
        'select connection, upstream_pid, upstream_secret from postgres_backend_keys where pid = $1 and secret = $2', [pid, secret])
      const row = rows[0]
      return row === undefined ? undefined : { pid, secret, connection: row.connection, upstreamPid: row.upstream_pid, upstreamSecret: row.upstream_secret }
    },
    async remove (pid) {
      await store.query('delete from postgres_backend_keys where pid = $1', [pid])
    }
  }
}
