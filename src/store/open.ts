// Picks the adapter from configuration: a Postgres URL when one is set, the embedded store
// otherwise, so a first run needs no database at all. PGlite (a Postgres compiled to
// WebAssembly) is loaded only when it is the store: a gateway on Postgres never pays its memory.
import type { StoreConfig } from '../config/types.js'
import { openPostgresStore } from './postgres.js'
import type { Store, StoreLog } from './store.js'

export async function openStore (config: StoreConfig, log?: StoreLog): Promise<Store> {
  if (config.url !== undefined && config.url !== '') {
    const store = openPostgresStore({ url: config.url, poolSize: config.poolSize, log })
    log?.info({ kind: store.kind, poolSize: config.poolSize }, 'store: postgres pool created')
    return store
  }
  const { openPgliteStore } = await import('./pglite.js')
  return await openPgliteStore({ dataDir: config.dataDir, log })
}
