// Store adapter for embedded PGlite: the zero-setup default, a real Postgres compiled to WASM
// living in a data directory (or in memory for tests). It has exactly one connection, so
// everything is queued through one mutex: a statement from another caller must never land
// inside someone else's open transaction.
import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { ERR_STORE_UNAVAILABLE, StoreError } from '../errors.js'
import type { Store, StoreLog, StoreTx } from './store.js'

export const DEFAULT_DATA_DIR = '.sluice/data'
export const MEMORY = 'memory://'

export interface PgliteStoreOptions {
  /** A directory (created when missing) or `memory://`; default `.sluice/data`. */
  dataDir?: string
  log?: StoreLog
}

/** FIFO mutex: callers run one at a time, in arrival order. */
class Mutex {
  #tail: Promise<void> = Promise.resolve()

  async run<T> (fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail
    let release!: () => void
    this.#tail = new Promise<void>((resolve) => { release = resolve })
    await previous
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

const INT8 = 20

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function unavailable (reason: string, cause?: unknown): Error {
  return Object.assign(new ERR_STORE_UNAVAILABLE(`pglite: ${reason}`), { cause })
}

function runner (db: Pick<PGlite, 'query' | 'exec'>): StoreTx {
  return {
    async query<T> (text: string, params: unknown[] = []): Promise<T[]> {
      return (await db.query<T>(text, params)).rows
    },
    async exec (script: string): Promise<void> {
      await db.exec(script)
    }
  }
}

export async function openPgliteStore (options: PgliteStoreOptions = {}): Promise<Store> {
  const target = options.dataDir ?? DEFAULT_DATA_DIR
  const inMemory = target.startsWith(MEMORY)
  const dataDir = inMemory ? target : resolve(target)
  let db: PGlite
  try {
    if (!inMemory) mkdirSync(dataDir, { recursive: true })
    // int8 as a string, as postgres.js returns it: PGlite's default (a JS number) silently
    // rounds ids and counters past 2^53, and the two engines must answer alike.
    db = await PGlite.create(dataDir, { parsers: { [INT8]: (value: string) => value } })
  } catch (err) {
    throw unavailable(`cannot open data directory ${dataDir}: ${messageOf(err)}`, err)
  }
  options.log?.info({ dataDir }, 'store: embedded PGlite opened')

  const mutex = new Mutex()
  const locks = new Map<string, Mutex>()
  // Marks the async context of an open transaction, to refuse (not deadlock on) a statement
  // sent to the store instead of to `tx`: it would queue behind the transaction forever.
  const inTransaction = new AsyncLocalStorage<boolean>()
  const direct = runner(db)
  let closed = false

  async function exclusive<T> (fn: () => Promise<T>): Promise<T> {
    if (inTransaction.getStore() === true) {
      throw new StoreError('the embedded store has one connection: inside transaction(), use the tx handle, not the store')
    }
    if (closed) throw unavailable('the store is closed')
    try {
      return await mutex.run(fn)
    } catch (err) {
      throw db.closed ? unavailable(messageOf(err), err) : err
    }
  }

  return {
    kind: 'pglite',

    async query<T> (text: string, params?: unknown[]): Promise<T[]> {
      return await exclusive(async () => await direct.query<T>(text, params))
    },

    async exec (script: string): Promise<void> {
      await exclusive(async () => await direct.exec(script))
    },

    async transaction<T> (fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      return await exclusive(async () =>
        await db.transaction(async (tx) => await inTransaction.run(true, async () => await fn(runner(tx)))))
    },

    async withAdvisoryLock<T> (key: bigint | number, fn: () => Promise<T>): Promise<T> {
      // A data directory belongs to one process, and pg_advisory_lock is re-entrant within
      // PGlite's single session, so an in-process lock per key is the whole story here.
      const name = BigInt(key).toString()
      let lock = locks.get(name)
      if (lock === undefined) {
        lock = new Mutex()
        locks.set(name, lock)
      }
      return await lock.run(fn)
    },

    async ping (): Promise<void> {
      await exclusive(async () => { await direct.query('select 1') })
    },

    async close (): Promise<void> {
      if (closed) return
      // Let queued work finish, then refuse new work.
      await mutex.run(async () => {
        closed = true
        await db.close()
      })
    }
  }
}
