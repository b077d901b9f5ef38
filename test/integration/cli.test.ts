// The `sluice` binary as an operator runs it (compiled, from bin/): the README's quick start
// on the embedded store, a bad configuration, and two `sluice migrate` runs at once.
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

const bin = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url))
const shippedPolicies = fileURLToPath(new URL('../../policies', import.meta.url))
const shippedCases = fileURLToPath(new URL('../../policies/cases/default.cases.yaml', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

function sluice (args: string[], options: { cwd: string, env?: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { PATH: process.env.PATH, ...options.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('sluice CLI', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'sluice-cli-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('starts on the embedded store with no configuration, is ready, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, 'start'], {
      cwd: dir,
      env: { PATH: process.env.PATH, SLUICE_PORT: '0', SLUICE_DATA_DIR: join(dir, 'data'), SLUICE_POLICIES_DIR: shippedPolicies }
    })
    let logs = ''
    child.stderr.on('data', (d: Buffer) => { logs += d.toString() })
    const url = await new Promise<string>((resolve, reject) => {
      let buffered = ''
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString()
        logs += d.toString()
        const match = /"url":"(http:\/\/[^"]+)"/.exec(buffered)
        if (match !== null) resolve(match[1] as string)
      })
      child.on('close', (code) => reject(new Error(`exited ${code} before listening:\n${logs}`)))
    })
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))

    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(200)
    // It says at start what is not enforced, rather than passing statements silently.
    expect(logs).toContain('identity is not configured')
    expect(logs).toContain('approvals are off (approvals.enabled: false)')
    // Masking enforces since the masking capability landed: it is never announced as passive.
    expect(logs).not.toMatch(/pipeline stages not enforcing yet: [a-z, ]*mask/)
    const refused = await fetch(`${url}/v1/whoami`)
    expect(refused.status).toBe(401)

    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    // A child process booting PGlite and the WASM parser: seconds alone, far more on a busy machine.
  }, 120_000)

  it('exits non-zero on a bad configuration, naming the key', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'listen:\n  port: 99999\n')
    const run = await sluice(['start', '--config', 'bad.yaml'], { cwd: dir })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('SLUICE_CONFIG_INVALID')
    expect(run.stderr).toContain('/listen/port')
  })

  it('rejects an unknown command with usage', async () => {
    const run = await sluice(['launch'], { cwd: dir })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('unknown command "launch"')
  })

  it('refuses to start without a policies directory (fail closed)', async () => {
    const run = await sluice(['start'], { cwd: dir, env: { SLUICE_PORT: '0', SLUICE_DATA_DIR: join(dir, 'data-np'), SLUICE_POLICIES_DIR: join(dir, 'no-policies') } })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('no-policies')
  })

  it('passes the shipped default policy cases with the real analyzer', async () => {
    const run = await sluice(['policy', 'test', '--policies', shippedPolicies, shippedCases], { cwd: dir })
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^(\d+) passed, 0 failed/m)
  })

  it('fails a policy case whose expectation does not hold, and says why', async () => {
    await writeFile(join(dir, 'wrong.cases.yaml'), [
      'cases:',
      '  - name: agent drops a table',
      '    principal: { roles: [agent] }',
      '    connection: { name: prod, kind: snowflake }',
      '    sql: DROP TABLE orders',
      '    expect: { effect: allow }',
      ''
    ].join('\n'))
    const run = await sluice(['policy', 'test', '--policies', shippedPolicies, 'wrong.cases.yaml'], { cwd: dir })
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('deny-ddl-dcl')
    expect(run.stdout).toMatch(/0 passed, 1 failed/)
  })

  it('explains the analysis and the decision for a statement', async () => {
    const run = await sluice(['policy', 'explain', '--policies', shippedPolicies, '--role', 'agent', '--connection', 'prod', '--kind', 'snowflake',
      'SELECT email FROM crm.public.customers; DROP TABLE crm.public.customers'], { cwd: dir })
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('1. select')
    expect(run.stdout).toContain('2. ddl')
    expect(run.stdout).toContain('crm.public.customers')
    expect(run.stdout).toContain('decision:   deny by rule deny-ddl-dcl')
  })

  describe('migrate against Postgres', () => {
    let db: ThrowawayDatabase
    beforeAll(async () => { db = await createThrowawayDatabase() })
    afterAll(async () => { await db?.drop() })

    it('lets two concurrent runs apply each migration exactly once', async () => {
      const env = { DATABASE_URL: db.url }
      const [a, b] = await Promise.all([sluice(['migrate'], { cwd: dir, env }), sluice(['migrate'], { cwd: dir, env })])
      expect([a.code, b.code]).toEqual([0, 0])
      // One of them applied the migrations; the other waited on the lock and found them done.
      expect([a.stdout, b.stdout].filter((s) => s.includes('up to date'))).toHaveLength(1)
      const sql = postgres(db.url, { max: 1, onnotice: () => {} })
      try {
        const rows = await sql`select version, count(*)::int as n from schema_migrations group by version`
        expect(rows.length).toBeGreaterThan(0)
        expect(rows.every((r) => r.n === 1)).toBe(true)
      } finally {
        await sql.end()
      }
      const again = await sluice(['migrate'], { cwd: dir, env })
      expect(again.stdout).toContain('up to date')
    })
  })
})
