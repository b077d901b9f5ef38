// The store port. Everything that persists (recording, approvals, migrations) talks to this
// interface, never to postgres.js or PGlite, so the embedded default and a real Postgres run
// the same SQL and are tested the same way.
//
// Values both adapters return alike, so callers need not care which engine answered:
//  - int8 / bigint / count(*) → string (exact; JS numbers lose precision past 2^53)
//  - numeric → string, float8 → number, int2/int4 → number, bool → boolean
//  - timestamptz → Date (millisecond precision; select `to_char(...)` where µs matter)
//  - bytea → Uint8Array (a Buffer on Postgres, which is a Uint8Array)
//  - json/jsonb → parsed value; text[] → string[]
// postgres.js re-encodes a parameter by the type the server infers for it: a string bound to
// jsonb is encoded again (stored as a JSON string, not an object), one bound to timestamptz
// goes through a JS Date (µs lost). To pass such a value verbatim, send text and cast in SQL:
// `$1::text::jsonb`, `$1::text::timestamptz`.

/** A minimal structured logger; a pino logger fits. */
export interface StoreLog {
  info: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
}

/** What can run SQL: the store itself, or one open transaction. */
export interface StoreTx {
  /** One statement with positional `$1…$n` parameters; the rows it returns. */
  query: <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>
  /** A script of several statements without parameters (migrations). */
  exec: (script: string) => Promise<void>
}

export interface Store extends StoreTx {
  readonly kind: 'postgres' | 'pglite'
  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection; rolls back when `fn` throws.
   * Use `tx`, not the store, inside `fn`: the embedded store has one connection and refuses
   * a nested call rather than deadlock.
   */
  transaction: <T>(fn: (tx: StoreTx) => Promise<T>) => Promise<T>
  /**
   * Runs `fn` while holding the session-level advisory lock `key`, held on one connection
   * for the whole call, so other gateways sharing the database wait. `fn` uses the store as
   * usual.
   */
  withAdvisoryLock: <T>(key: bigint | number, fn: () => Promise<T>) => Promise<T>
  /** Resolves when the store answers; ERR_STORE_UNAVAILABLE otherwise. */
  ping: () => Promise<void>
  close: () => Promise<void>
}
