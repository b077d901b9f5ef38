// Applies `migrations/NNNN_name.sql` in order, once each, recording what ran in
// `schema_migrations`. Applied migrations are immutable: an edited one is refused rather than
// silently leaving databases that ran the old text out of step with the ones that run the new.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ERR_MIGRATION_FAILED, isSluiceError } from '../errors.js'
import type { Store, StoreLog } from './store.js'

export interface MigrateOptions {
  /** Directory of `NNNN_name.sql` files; default the package's `migrations/`. */
  directory?: string
  log?: StoreLog
}

export interface Migration {
  version: number
  name: string
  /** sha256 (hex) of the file with line endings normalised to LF. */
  checksum: string
  sql: string
}

/** 'sluice:m' in ASCII: a fixed key every gateway sharing a database agrees on. */
export const MIGRATION_LOCK_KEY = 0x736c756963653a6dn

const FILE_PATTERN = /^(\d{4})_([A-Za-z0-9_-]+)\.sql$/

/**
 * The package root is the nearest folder above this module holding package.json: two levels
 * up from src/store under tsx and vitest, three from dist/src/store once compiled.
 */
export function defaultMigrationsDirectory (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'migrations')
    const parent = dirname(dir)
    if (parent === dir) return join(process.cwd(), 'migrations')
    dir = parent
  }
}

export function checksumOf (sql: string): string {
  // A checkout with CRLF line endings is the same migration, not an edited one.
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n'), 'utf8').digest('hex')
}

function failed (what: string, reason: string): Error {
  return new ERR_MIGRATION_FAILED(what, reason)
}

export async function readMigrations (directory: string): Promise<Migration[]> {
  let files: string[]
  try {
    files = await readdir(directory)
  } catch (err) {
    throw failed(directory, `cannot read the migrations directory: ${(err as Error).message}`)
  }
  const migrations: Migration[] = []
  const seen = new Map<number, string>()
  for (const file of files.filter((f) => f.endsWith('.sql')).sort()) {
    const match = FILE_PATTERN.exec(file)
    if (match === null) throw failed(file, 'a migration file must be named NNNN_name.sql')
    const version = Number(match[1])
    const other = seen.get(version)
    if (other !== undefined) throw failed(file, `version ${version} is also used by ${other}`)
    seen.set(version, file)
    const sql = await readFile(join(directory, file), 'utf8')
    migrations.push({ version, name: match[2] ?? '', checksum: checksumOf(sql), sql })
  }
  return migrations
}

interface AppliedRow {
  version: number
  name: string
  checksum: string
}

const label = (m: { version: number, name: string }): string =>
  `${String(m.version).padStart(4, '0')}_${m.name}`

/**
 * Brings the store's schema up to date and returns the versions this call applied (empty
 * when there was nothing to do). Safe to run from several gateways at once: the whole run
 * holds one advisory lock, so a late starter waits and then finds everything applied.
 */
export async function migrate (store: Store, options: MigrateOptions = {}): Promise<number[]> {
  const directory = options.directory ?? defaultMigrationsDirectory()
  const log = options.log
  const migrations = await readMigrations(directory)

  return await store.withAdvisoryLock(MIGRATION_LOCK_KEY, async () => {
    await store.query(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`)
    const rows = await store.query<AppliedRow>(
      'select version, name, checksum from schema_migrations order by version')
    const applied = new Map(rows.map((row) => [Number(row.version), row]))

    for (const m of migrations) {
      const row = applied.get(m.version)
      if (row !== undefined && row.checksum !== m.checksum) {
        throw failed(label(m), `its file changed after it was applied (recorded sha256 ${row.checksum}, ` +
          `file ${m.checksum}); applied migrations are immutable, add a new migration instead`)
      }
    }
    const known = new Set(migrations.map((m) => m.version))
    for (const row of rows) {
      // A newer gateway may have migrated ahead of this one during a rolling deploy.
      if (!known.has(Number(row.version))) {
        log?.warn({ version: row.version, name: row.name }, 'store: database has a migration this build does not know')
      }
    }

    const done: number[] = []
    for (const m of migrations) {
      if (applied.has(m.version)) continue
      try {
        await store.transaction(async (tx) => {
          await tx.exec(m.sql)
          await tx.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)',
            [m.version, m.name, m.checksum])
        })
      } catch (err) {
        if (isSluiceError(err)) throw err
        throw Object.assign(failed(label(m), (err as Error).message ?? String(err)), { cause: err })
      }
      log?.info({ version: m.version, name: m.name }, 'store: migration applied')
      done.push(m.version)
    }
    return done
  })
}
