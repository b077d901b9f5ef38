// google-cloud-bigquery (Python, the test venv) waiting for a held statement, unchanged: its
// client.query().result() (jobs.insert, then jobs.get and getQueryResults with timeoutMs) and
// query_and_wait() (jobs.query) return the masked rows once an approver approves through the
// admin API; a denial raises with the approver and the reason; an approval nobody decided in time
// raises the expiry (the script asks this side to age it in the store); job.cancel() withdraws
// the approval. python_held.py runs the client; the outcomes are asserted here.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { HELD_CUSTOMER_READS_POLICY, startHeldGateway, type HeldGateway } from './held-gateway.js'
import { expireApproval } from './snowflake-fixtures.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PYTHON = `${ROOT}.venv/bin/python`
const SCRIPT = fileURLToPath(new URL('./python_held.py', import.meta.url))
describe('google-cloud-bigquery waits for a held statement', { timeout: 300_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let gateway: HeldGateway
  let dir: string
  let results: Record<string, any>

  beforeAll(async () => {
    if (!existsSync(PYTHON)) throw new Error('the Python venv is missing: run test/support/setup-python.sh')
    dir = await mkdtemp(join(tmpdir(), 'sluice-held-python-'))
    await writeFile(join(dir, 'policy.yaml'), HELD_CUSTOMER_READS_POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    gateway = await startHeldGateway({ idp, policiesDirectory: dir, connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
    const env = {
      SLUICE_URL: gateway.url,
      BQ_PROJECT: SEED_PROJECT,
      BQ_DATASET: SEED_DATASET,
      AGENT_TOKEN: await idp.userToken({ subject: 'alice', groups: ['ai-agents'] }),
      APPROVER_TOKEN: await idp.userToken({ subject: 'carol', groups: ['approvers'] })
    }
    results = await new Promise((resolve, reject) => {
      const child = spawn(PYTHON, [SCRIPT], { env: { ...process.env, ...env }, timeout: 240_000 })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        // "expire <id>": the script waits on an approval nobody decides; its time runs out here.
        for (const m of chunk.toString().matchAll(/^expire (\S+)$/gm)) void expireApproval(gateway.store, m[1] as string)
      })
      child.on('error', reject)
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`python_held.py exited ${String(code)}\n${stderr}`))
        else resolve(JSON.parse(stdout) as Record<string, any>)
      })
    })
  }, 120_000) // the emulators are Python processes: their start alone can take most of a minute on a busy machine
  afterAll(async () => {
    await gateway?.close()
    await idp?.close()
    await emulator?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('client.query().result(): approved, the masked rows, run once', () => {
    expect(results.insert_approved).toMatchObject({ ok: [{ id: 1, email: '****' }], status: 'executed' })
  })

  it('query_and_wait(): approved, the masked rows, run once', () => {
    expect(results.query_and_wait_approved).toMatchObject({ ok: [{ id: 2, email: '****' }], status: 'executed' })
  })

  it('denied: raised with the approver and the reason', () => {
    const r = results.denied
    expect(r.ok).toBeUndefined()
    expect(r.message).toContain(`approval ${r.approval as string} denied by carol: wrong customer`)
  })

  it('expired: the waiting result() raises the expiry', () => {
    const r = results.expired
    expect(r.ok).toBeUndefined()
    expect(r.message).toContain(`approval ${r.approval as string} expired after 30 min; ask again or change the statement`)
    expect(r.status).toBe('expired')
  })

  it('job.cancel(): the approval is withdrawn and result() raises', () => {
    const r = results.cancelled
    expect(r).toMatchObject({ state: 'PENDING', status: 'withdrawn' })
    expect(r.message).toContain(`approval ${r.approval as string} was withdrawn by the requester`)
  })
})
