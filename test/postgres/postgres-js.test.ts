// postgres.js through the PostgreSQL listener: its named prepared statements reused, binds,
// cursors (Execute with a row limit: PortalSuspended), cancel, transactions, masking.
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANARY, startWireGateway, type WireGateway } from './harness.js'

let w: WireGateway
let sql: postgres.Sql

beforeAll(async () => {
  w = await startWireGateway()
  sql = postgres({ host: '127.0.0.1', port: w.port, database: 'app-db', username: 'agent', password: await w.token(), max: 1, onnotice: () => {} })
}, 120_000)
afterAll(async () => {
  await sql?.end({ timeout: 5 })
  await w?.close()
})

describe('postgres.js through the PostgreSQL listener', () => {
  it('reuses its prepared statements with different binds', async () => {
    for (const id of [1, 2, 1]) {
      const rows = await sql`select id, name from customers where id = ${id}`
      expect(rows).toEqual([{ id, name: id === 1 ? 'Ada' : 'Bob' }])
    }
  })

  it('streams a cursor in row-limited portals, every row masked', async () => {
    const sizes: number[] = []
    let total = 0
    for await (const rows of sql`select n, ${"plain"}::text as e from numbers order by n`.cursor(700)) {
      sizes.push(rows.length)
      total += rows.length
      expect(rows.every((r) => r.e === "plain")).toBe(true)
    }
    expect(total).toBe(5000)
    expect(sizes.slice(0, 7)).toEqual([700, 700, 700, 700, 700, 700, 700])
    const masked: string[] = []
    for await (const rows of sql`select email from customers order by id`.cursor(1)) masked.push(rows[0]?.email as string)
    expect(masked).toEqual(['****', '****'])
  })

  it('masks json paths and arrays', async () => {
    const [row] = await sql`select profile, tags, born, salary from customers where id = 1`
    expect(row?.profile).toEqual({ plan: 'pro', secret: '****' })
    expect(row?.tags).toEqual(['****', '****'])
    expect(String(row?.salary)).toBe('0')
    expect(JSON.stringify(row)).not.toContain(CANARY.secret)
  })

  it('cancels a running statement', async () => {
    const query = sql`select pg_sleep(60)`
    const done = query.catch((e: unknown) => e)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await query.cancel()
    const err = await done as postgres.PostgresError
    expect(err.code).toBe('57014')
    expect(await sql`select 3 as three`).toEqual([{ three: 3 }])
  })

  it('runs a transaction and rolls back after an error', async () => {
    const err = await sql.begin(async (tx) => {
      await tx`insert into probe values (${41})`
      await tx`select 1/0`
    }).catch((e: unknown) => e) as postgres.PostgresError
    expect(err.code).toBe('22012')
    expect(await w.direct`select count(*)::int as n from probe where n = 41`).toEqual([{ n: 0 }])
  })

  it('refuses a denied statement with 42501 and the session stays usable', async () => {
    const err = await sql`drop table customers`.catch((e: unknown) => e) as postgres.PostgresError
    expect(err.code).toBe('42501')
    expect(err.message).toContain('deny-ddl-dcl')
    expect(await sql`select count(*)::int as n from customers`).toEqual([{ n: 2 }])
  })
})
