// Store adapter for a real PostgreSQL through postgres.js: a pool shared by the gateway,
// dynamic SQL through `sql.unsafe` with bound parameters (never interpolated).
import { connect } from 'node:net'
import { Duplex } from 'node:stream'
import postgres from 'postgres'
import { ERR_STORE_UNAVAILABLE } from '../errors.js'
import type { Store, StoreLog, StoreTx } from './store.js'

export interface PostgresStoreOptions {
  url: string
  poolSize: number
  /** Seconds to wait for a connection before the store counts as unavailable. */
  connectTimeoutSeconds?: number
  log?: StoreLog
}

type Sql = postgres.Sql
type Params = postgres.ParameterOrJSON<never>[]

// `simple` is a postgres.js option its types omit. Without parameters it would pick the simple
// protocol, which runs several statements; query() keeps to exactly one, as on PGlite.
const ONE_STATEMENT = { prepare: true, simple: false } as postgres.UnsafeQueryOptions
const SCRIPT = { prepare: false, simple: true } as postgres.UnsafeQueryOptions

// Failures that mean "the database cannot be reached or will not take us", as opposed to an
// error in the statement itself; only these become ERR_STORE_UNAVAILABLE (503, retry later).
const CLIENT_CODES = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH',
  'ENETUNREACH', 'EPIPE'
])
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '3D000', '28000', '28P01'])

function isUnavailable (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return false
  return CLIENT_CODES.has(code) || SQLSTATES.has(code) || code.startsWith('08')
}

function summarise (err: unknown): string {
  const e = err as { code?: unknown, message?: unknown }
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message
}

/** Rethrows a lost-connection failure as ERR_STORE_UNAVAILABLE, anything else unchanged. */
export function mapPostgresError (err: unknown): unknown {
  if (!isUnavailable(err)) return err
  return Object.assign(new ERR_STORE_UNAVAILABLE(`postgres: ${summarise(err)}`), { cause: err })
}

async function guard<T> (run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    throw mapPostgresError(err)
  }
}

function runner (sql: Sql): StoreTx {
  return {
    async query<T> (text: string, params: unknown[] = []): Promise<T[]> {
      const rows = await guard(async () => await sql.unsafe(text, params as Params, ONE_STATEMENT))
      return [...rows] as T[]
    },
    async exec (script: string): Promise<void> {
      await guard(async () => await sql.unsafe(script, [], SCRIPT))
    }
  }
}

/** What postgres.js hands a custom socket factory: its parsed connection target. */
interface DialTarget { host: string[], port: number[], path?: string | false }

const STREAK_GAP_MS = 5_000
const MAX_PAUSE_MS = 1_000
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * postgres.js 3.4.9 reconnects at once and forever when a server accepts TCP and closes it
 * cleanly during startup (a proxy or load balancer with no healthy backend, an HTTP port):
 * the pending query never settles, connect_timeout never fires, and the loop spins a core
 * (porsager/postgres#1193). Dialling through its documented `socket` option lets us pace
 * those retries and, once they have gone on for `budgetMs`, fail the next attempt with an
 * error postgres.js does report. What counts as a failed attempt is a clean close within
 * `budgetMs` of dialling: inside TLS we cannot see whether startup finished, and a working
 * session lives far longer than that.
 */
function guardedDialer (budgetMs: number): (target: DialTarget) => Promise<Duplex> {
  let streakStart: number | undefined
  let lastFailure = 0
  let failures = 0
  let turn = 0
  return async (target) => {
    if (streakStart !== undefined && Date.now() - lastFailure > STREAK_GAP_MS) streakStart = undefined
    if (streakStart === undefined) failures = 0
    const i = turn++ % Math.max(target.host.length, 1)
    const host = target.host[i] ?? 'localhost'
    const port = target.port[i] ?? target.port[0] ?? 5432
    if (streakStart !== undefined) {
      if (Date.now() - streakStart >= budgetMs) {
        streakStart = undefined
        return refusing(host, port, `closed every connection during startup for ${budgetMs / 1000}s`)
      }
      await sleep(Math.min(50 * 2 ** failures, MAX_PAUSE_MS))
    }
    const socket = typeof target.path === 'string' && target.path !== '' ? connect({ path: target.path }) : connect({ host, port })
    const dialled = Date.now()
    socket.once('close', (hadError) => {
      // An error close (refused, reset) already rejects the query; only a clean one loops.
      if (hadError) return
      const now = Date.now()
      if (now - dialled >= budgetMs) {
        streakStart = undefined
        return
      }
      lastFailure = now
      streakStart ??= now
      failures++
    })
    // postgres.js names `socket.host:port` in its connection errors.
    return Object.assign(socket, { host, port })
  }
}

/** A socket whose first write fails, which postgres.js turns into a rejected query. */
function refusing (host: string, port: number, reason: string): Duplex {
  const err = Object.assign(new Error(`${host}:${port} ${reason}`), { code: 'CONNECTION_CLOSED' })
  const stub = new Duplex({
    read () {},
    write (_chunk, _encoding, callback) { callback(err) }
  })
  return Object.assign(stub, { host, port })
}

function lockParam (key: bigint | number): string {
  return BigInt(key).toString()
}

export function openPostgresStore (options: PostgresStoreOptions): Store {
  const connectTimeout = options.connectTimeoutSeconds ?? 10
  const settings = {
    max: options.poolSize,
    connect_timeout: connectTimeout,
    onnotice: () => {},
    connection: { application_name: 'sluice' },
    // Documented by postgres.js, missing from its types.
    socket: guardedDialer(connectTimeout * 1000)
  } as postgres.Options<{}>
  const sql = postgres(options.url, settings)
  const base = runner(sql)

  return {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,

    async transaction<T> (fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      return await guard(async () => await sql.begin(async (tx) => await fn(runner(tx as unknown as Sql)))) as T
    },

    async withAdvisoryLock<T> (key: bigint | number, fn: () => Promise<T>): Promise<T> {
      // The lock lives on a connection of its own, outside the pool: `fn` needs pool
      // connections for its own work, and a pool of one would otherwise wait on itself.
      const lockSql = postgres(options.url,
        { ...settings, max: 1, socket: guardedDialer(connectTimeout * 1000) } as postgres.Options<{}>)
      try {
        await guard(async () => await lockSql.unsafe('select pg_advisory_lock($1::bigint)', [lockParam(key)]))
        try {
          return await fn()
        } finally {
          // Ending the session releases the lock too; unlocking first is just prompt.
          await lockSql.unsafe('select pg_advisory_unlock($1::bigint)', [lockParam(key)]).catch((err: unknown) => {
            options.log?.warn({ err: summarise(err) }, 'store: advisory unlock failed; the lock ends with its session')
          })
        }
      } finally {
        await lockSql.end({ timeout: 5 })
      }
    },

    async ping (): Promise<void> {
      await base.query('select 1')
    },

    async close (): Promise<void> {
      await sql.end({ timeout: 5 })
    }
  }
}
