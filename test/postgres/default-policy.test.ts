// The shipped default policy (policies/default.yaml) on the PostgreSQL listener, through real
// clients: COPY in every direction (psql's \copy FROM STDIN, COPY TO STDOUT, COPY … PROGRAM),
// LISTEN / UNLISTEN / NOTIFY, large objects, server files and dblink are refused with 42501 and
// the rule that refused them, nothing reaches the upstream, the session stays usable, and
// every refusal is in the trail.
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agentClient, startWireGateway, type WireGateway } from './harness.js'

const DEFAULT_POLICY = new URL('../../policies/default.yaml', import.meta.url)

let w: WireGateway
beforeAll(async () => { w = await startWireGateway(await readFile(DEFAULT_POLICY, 'utf8')) }, 120_000)
afterAll(async () => { await w?.close() })

async function withClient<T> (fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await agentClient(w)
  try { return await fn(client) } finally { await client.end() }
}

/** psql with `input` on stdin; resolves with its exit code and output. */
async function psql (args: string[], input = ''): Promise<{ code: number, stdout: string, stderr: string }> {
  const env = { ...process.env, PGPASSWORD: await w.token(), PGCONNECT_TIMEOUT: '20' }
  const child = spawn('psql', [`host=127.0.0.1 port=${w.port} dbname=app-db user=agent`, '-X', '-v', 'ON_ERROR_STOP=1', ...args], { env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.end(input)
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, stdout, stderr }
}

const REFUSED: Array<{ name: string, sql: string, rule: string }> = [
  { name: 'COPY TO STDOUT', sql: 'copy customers to stdout', rule: 'deny-postgres-copy' },
  { name: 'COPY (query) TO STDOUT', sql: 'copy (select email from customers) to stdout with (format csv)', rule: 'deny-postgres-copy' },
  { name: 'COPY FROM STDIN', sql: 'copy probe from stdin', rule: 'deny-postgres-copy' },
  { name: 'COPY … TO PROGRAM', sql: "copy customers to program 'cat > /dev/null'", rule: 'deny-postgres-copy' },
  { name: 'COPY … FROM PROGRAM', sql: "copy probe from program 'echo 1'", rule: 'deny-postgres-copy' },
  { name: 'LISTEN', sql: 'listen orders', rule: 'deny-postgres-notifications' },
  { name: 'UNLISTEN', sql: 'unlisten *', rule: 'deny-postgres-notifications' },
  { name: 'NOTIFY', sql: "notify orders, 'from-the-gateway'", rule: 'deny-postgres-notifications' },
  { name: 'pg_notify', sql: "select pg_notify('orders', 'from-the-gateway')", rule: 'deny-server-side-access' },
  { name: 'pg_read_file', sql: "select pg_read_file('/etc/passwd')", rule: 'deny-server-side-access' },
  { name: 'pg_ls_dir', sql: "select pg_ls_dir('.')", rule: 'deny-server-side-access' },
  { name: 'lo_import', sql: "select lo_import('/etc/passwd')", rule: 'deny-server-side-access' },
  { name: 'lo_from_bytea', sql: "select lo_from_bytea(0, 'x'::bytea)", rule: 'deny-server-side-access' },
  { name: 'lo_export', sql: "select lo_export(1, '/dev/null')", rule: 'deny-server-side-access' },
  { name: 'dblink', sql: "select * from dblink('dbname=postgres', 'select 1') as t(x int)", rule: 'deny-server-side-access' }
]

describe('the shipped default policy on the PostgreSQL listener', () => {
  for (const { name, sql, rule } of REFUSED) {
    for (const path of ['simple', 'extended'] as const) {
      it(`refuses ${name} (${path} protocol) with 42501 and rule ${rule}; the session stays usable`, async () => {
        await withClient(async (c) => {
          const query = path === 'simple' ? c.query(sql) : c.query({ text: sql, queryMode: 'extended' } as pg.QueryConfig)
          const err = await query.catch((e: unknown) => e) as pg.DatabaseError
          expect(err.code).toBe('42501')
          expect(err.message).toContain(`denied by rule ${rule}`)
          expect(err.hint).toContain('The statement was not run')
          expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }])
        })
      })
    }
  }

  it('says what to do instead of COPY TO STDOUT (psql)', async () => {
    const r = await psql(['-c', 'copy customers to stdout'])
    expect(r.code).not.toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('ERROR:  denied by rule deny-postgres-copy')
    expect(r.stderr).toContain('Read with SELECT instead')
  })

  it("refuses psql's \\copy FROM STDIN before any data is read; nothing is loaded", async () => {
    const r = await psql(['-c', '\\copy probe from stdin'], '1\n2\n3\n\\.\n')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('denied by rule deny-postgres-copy')
    expect(await w.direct`select count(*)::int as n from probe`).toEqual([{ n: 0 }])
  })

  it('lets no notification through: a listener on the upstream sees only its own', async () => {
    const listener = new pg.Client({ connectionString: w.upstream.url })
    await listener.connect()
    try {
      const seen: string[] = []
      listener.on('notification', (n) => { seen.push(n.payload ?? '') })
      await listener.query('listen orders')
      await withClient(async (c) => {
        await c.query("notify orders, 'from-the-gateway'").catch(() => {})
        await c.query("select pg_notify('orders', 'from-the-gateway')").catch(() => {})
      })
      // Notifications arrive in commit order: once ours is seen, an earlier one would have been.
      const marker = new Promise<void>((resolve) => listener.on('notification', (n) => { if (n.payload === 'marker') resolve() }))
      await w.direct`select pg_notify('orders', 'marker')`
      await marker
      expect(seen).toEqual(['marker'])
    } finally { await listener.end() }
  })

  it('creates no large object', async () => {
    const before = await w.direct`select count(*)::int as n from pg_largeobject_metadata`
    await withClient(async (c) => {
      await c.query("select lo_from_bytea(0, 'x'::bytea)").catch(() => {})
      await c.query("select lo_import('/etc/hostname')").catch(() => {})
    })
    expect(await w.direct`select count(*)::int as n from pg_largeobject_metadata`).toEqual(before)
  })

  it('records every refusal as denied, with its rule', async () => {
    const denied = await w.events`
      select sql_text, rule_id from session_events
      where front_end = 'postgres-wire' and outcome = 'denied'`
    for (const { sql, rule } of REFUSED) {
      const mine = denied.filter((e) => e.sql_text === sql)
      expect(mine.length, sql).toBeGreaterThanOrEqual(2)
      expect(mine.every((e) => e.rule_id === rule), sql).toBe(true)
    }
  })
})

// The chart ships this same file as its default policy.
it('ships the same default policy in the chart', async () => {
  const chart = await readFile(new URL('../../charts/sluice/files/policies/default.yaml', import.meta.url), 'utf8')
  expect(chart).toBe(await readFile(DEFAULT_POLICY, 'utf8'))
})
