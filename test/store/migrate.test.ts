import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { defaultMigrationsDirectory, migrate, readMigrations } from '../../src/store/migrate.js'
import { openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { createThrowawayDatabase, pgliteEngine, storeEngines } from '../support/stores.js'

const log = pino({ level: 'silent' })
// Each PGlite start compiles WASM and runs initdb: a few seconds alone, much more when other
// suites share the machine.
const slow = { timeout: 120_000 }
const shipped = defaultMigrationsDirectory()
// The shipped versions, read from the directory: a new migration does not break these tests.
const VERSIONS = (await readMigrations(shipped)).map((m) => m.version)

/** A scratch copy of the shipped migrations plus `extra` files, to edit freely. */
async function scratchMigrations (extra: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-mig-'))
  for (const m of await readMigrations(shipped)) {
    const file = `${String(m.version).padStart(4, '0')}_${m.name}.sql`
    await copyFile(join(shipped, file), join(dir, file))
  }
  for (const [file, sql] of Object.entries(extra)) await writeFile(join(dir, file), sql)
  return dir
}

async function tables (store: Store): Promise<string[]> {
  const rows = await store.query<{ name: string }>(
    "select table_name as name from information_schema.tables where table_schema = 'public' order by 1")
  return rows.map((r) => r.name)
}

describe('default migrations directory', () => {
  it('resolves to the package migrations/ holding 0001_sessions.sql', () => {
    expect(existsSync(join(shipped, '0001_sessions.sql'))).toBe(true)
  })
})

describe('migrate on PGlite in memory', slow, () => {
  it('creates the session tables and records the migration', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    try {
      expect(await migrate(store, { log })).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
      expect(await tables(store)).toEqual(['approval_decisions', 'approval_grant_uses', 'approval_grants', 'approvals',
        'bigquery_jobs', 'bigquery_page_cursors', 'checkpoints', 'connector_sessions', 'idempotency_keys',
        'mcp_events', 'mcp_sessions', 'mcp_signals', 'postgres_backend_keys', 'recording_chains', 'schema_migrations', 'session_events', 'sessions', 'statement_handles'])
      const [row] = await store.query<{ version: number, name: string, checksum: string }>(
        'select version, name, checksum from schema_migrations order by version')
      expect(row).toMatchObject({ version: 1, name: 'sessions' })
      expect(row?.checksum).toMatch(/^[0-9a-f]{64}$/)
    } finally {
      await store.close()
    }
  })
})

describe.each(storeEngines())('migrate on $name', slow, (engine) => {
  afterAll(async () => { await engine.cleanup() })

  it('applies once; a second run applies nothing', async () => {
    const store = await engine.open()
    expect(await migrate(store)).toEqual(VERSIONS)
    expect(await migrate(store)).toEqual([])
    const [count] = await store.query<{ n: string }>('select count(*) as n from schema_migrations')
    expect(count?.n).toBe(String(VERSIONS.length))
    await store.close()
  })

  it('persists across close and reopen', async () => {
    const store = await engine.open()
    expect(await migrate(store)).toEqual([])
    expect(await tables(store)).toContain('session_events')
    await store.close()
  })
})

describe('migrate refusals', slow, () => {
  let dir: string
  let engine: ReturnType<typeof pgliteEngine>
  beforeEach(async () => { engine = pgliteEngine() })
  afterEach(async () => {
    await engine.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses when an applied migration changed', async () => {
    dir = await scratchMigrations({ '0090_extra.sql': 'create table extra (id integer);\n' })
    const store = await engine.open()
    expect(await migrate(store, { directory: dir })).toEqual([...VERSIONS, 90])
    await writeFile(join(dir, '0090_extra.sql'), 'create table extra (id bigint);\n')
    await expect(migrate(store, { directory: dir })).rejects.toMatchObject({
      code: 'SLUICE_MIGRATION_FAILED',
      message: expect.stringContaining('0090_extra')
    })
  })

  it('treats CRLF line endings as the same migration', async () => {
    dir = await scratchMigrations({ '0090_extra.sql': 'create table extra (id integer);\n' })
    const store = await engine.open()
    await migrate(store, { directory: dir })
    await writeFile(join(dir, '0090_extra.sql'), 'create table extra (id integer);\r\n')
    expect(await migrate(store, { directory: dir })).toEqual([])
  })

  it('rolls back a failing migration and records nothing of it', async () => {
    dir = await scratchMigrations({ '0090_broken.sql': 'create table half (id integer);\nselect * from missing_table;\n' })
    const store = await engine.open()
    await expect(migrate(store, { directory: dir })).rejects.toMatchObject({
      code: 'SLUICE_MIGRATION_FAILED',
      message: expect.stringContaining('0090_broken')
    })
    expect(await tables(store)).not.toContain('half')
    const rows = await store.query<{ version: number }>('select version from schema_migrations order by version')
    expect(rows.map((r) => r.version)).toEqual(VERSIONS)
  })

  it('refuses a badly named migration file', async () => {
    dir = await scratchMigrations({ '2_oops.sql': 'select 1;' })
    const store = await engine.open()
    await expect(migrate(store, { directory: dir })).rejects.toMatchObject({ code: 'SLUICE_MIGRATION_FAILED' })
  })
})

describe('concurrent migrate', slow, () => {
  const extra = {
    '0090_a.sql': 'create table a (id integer);\nselect pg_sleep(0.2);\n',
    '0091_b.sql': 'create table b (id integer);\n'
  }

  it('two gateways on one Postgres database: both succeed, each migration applied once', async () => {
    const db = await createThrowawayDatabase()
    const dir = await scratchMigrations(extra)
    // Pools of one: the advisory lock must not starve the migrations it guards.
    const stores = [openPostgresStore({ url: db.url, poolSize: 1 }), openPostgresStore({ url: db.url, poolSize: 1 })]
    try {
      const results = await Promise.all(stores.map(async (s) => await migrate(s, { directory: dir })))
      // The lock spans the whole run, so one gateway applies everything and the other nothing.
      expect(results.map((r) => r.join(',')).sort()).toEqual(['', [...VERSIONS, 90, 91].join(',')])
      const rows = await stores[0]!.query<{ version: number }>('select version from schema_migrations order by 1')
      expect(rows.map((r) => r.version)).toEqual([...VERSIONS, 90, 91])
    } finally {
      await Promise.all(stores.map(async (s) => { await s.close() }))
      await db.drop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('two runs on one PGlite store: both succeed, each migration applied once', async () => {
    const dir = await scratchMigrations(extra)
    const store = await openPgliteStore({ dataDir: 'memory://' })
    try {
      const results = await Promise.all([migrate(store, { directory: dir }), migrate(store, { directory: dir })])
      expect(results.map((r) => r.join(',')).sort()).toEqual(['', [...VERSIONS, 90, 91].join(',')])
    } finally {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
