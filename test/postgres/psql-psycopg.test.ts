// psql (scripted: a multi-statement -c, \d and \dt, which run psql's catalog queries) and
// psycopg 3 (Python: binds, server-side prepared statements, binary results, a transaction)
// through the PostgreSQL listener, with TLS required: sslmode=require works, a plain
// connection is refused.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANARY, POLICY, startWireGateway, type WireGateway } from './harness.js'

const run = promisify(execFile)
const PYTHON = join(import.meta.dirname, '../../.venv/bin/python')

let w: WireGateway
let certDir: string

beforeAll(async () => {
  certDir = await mkdtemp(join(tmpdir(), 'sluice-pgtls-'))
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')])
  const tls = { cert: await readFile(join(certDir, 'cert.pem'), 'utf8'), key: await readFile(join(certDir, 'key.pem'), 'utf8') }
  w = await startWireGateway(POLICY, { requireTls: true, tls })
}, 120_000)
afterAll(async () => {
  await w?.close()
  await rm(certDir, { recursive: true, force: true })
})

async function psql (args: string[], sslmode = 'require'): Promise<{ stdout: string, stderr: string, code: number }> {
  const env = { ...process.env, PGPASSWORD: await w.token(), PGCONNECT_TIMEOUT: '20' }
  try {
    const r = await run('psql', [`host=127.0.0.1 port=${w.port} dbname=app-db user=agent sslmode=${sslmode}`, '-X', '-v', 'ON_ERROR_STOP=1', ...args], { env })
    return { ...r, code: 0 }
  } catch (err) {
    const e = err as { stdout: string, stderr: string, code: number }
    return { stdout: e.stdout, stderr: e.stderr, code: e.code }
  }
}

describe('psql through the PostgreSQL listener (TLS required)', () => {
  it('runs a multi-statement -c over TLS, masked', async () => {
    const r = await psql(['-A', '-t', '-c', 'select name, email from customers order by id; select count(*) from numbers'])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toEqual(['Ada|****', 'Bob|****', '5000'])
  })

  it('describes tables with \\d and \\dt (psql catalog queries), recorded', async () => {
    const d = await psql(['-c', '\\d customers'])
    expect(d.code).toBe(0)
    expect(d.stdout).toContain('Table "public.customers"')
    expect(d.stdout).toMatch(/email\s+\|\s+text/)
    const dt = await psql(['-c', '\\dt'])
    expect(dt.stdout).toContain('customers')
    const events = await w.events`select analysis from session_events where front_end = 'postgres-wire' and outcome = 'ok' and sql_text like '%pg_catalog.pg_class%'`
    expect(events.length).toBeGreaterThan(0)
    expect(events.every((e) => (e.analysis as { introspection?: boolean }).introspection === true)).toBe(true)
    const reads = await w.events`select analysis from session_events where front_end = 'postgres-wire' and outcome = 'ok' and sql_text like 'select name, email from customers%'`
    expect(reads.length).toBe(1)
    expect((reads[0]?.analysis as { introspection?: boolean }).introspection).toBeUndefined()
  })

  it('refuses a denied DROP inside a multi-statement -c; nothing ran', async () => {
    const r = await psql(['-c', 'insert into probe values (5); drop table customers'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('ERROR:  denied by rule deny-ddl-dcl')
    expect(await w.direct`select count(*)::int as n from probe`).toEqual([{ n: 0 }])
  })

  it('refuses a session without TLS when TLS is required', async () => {
    const r = await psql(['-c', 'select 1'], 'disable')
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('Sluice requires TLS')
  })
})

const PSYCOPG = `
import json, os, sys, psycopg
conninfo = f"host=127.0.0.1 port={os.environ['PORT']} dbname=app-db user=agent sslmode=require password={os.environ['TOKEN']}"
out = {}
with psycopg.connect(conninfo) as conn:
    with conn.cursor() as cur:
        cur.execute("select id, name from customers where id = %s", (2,))
        out["bind"] = cur.fetchall()
        for i in (1, 2, 1):
            cur.execute("select name from customers where id = %s", (i,), prepare=True)
        out["prepared"] = cur.fetchone()
        cur.execute("select email, ssn, born, profile, tags from customers where id = 1")
        out["masked"] = [str(v) for v in cur.fetchone()]
    with conn.cursor(binary=True) as cur:
        cur.execute("select id, email, born, profile from customers where id = %s", (1,))
        row = cur.fetchone()
        out["binary"] = [str(v) for v in row]
        try:
            cur.execute("select salary from customers where id = 1")
            out["binary_numeric"] = "no error"
        except psycopg.Error as e:
            out["binary_numeric"] = e.sqlstate
    conn.rollback()
    try:
        with conn.transaction():
            conn.execute("insert into probe values (9)")
            conn.execute("select 1/0")
    except psycopg.errors.DivisionByZero:
        out["rolled_back"] = True
print(json.dumps(out))
`

describe('psycopg through the PostgreSQL listener', () => {
  it('binds, prepares, streams text and binary results masked, rolls back', async () => {
    const { stdout } = await run(PYTHON, ['-c', PSYCOPG], { env: { ...process.env, PORT: String(w.port), TOKEN: await w.token() } })
    const out = JSON.parse(stdout) as Record<string, unknown>
    expect(out.bind).toEqual([[2, 'Bob']])
    expect(out.prepared).toEqual(['Ada'])
    const masked = out.masked as string[]
    expect(masked[0]).toBe('****')
    expect(masked[2]).toBe('1961-01-01')
    expect(JSON.stringify(out)).not.toContain(CANARY.email)
    expect(JSON.stringify(out)).not.toContain(CANARY.secret)
    expect(JSON.stringify(out)).not.toContain(CANARY.tag)
    expect(JSON.stringify(out)).not.toContain(CANARY.birth)
    expect(out.binary).toEqual(['1', '****', '1961-01-01', "{'plan': 'pro', 'secret': '****'}"])
    expect(out.binary_numeric).toBe('0A000')
    expect(out.rolled_back).toBe(true)
    expect(await w.direct`select count(*)::int as n from probe where n = 9`).toEqual([{ n: 0 }])
  })
})
