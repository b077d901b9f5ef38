// Who may release a held BigQuery query, and what a grant lets through afterwards, end to end
// through the unchanged @google-cloud/bigquery client waiting on its job (bqemulator upstream,
// the gateway's own stages, approvals through the admin API): the human an agent acts for cannot
// approve the agent's query; with minApprovals 2 one approval leaves the job PENDING and the
// second runs it; a scoped grant lets the same shape with other literals run at once, and not
// once it expired, nor once it was revoked.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BigQuery, type Job } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startHeldGateway, type HeldGateway } from './held-gateway.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const POLICY = `
version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.customers'] }
    approval: { minApprovals: 2 }
  - id: hold-profile-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.profiles'] }
    approval: { grant: { maxMinutes: 10 } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

describe('approvers and grants of held BigQuery queries, through the client', { timeout: 240_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let gw: HeldGateway
  let dir: string
  let agent: string
  let aliceApprover: string
  let carol: string
  let dave: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-bq-approvers-'))
    await writeFile(join(dir, 'policy.yaml'), POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    gw = await startHeldGateway({ idp, policiesDirectory: dir, connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
    // claude-code acting for alice; alice herself is also an approver.
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    aliceApprover = await idp.userToken({ subject: 'alice', groups: ['approvers'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
    dave = await idp.userToken({ subject: 'dave', groups: ['approvers'] })
  }, 120_000) // the emulators are Python processes: their start alone can take most of a minute on a busy machine
  afterAll(async () => {
    await gw?.close()
    await idp?.close()
    await emulator?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const client = (): BigQuery => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: agent })
    return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: gw.url, authClient })
  }
  const pendingFor = async (sql: string): Promise<string> => {
    for (;;) {
      const list = await gw.admin(carol, 'GET', '/approvals?status=pending')
      const found = (list.json.items as Array<{ id: string, sql: string }>).find((x) => x.sql === sql)
      if (found !== undefined) return found.id
      await sleep(100)
    }
  }
  const state = async (job: Job): Promise<string> => ((await job.getMetadata())[0] as { status: { state: string } }).status.state
  const rowsOf = async (job: Job): Promise<unknown[]> => (await job.getQueryResults())[0]

  it('refuses the human the agent acts for as approver; the job stays PENDING until someone else approves', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const [job] = await client().createQueryJob({ query: sql })
    const id = await pendingFor(sql)
    const self = await gw.admin(aliceApprover, 'POST', `/approvals/${id}/approve`, {})
    expect(self).toMatchObject({ status: 403, json: { code: 'SLUICE_APPROVAL_SELF' } })
    expect(self.json.message).toBe(`approval ${id}: alice cannot approve a statement they asked for (directly or through an agent acting for them); ask another approver`)
    expect(await state(job)).toBe('PENDING')
    expect((await gw.admin(carol, 'POST', `/approvals/${id}/approve`, {})).json.result).toBe('recorded')
    expect((await gw.admin(dave, 'POST', `/approvals/${id}/approve`, {})).json.result).toBe('approved')
    expect(await rowsOf(job)).toEqual([{ id: 1, email: '****' }])
  })

  it('with minApprovals 2: one approval leaves it PENDING, the same approver again does not count, the second runs it', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 2`
    const [job] = await client().createQueryJob({ query: sql })
    const id = await pendingFor(sql)
    expect((await gw.admin(carol, 'POST', `/approvals/${id}/approve`, {})).json).toMatchObject({ result: 'recorded', approval: { status: 'pending' } })
    expect(await state(job)).toBe('PENDING')
    expect(await gw.admin(carol, 'POST', `/approvals/${id}/approve`, {})).toMatchObject({ status: 409, json: { code: 'SLUICE_APPROVAL_ALREADY_DECIDED' } })
    expect(await state(job)).toBe('PENDING')
    expect((await gw.admin(dave, 'POST', `/approvals/${id}/approve`, {})).json).toMatchObject({ result: 'approved', approval: { decidedBy: 'carol, dave' } })
    expect(await rowsOf(job)).toEqual([{ id: 2, email: '****' }])
    expect((await gw.admin(carol, 'GET', `/approvals/${id}`)).json.status).toBe('executed')
  })

  it('a scoped grant lets other literals of the shape run at once; not once it expired; not once revoked', async () => {
    const q = (n: number): string => `SELECT id FROM ${SEED_DATASET}.profiles WHERE id = ${n}`
    const granted = async (n: number): Promise<string> => {
      const [job] = await client().createQueryJob({ query: q(n) })
      const id = await pendingFor(q(n))
      const approved = await gw.admin(carol, 'POST', `/approvals/${id}/approve`, { grant: { minutes: 5 } })
      expect(approved.json).toMatchObject({ result: 'approved', grant: { state: 'active', grantedBy: 'carol' } })
      await rowsOf(job)
      return approved.json.grant.id as string
    }
    /** Runs without anyone deciding, or comes back with the approval it waits on. */
    const runOrHeld = async (n: number): Promise<{ rows: unknown[] } | { held: string }> => {
      const [job] = await client().createQueryJob({ query: q(n) })
      if (await state(job) !== 'PENDING') return { rows: await rowsOf(job) }
      const held = await pendingFor(q(n))
      await job.cancel()
      return { held }
    }
    const uses = async (grantId: string): Promise<number> =>
      ((await gw.admin(carol, 'GET', '/grants')).json.items as Array<{ id: string, uses: number }>).find((g) => g.id === grantId)?.uses as number

    const first = await granted(1)
    expect(await runOrHeld(2)).toEqual({ rows: [{ id: 2 }] })
    expect(await uses(first)).toBe(1)
    // The grant's time ran out.
    await gw.store.query("update approval_grants set expires_at = now() - interval '1 second' where id = $1::uuid", [first])
    expect(await runOrHeld(3)).toMatchObject({ held: expect.any(String) })
    expect(await uses(first)).toBe(1)

    const second = await granted(4)
    expect(await runOrHeld(5)).toEqual({ rows: [] })
    expect(await uses(second)).toBe(1)
    expect(await gw.admin(carol, 'DELETE', `/grants/${second}`)).toMatchObject({ status: 200, json: { state: 'revoked', revokedBy: 'carol' } })
    expect(await runOrHeld(6)).toMatchObject({ held: expect.any(String) })
    expect(await uses(second)).toBe(1)
  })
})
