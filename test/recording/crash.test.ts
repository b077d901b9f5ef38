// A gateway killed (SIGKILL) while batched writes are pending loses no event it released:
// every request that got its response is in the store, because a response leaves only after
// the batch holding its event committed.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyStore } from '../../src/recording/audit.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

const child = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url))

describe('crash safety (postgres)', { timeout: 120_000 }, () => {
  let idp: TestIdp
  let db: ThrowawayDatabase
  let proc: ChildProcess | undefined

  beforeAll(async () => {
    idp = await startTestIdp()
    db = await createThrowawayDatabase()
  })
  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) proc.kill('SIGKILL')
    await idp?.close()
    await db?.drop()
  })

  it('every released request id is in the store after a SIGKILL with writes pending', async () => {
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

    const released: string[] = []
    let killed = false
    let started = 0
    let finished = 0
    let inFlightAtKill = 0
    const TOTAL = 400
    const KILL_AFTER = 60
    const requests = Array.from({ length: TOTAL }, async (_, i) => {
      // Staggered so requests keep arriving while batches are open.
      await new Promise((resolve) => setTimeout(resolve, i * 2))
      if (killed) return
      started++
      try {
        const res = await fetch(`${url}/test/sql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ sql: `select id from orders where n = ${i}` })
        })
        await res.arrayBuffer()
        finished++
        if (res.status === 200) released.push(res.headers.get('x-request-id') as string)
        if (released.length >= KILL_AFTER && !killed) {
          killed = true
          inFlightAtKill = started - finished
          proc!.kill('SIGKILL')
        }
      } catch {
        // Cut off by the kill: never released, so nothing is owed.
      }
    })
    await Promise.all(requests)
    await exited
    expect(killed).toBe(true)
    expect(released.length).toBeGreaterThanOrEqual(KILL_AFTER)
    // Requests were still waiting for their batch when the process died.
    expect(inFlightAtKill).toBeGreaterThan(0)

    const store = openPostgresStore({ url: db.url, poolSize: 1 })
    try {
      const rows = await store.query<{ request_id: string }>('select request_id from session_events where request_id = any($1::text[])', [released])
      const stored = new Set(rows.map((r) => r.request_id))
      expect(released.filter((id) => !stored.has(id))).toEqual([])
      // What did commit forms intact chains (no closing checkpoint: the process never closed).
      const report = await verifyStore(store)
      expect(report.issues).toEqual([])
    } finally {
      await store.close()
    }
  })
})
