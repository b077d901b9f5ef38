// The bq CLI waiting for a held statement, unchanged (the README's flags): `bq query` polls
// (getQueryResults or jobs.get) until an approver decides through the admin API, then prints
// the masked rows; a denial ends it with the approver and the reason. A private CLOUDSDK_CONFIG
// keeps the machine's gcloud settings out of the test.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { HELD_CUSTOMER_READS_POLICY, startHeldGateway, type HeldGateway } from './held-gateway.js'

const BQ = process.env.SLUICE_BQ_CLI ?? '/usr/bin/bq'
interface Run { code: number, stdout: string, stderr: string }

describe.skipIf(!existsSync(BQ))('bq waits for a held statement', { timeout: 240_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let gateway: HeldGateway
  let home: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'sluice-held-bq-'))
    await writeFile(join(home, 'policy.yaml'), HELD_CUSTOMER_READS_POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    gateway = await startHeldGateway({ idp, policiesDirectory: home, connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  }, 120_000) // the emulator is a Python process: its start alone can take most of a minute on a busy machine
  afterAll(async () => {
    await gateway?.close()
    await idp?.close()
    await emulator?.close()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })

  const bq = async (...args: string[]): Promise<Run> => await new Promise((resolve) => {
    execFile(BQ, [`--api=${gateway.url}`, `--oauth_access_token=${agent}`, `--project_id=${SEED_PROJECT}`, '--format=json', '--quiet', ...args], {
      env: { ...process.env, CLOUDSDK_CONFIG: join(home, 'gcloud'), HOME: home },
      cwd: home,
      timeout: 180_000
    }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    })
  })
  const pendingFor = async (sql: string): Promise<string> => {
    for (;;) {
      const list = await gateway.admin(carol, 'GET', '/approvals?status=pending')
      const found = (list.json.items as Array<{ id: string, sql: string }>).find((a) => a.sql === sql)
      if (found !== undefined) return found.id
      await sleep(200)
    }
  }

  it('approved: bq prints the masked rows', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const running = bq('query', '--nouse_legacy_sql', sql)
    const id = await pendingFor(sql)
    await gateway.admin(carol, 'POST', `/approvals/${id}/approve`, {})
    const run = await running
    expect(run.code, `${run.stdout} ${run.stderr}`).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual([{ id: '1', email: '****' }])
    expect((await gateway.admin(carol, 'GET', `/approvals/${id}`)).json.status).toBe('executed')
  })

  it('denied: bq fails with the approver and the reason', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 2`
    const running = bq('query', '--nouse_legacy_sql', sql)
    const id = await pendingFor(sql)
    await gateway.admin(carol, 'POST', `/approvals/${id}/deny`, { reason: 'not this one' })
    const run = await running
    expect(run.code).not.toBe(0)
    expect(`${run.stdout} ${run.stderr}`.replace(/\s+/g, ' ')).toContain(`approval ${id} denied by carol: not this one`)
  })
})
