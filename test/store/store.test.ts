import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreError } from '../../src/errors.js'
import { openStore } from '../../src/store/open.js'
import { openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { storeEngines, TEST_DATABASE_URL } from '../support/stores.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe.each(storeEngines())('store on $name', (engine) => {
  let store: Store
  beforeAll(async () => {
    store = await engine.open()
    await store.exec('create table t (id integer primary key, v text); create table log (who text, at integer)')
  })
  afterAll(async () => { await engine.cleanup() })

  it('answers ping and reports its kind', async () => {
    await store.ping()
    expect(store.kind).toBe(engine.name)
  })

  it('binds positional parameters and returns values alike on both engines', async () => {
    const [row] = await store.query<Record<string, unknown>>(
      'select $1::bigint as big, $2::text as s, $3::text[] as arr, $4::text::jsonb as j, 1.5::numeric as n, ' +
      "2.5::float8 as f, 7 as i, true as b, '\\x0102'::bytea as raw, count(*) as c from (values (1)) v",
      ['9007199254740993', "it's; drop table t --", ['a', 'b'], '{"k":[1,2]}'])
    expect(row).toEqual({
      big: '9007199254740993', s: "it's; drop table t --", arr: ['a', 'b'], j: { k: [1, 2] },
      n: '1.5', f: 2.5, i: 7, b: true, raw: expect.any(Uint8Array), c: '1'
    })
    expect([...(row?.raw as Uint8Array)]).toEqual([1, 2])
  })

  it('runs exactly one statement per query()', async () => {
    await expect(store.query('select 1; select 2')).rejects.toThrow()
  })

  it('commits a transaction and rolls one back when it throws', async () => {
    await store.transaction(async (tx) => {
      await tx.query('insert into t (id, v) values ($1, $2)', [1, 'kept'])
    })
    await expect(store.transaction(async (tx) => {
      await tx.query('insert into t (id, v) values ($1, $2)', [2, 'dropped'])
      throw new StoreError('abort on purpose')
    })).rejects.toThrow('abort on purpose')
    expect(await store.query('select id, v from t order by id')).toEqual([{ id: 1, v: 'kept' }])
  })

  it('never interleaves two concurrent transactions', async () => {
    // Each transaction writes, yields, and writes again; interleaving would mix the pairs.
    const run = async (who: string): Promise<void> => {
      await store.transaction(async (tx) => {
        await tx.query('insert into log (who, at) values ($1, 1)', [who])
        await sleep(30)
        await tx.query('insert into log (who, at) values ($1, 2)', [who])
        if (who === 'b') throw new StoreError('b rolls back')
      })
    }
    const settled = await Promise.allSettled([run('a'), run('b'), run('c')])
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    const rows = await store.query<{ who: string }>('select who from log order by who, at')
    expect(rows.map((r) => r.who)).toEqual(['a', 'a', 'c', 'c'])
  })

  it('serialises callers of the same advisory lock', async () => {
    const events: string[] = []
    const hold = async (who: string): Promise<void> => {
      await store.withAdvisoryLock(42, async () => {
        events.push(`${who}+`)
        await store.query('select 1')
        await sleep(40)
        events.push(`${who}-`)
      })
    }
    await Promise.all([hold('x'), hold('y')])
    expect(['x+,x-,y+,y-', 'y+,y-,x+,x-']).toContain(events.join())
  })
})

// Each PGlite start compiles WASM and runs initdb: slow when other suites share the machine.
describe('PGlite specifics', { timeout: 120_000 }, () => {
  it('refuses a store call inside its own transaction instead of deadlocking', async () => {
    const store = await openPgliteStore({ dataDir: 'memory://' })
    try {
      await expect(store.transaction(async () => await store.query('select 1')))
        .rejects.toBeInstanceOf(StoreError)
      await store.ping()
    } finally {
      await store.close()
    }
  })

  it('creates a nested data directory and answers ERR_STORE_UNAVAILABLE once closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-open-'))
    try {
      const store = await openStore({ dataDir: join(dir, 'a', 'b', 'data'), migrateOnStart: false, poolSize: 1 })
      expect(store.kind).toBe('pglite')
      await store.close()
      await expect(store.query('select 1')).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE', statusCode: 503 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('Postgres specifics', () => {
  it('openStore picks Postgres when a URL is set', async () => {
    const store = await openStore({ url: TEST_DATABASE_URL, dataDir: 'unused', migrateOnStart: false, poolSize: 1 })
    try {
      expect(store.kind).toBe('postgres')
      await store.ping()
    } finally {
      await store.close()
    }
  })

  it('answers ERR_STORE_UNAVAILABLE quickly when the server is unreachable', async () => {
    const store = openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test', poolSize: 1, connectTimeoutSeconds: 1 })
    const started = Date.now()
    try {
      await expect(store.ping()).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE', statusCode: 503 })
      await expect(store.query('select $1::int', [1])).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      await expect(store.transaction(async (tx) => await tx.query('select 1')))
        .rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      await store.close()
    }
  })

  // A listener that takes the TCP connection and then misbehaves, like a proxy in front of a
  // dead database. Returns its port and a stop function.
  async function fakeServer (onSocket: (socket: Socket) => void): Promise<{ port: number, stop: () => Promise<void> }> {
    const sockets = new Set<Socket>()
    const server: Server = createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      onSocket(socket)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    return {
      port,
      stop: async () => {
        for (const socket of sockets) socket.destroy()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    }
  }

  // postgres.js alone retries these forever without settling the query (porsager/postgres#1193).
  it.each([
    ['closes at once', (socket: Socket) => { socket.end() }],
    ['answers as an HTTP server', (socket: Socket) => { socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n') }]
  ])('answers ERR_STORE_UNAVAILABLE when a server accepts and %s', async (_name, behave) => {
    const fake = await fakeServer(behave)
    const store = openPostgresStore({ url: `postgres://postgres@127.0.0.1:${fake.port}/test`, poolSize: 1, connectTimeoutSeconds: 1 })
    try {
      let started = Date.now()
      await expect(store.ping()).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      expect(Date.now() - started).toBeLessThan(4_000)
      started = Date.now()
      await expect(store.query('select 1')).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      expect(Date.now() - started).toBeLessThan(4_000)
    } finally {
      await store.close()
      await fake.stop()
    }
  })

  it('answers ERR_STORE_UNAVAILABLE when a server accepts and never answers', async () => {
    const fake = await fakeServer(() => {})
    const store = openPostgresStore({ url: `postgres://postgres@127.0.0.1:${fake.port}/test`, poolSize: 1, connectTimeoutSeconds: 1 })
    const started = Date.now()
    try {
      await expect(store.ping()).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      await store.close()
      await fake.stop()
    }
  })

  it('answers ERR_STORE_UNAVAILABLE when the database does not exist', async () => {
    const url = new URL(TEST_DATABASE_URL)
    url.pathname = '/sluice_t_does_not_exist'
    const store = openPostgresStore({ url: url.toString(), poolSize: 1, connectTimeoutSeconds: 2 })
    try {
      await expect(store.ping()).rejects.toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
    } finally {
      await store.close()
    }
  })

  it('leaves statement errors as they are', async () => {
    const store = openPostgresStore({ url: TEST_DATABASE_URL, poolSize: 1 })
    try {
      await expect(store.query('select * from no_such_table_here')).rejects.toMatchObject({ code: '42P01' })
    } finally {
      await store.close()
    }
  })
})
