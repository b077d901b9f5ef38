// Shared store fixtures: a throwaway Postgres database per test file (so parallel runs never
// collide) and a temporary PGlite data directory, behind one shape so a suite can run the
// same tests on both engines with `describe.each(storeEngines())('$name', …)`.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface ThrowawayDatabase {
  name: string
  url: string
  drop: () => Promise<void>
}

/** The same server as `url`, database `postgres`: where databases are created and dropped. */
function adminUrl (url: string): string {
  const u = new URL(url)
  u.pathname = '/postgres'
  return u.toString()
}

/** Creates `sluice_t_<random>` on the test server; `drop()` removes it, connections and all. */
export async function createThrowawayDatabase (baseUrl = TEST_DATABASE_URL): Promise<ThrowawayDatabase> {
  const name = `sluice_t_${randomBytes(6).toString('hex')}`
  const admin = postgres(adminUrl(baseUrl), { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    // An identifier cannot be a bound parameter; `name` is built above from hex only.
    await admin.unsafe(`create database "${name}"`)
  } finally {
    await admin.end({ timeout: 5 })
  }
  const u = new URL(baseUrl)
  u.pathname = `/${name}`
  return {
    name,
    url: u.toString(),
    async drop () {
      const sql = postgres(adminUrl(baseUrl), { max: 1, onnotice: () => {}, connect_timeout: 10 })
      try {
        await sql.unsafe(`drop database if exists "${name}" with (force)`)
      } finally {
        await sql.end({ timeout: 5 })
      }
    }
  }
}

export interface TestStoreEngine {
  name: 'pglite' | 'postgres'
  /**
   * A store on this engine's database, created on first use. Every call opens a new store
   * (a new pool) on the same database; for PGlite close the previous one first, since a data
   * directory belongs to one open store at a time.
   */
  open: () => Promise<Store>
  /** Closes every store this engine opened and deletes its database or data directory. */
  cleanup: () => Promise<void>
}

export function pgliteEngine (): TestStoreEngine {
  let dir: string | undefined
  const opened: Store[] = []
  return {
    name: 'pglite',
    async open () {
      dir ??= await mkdtemp(join(tmpdir(), 'sluice-pglite-'))
      const store = await openPgliteStore({ dataDir: join(dir, 'data') })
      opened.push(store)
      return store
    },
    async cleanup () {
      await Promise.all(opened.splice(0).map(async (s) => { await s.close() }))
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
      dir = undefined
    }
  }
}

export function postgresEngine (options: { poolSize?: number } = {}): TestStoreEngine {
  let db: Promise<ThrowawayDatabase> | undefined
  const opened: Store[] = []
  return {
    name: 'postgres',
    async open () {
      db ??= createThrowawayDatabase()
      const store = openPostgresStore({ url: (await db).url, poolSize: options.poolSize ?? 4 })
      opened.push(store)
      return store
    },
    async cleanup () {
      await Promise.all(opened.splice(0).map(async (s) => { await s.close() }))
      if (db !== undefined) await (await db).drop()
      db = undefined
    }
  }
}

/** One fresh engine of each kind; nothing is created until `open()`. */
export function storeEngines (): TestStoreEngine[] {
  return [pgliteEngine(), postgresEngine()]
}

/** Alias matching the name other suites were told to expect. */
export const withStores = storeEngines
