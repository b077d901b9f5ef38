// node-postgres (`pg`) through the PostgreSQL listener against the machine's Postgres: binds,
// prepared statements reused, a denied DROP hidden in a multi-statement message (nothing ran),
// transactions and the failed-transaction state, cancel of a long pg_sleep, masking on text /
// numeric / date / jsonb / array columns with no canary in any byte the client received, a
// forged token refused, and every round trip recorded.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANARY, startWireGateway, type WireGateway } from './harness.js'

let w: WireGateway

beforeAll(async () => { w = await startWireGateway() }, 120_000)
afterAll(async () => { await w?.close() })

async function connect (password?: string): Promise<{ client: pg.Client, received: () => string }> {
  const client = new pg.Client({ host: '127.0.0.1', port: w.port, database: 'app-db', user: 'agent', password: password ?? await w.token() })
  const chunks: Buffer[] = []
  const stream = (client as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream
  stream.on('data', (c: Buffer) => chunks.push(c))
  await client.connect()
  return { client, received: () => Buffer.concat(chunks).toString('latin1') }
}

describe('node-postgres through the PostgreSQL listener', () => {
  it('runs queries with binds and reuses a prepared statement', async () => {
    const { client } = await connect()
    try {
      expect((await client.query('select $1::int + $2::int as sum', [40, 2])).rows).toEqual([{ sum: 42 }])
      for (const id of [1, 2]) {
        const r = await client.query({ name: 'by-id', text: 'select id, name from customers where id = $1', values: [id] })
        expect(r.rows).toEqual([{ id, name: id === 1 ? 'Ada' : 'Bob' }])
      }
    } finally { await client.end() }
  })

  it('masks every column type, and no canary reaches the client in any byte', async () => {
    const { client, received } = await connect()
    try {
      const r = await client.query('select id, email, ssn, salary, born, profile, tags from customers where id = 1')
      const row = r.rows[0]
      expect(row.email).toBe('****')
      expect(row.ssn).toMatch(/^\*+$/)
      expect(row.salary).toBe('0')
      expect(row.profile).toEqual({ plan: 'pro', secret: '****' })
      expect(row.tags).toEqual(['****', '****'])
      // Same query through the extended protocol (binds) and the simple one.
      await client.query('select email, profile, tags from customers where id = $1', [1])
      await client.query('select email, profile ->> \'secret\' as s, tags[1] as t from customers')
    } finally { await client.end() }
    const bytes = received()
    for (const canary of Object.values(CANARY).filter((c) => c !== CANARY.birth)) expect(bytes).not.toContain(canary)
    expect(bytes).not.toContain('1961-03-17')
  })

  it('refuses a whole multi-statement message when one statement is denied, before any of it runs', async () => {
    const { client } = await connect()
    try {
      const err = await client.query('insert into probe values (1); drop table customers').catch((e: unknown) => e) as pg.DatabaseError
      expect(err.code).toBe('42501')
      expect(err.message).toContain('deny-ddl-dcl')
      // The session stays usable.
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }])
    } finally { await client.end() }
    expect(await w.direct`select count(*)::int as n from probe`).toEqual([{ n: 0 }])
    expect(await w.direct`select count(*)::int as n from customers`).toEqual([{ n: 2 }])
  })

  it('keeps a transaction on one upstream connection: error state, rollback', async () => {
    const { client } = await connect()
    try {
      await client.query('begin')
      await client.query('insert into probe values (7)')
      const err = await client.query('select 1/0').catch((e: unknown) => e) as pg.DatabaseError
      expect(err.code).toBe('22012')
      const aborted = await client.query('select 1').catch((e: unknown) => e) as pg.DatabaseError
      expect(aborted.code).toBe('25P02')
      await client.query('rollback')
      expect((await client.query('select count(*)::int as n from probe where n = 7')).rows).toEqual([{ n: 0 }])
      await client.query('begin')
      await client.query('insert into probe values (8)')
      await client.query('commit')
    } finally { await client.end() }
    expect(await w.direct`select n from probe where n = 8`).toEqual([{ n: 8 }])
    await w.direct`delete from probe`
  })

  it('cancels a long pg_sleep with the backend key Sluice issued', async () => {
    const { client } = await connect()
    try {
      const started = Date.now()
      const sleeping = client.query('select pg_sleep(60)').catch((e: unknown) => e)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const canceller = new pg.Client({ host: '127.0.0.1', port: w.port })
      canceller.on('error', () => {})
      ;(canceller as unknown as { connection: NodeJS.EventEmitter }).connection.on('error', () => {})
      ;(canceller as unknown as { cancel: (c: pg.Client, q: unknown) => void }).cancel(client, (client as unknown as { _activeQuery: unknown })._activeQuery)
      const err = await sleeping as pg.DatabaseError
      expect(err.code).toBe('57014')
      expect(Date.now() - started).toBeLessThan(30_000)
      expect((await client.query('select 2 as two')).rows).toEqual([{ two: 2 }])
    } finally { await client.end() }
  })

  it('refuses a forged token with 28P01 and records the refusal', async () => {
    const token = await w.token()
    const [h, p, s] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    claims.groups = ['admins']
    const forged = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.')
    const err = await connect(forged).catch((e: unknown) => e) as pg.DatabaseError
    expect(err.code).toBe('28P01')
    expect(err.message).toMatch(/password authentication failed: the token was rejected/)
    const refused = await w.events`select outcome, error_code from session_events where front_end = 'postgres-wire' and outcome = 'unauthenticated'`
    expect(refused.length).toBeGreaterThanOrEqual(1)
  })

  it('answers an unknown dbname with 3D000', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: w.port, database: 'nope', user: 'agent', password: await w.token() })
    const err = await client.connect().catch((e: unknown) => e) as pg.DatabaseError
    expect(err.code).toBe('3D000')
  })

  it('selects the connection by alias, and records every round trip', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: w.port, database: 'app', user: 'agent', password: await w.token() })
    await client.connect()
    const marker = `marker_${Date.now()}`
    try {
      await client.query(`select '${marker}' as m`)
      await client.query('select $1::text as m', [marker])
    } finally { await client.end() }
    const events = await w.events`
      select outcome, phase, connection, principal_subject from session_events
      where front_end = 'postgres-wire' and sql_text like ${'%' + marker + '%'} or (front_end = 'postgres-wire' and sql_text = 'select $1::text as m')
      order by occurred_at`
    expect(events.filter((e) => e.outcome === 'admitted')).toHaveLength(2)
    expect(events.filter((e) => e.outcome === 'ok')).toHaveLength(2)
    expect(events.every((e) => e.connection === 'app-db' && e.principal_subject === 'alice')).toBe(true)
  })
})
