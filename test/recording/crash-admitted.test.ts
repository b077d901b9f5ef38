// A gateway killed between a statement's two events: the admitted event was committed before
// the warehouse was called, the process dies while the warehouse runs it, and no completion is
// ever written. `sluice audit verify` and the admin API's event search show the statement as
// admitted without a completion; the chain itself verifies (it is not tampering).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main.js'
import { searchEvents } from '../../src/recording/search.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

const child = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url))

async function cli (args: string[]): Promise<{ code: number, out: string }> {
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString()
    return true
  })
  try {
    return { code: await main(args), out }
  } finally {
    spy.mockRestore()
  }
}

describe('gateway killed between the admitted event and the completion (postgres)', { timeout: 120_000 }, () => {
  let idp: TestIdp
  let db: ThrowawayDatabase
  let proc: ChildProcess | undefined
  let dir: string

  beforeAll(async () => {
    idp = await startTestIdp()
    db = await createThrowawayDatabase()
    dir = await mkdtemp(join(tmpdir(), 'sluice-crash-'))
  })
  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) proc.kill('SIGKILL')
    await idp?.close()
    await db?.drop()
    await rm(dir, { recursive: true, force: true })
  })

  it('the admitted statement is listed as incomplete by sluice audit verify and the admin search', async () => {
    proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: { ...process.env, CRASH_DATABASE_URL: db.url, CRASH_IDENTITY: JSON.stringify(idp.identityConfig()) },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let errors = ''
    proc.stderr?.on('data', (d: Buffer) => { errors += d.toString() })
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      proc!.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /"url":"([^"]+)"/.exec(out)
        if (m !== null) resolve(m[1] as string)
      })
      proc!.on('exit', (code) => reject(new Error(`child exited ${code}: ${errors}`)))
    })
    const exited = new Promise<void>((resolve) => proc!.on('exit', () => resolve()))
    const token = await idp.userToken({ subject: 'alice', groups: ['analysts'] })
    const sql = 'select stall_upstream from orders'
    // Never answered: the upstream stalls, and the gateway dies while it does.
    const pending = fetch(`${url}/test/sql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql })
    }).catch(() => undefined)

    const store = openPostgresStore({ url: db.url, poolSize: 1 })
    try {
      // The admitted event is committed before the (stalling) upstream is called.
      let admitted: Array<{ statement_id: string }> = []
      for (let i = 0; i < 200 && admitted.length === 0; i++) {
        admitted = await store.query("select statement_id from session_events where phase = 'admitted' and sql_text = $1", [sql])
        if (admitted.length === 0) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(admitted).toHaveLength(1)
      proc.kill('SIGKILL')
      await exited
      await pending
      const statementId = admitted[0]?.statement_id as string
      expect(await store.query("select 1 from session_events where statement_id = $1 and phase = 'completed'", [statementId])).toEqual([])

      const incomplete = await searchEvents(store, { incomplete: true })
      expect(incomplete.items.map((e) => [e.statementId, e.outcome, e.sqlText, e.principalSubject])).toEqual([[statementId, 'admitted', sql, 'alice']])

      const config = join(dir, 'sluice.yaml')
      await writeFile(config, `store:\n  url: ${db.url}\nrecording:\n  retention: { intervalSeconds: 0 }\n`)
      const { code, out } = await cli(['audit', 'verify', '--config', config])
      // Not tampering: verify passes, and says which statement never completed.
      expect(code, out).toBe(0)
      expect(out).toContain(`incomplete: statement ${statementId}`)
      expect(out).toContain('1 admitted statements without a completion')
      const json = await cli(['audit', 'verify', '--config', config, '--json'])
      expect(JSON.parse(json.out)).toMatchObject({ ok: true, issues: [], incomplete: { count: 1, statements: [{ statementId, sqlText: sql }] } })
    } finally {
      await store.close()
    }
  })
})
