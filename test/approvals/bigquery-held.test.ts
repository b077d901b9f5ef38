// A held BigQuery query waits in BigQuery's own protocol, through an unchanged official client
// (@google-cloud/bigquery) against bqemulator, with the gateway's own stages (analyzer, policy
// engine with `approval` and cost-aware rules, masking) and approvals.enabled: the client's
// query() simply does not return while nobody decides (jobComplete: false, getQueryResults
// polls), nothing reaches the warehouse, and an approval through the admin API makes its next
// poll run exactly that statement once and return its masked rows. Denied, expired or cancelled,
// the client gets the approval's error. A rule on the dry run's estimate holds a query that
// would read more than 10 GiB and lets a small one through.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { Pipeline } from '../../src/pipeline.js'
import { composeApprovals, createStages, type ComposedApprovals, type ComposedStages } from '../../src/pipeline/compose.js'
import { maskedColumnsFor } from '../../src/masking/summary.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import { recordNotified } from '../../src/recording/round-trips.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import type { Store } from '../../src/store/store.js'
import { BigQueryUpstream } from '../../src/warehouses/bigquery/upstream.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { spyBigQueryCalls } from '../support/upstream-spy.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const GIB = 2 ** 30
const POLICY = `
version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.customers'] }
    approval: { grant: { maxMinutes: 10 }, notify: [ops] }
  - id: hold-big-scans
    effect: require_approval
    match: { roles: [agent], estimatedBytesOver: 10GiB }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

/**
 * bqemulator answers every dry run with 0 bytes; BigQuery counts the bytes of the columns a
 * query reads. This stands in for that count: profiles.cards is 50 GiB, every other column
 * 1 MiB, and a query naming profiles.phones gets no estimate at all (the dry run fails).
 */
function estimateLikeBigQuery (): void {
  const dryRun = BigQueryUpstream.prototype.dryRun
  vi.spyOn(BigQueryUpstream.prototype, 'dryRun').mockImplementation(async function (this: BigQueryUpstream, ...args: Parameters<typeof dryRun>) {
    const [sql] = args
    if (/\bphones\b/.test(sql)) throw new Error('dry run failed')
    const dry = await dryRun.apply(this, args)
    return { ...dry, totalBytesProcessed: String(/\bcards\b/.test(sql) ? 50 * GIB : 2 ** 20) }
  })
}

describe('a held BigQuery query waits in its protocol', { timeout: 240_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let app: FastifyInstance
  let store: Store
  let stages: ComposedStages
  let approvals: ComposedApprovals
  let dir: string
  let url: string
  let agent: string
  let carol: string
  let receiver: Server
  const notified: string[] = []

  beforeAll(async () => {
    // The rule's webhook: a receiver that takes every notification.
    receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => { body += chunk.toString() })
      req.on('end', () => { notified.push(body); res.end() })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    dir = await mkdtemp(join(tmpdir(), 'sluice-approvals-bq-'))
    await writeFile(join(dir, 'policy.yaml'), POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
      identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'], auditors: ['auditor'] } },
      connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
      policies: { directory: dir, watch: false },
      approvals: { enabled: true, webhooks: { ops: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret: 'a-webhook-secret-of-length' } } }
    })
    store = await openPgliteStore({ dataDir: MEMORY })
    await migrate(store)
    stages = await createStages(config)
    // As the gateway composes it (src/gateway.ts): the masking rules on the touched tables.
    approvals = composeApprovals(config, store, undefined, {
      maskedColumns: (statement, admission) => maskedColumnsFor(stages.policies.policySet.masking, statement.principal.roles, statement.connection.name,
        admission.analysis.statements.flatMap((s) => s.tablesRead))
    })
    const pipeline = new Pipeline({ ...stages.stages, hold: approvals.hold })
    app = await buildServer({ config, store, verifier: createTokenVerifier(config.identity!), pipeline, logger: false, approvals: approvals.service })
    url = await app.listen({ host: '127.0.0.1', port: 0 })
    // As src/gateway.ts wires it: each notification delivered is an event of the trail.
    approvals.onNotified((n) => { recordNotified(app.recording, n).catch(() => {}) })
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  }, 120_000) // the emulator is a Python process: its start alone can take most of a minute on a busy machine
  afterAll(async () => {
    vi.restoreAllMocks()
    await app?.close()
    await approvals?.close()
    await stages?.close()
    await idp?.close()
    await emulator?.close()
    await new Promise((resolve) => receiver?.close(resolve))
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  const client = (): BigQuery => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: agent })
    return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: url, authClient })
  }
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> => {
    const res = await fetch(`${url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${carol}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) })
    return { status: res.status, json: await res.json() }
  }
  /** The pending approval of this exact SQL, once the client's request has created it. */
  const pendingFor = async (sql: string): Promise<string> => {
    for (;;) {
      const list = await admin('GET', '/approvals?status=pending')
      const found = (list.json.items as Array<{ id: string, sql: string }>).find((a) => a.sql === sql)
      if (found !== undefined) return found.id
      await sleep(100)
    }
  }
  const ran = (sent: string[], sql: string): string[] => sent.filter((c) => c.includes(JSON.stringify(sql).slice(1, -1)) && !c.includes('"dryRun":true'))

  it('approved: the waiting query() returns its masked rows, run once', async () => {
    const upstream = spyBigQueryCalls({ jobs: true })
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const waiting = client().query({ query: sql })
    const id = await pendingFor(sql)
    expect(ran(upstream, sql)).toEqual([])

    const shown = await admin('GET', `/approvals/${id}`)
    expect(shown.json).toMatchObject({ status: 'pending', sql, chain: 'claude-code acting for alice', connection: 'bq-test', connectionKind: 'bigquery', analysis: { kinds: ['select'], tables: [`${T}.customers`], maskedColumns: [`${T}.customers.email (mask-email)`] } })
    // The dry run is the preview (bqemulator reports 0 bytes).
    expect(shown.json.preview).toMatchObject({ source: 'bigquery-dry-run', bytes: 0, detail: { statementType: 'SELECT' } })
    expect((await admin('POST', `/approvals/${id}/approve`, { reason: 'support ticket' })).json.result).toBe('approved')

    const [rows] = await waiting
    expect(rows).toEqual([{ id: 1, email: '****' }])
    expect(ran(upstream, sql)).toHaveLength(1)
    expect((await admin('GET', `/approvals/${id}`)).json.status).toBe('executed')

    // The trail tells the whole story of the held statement, in the writer's chain order (one
    // gateway, one chain); the notification's
    // delivery runs beside the request, so its event is somewhere after the hold.
    type Row = { id: string, outcome: string, phase: string | null, reason: string, approver: string | null, front_end: string, rows_returned: string | null }
    const read = async (): Promise<Row[]> => await store.query<Row>(
      'select id::text, outcome, phase, reason, approver, front_end, rows_returned from session_events where approval_id = $1 order by chain, seq', [id])
    let all = await read()
    while (!all.some((e) => e.front_end === 'approvals')) {
      await sleep(100)
      all = await read()
    }
    expect(notified.some((body) => body.includes(id))).toBe(true)
    const notice = all.findIndex((e) => e.front_end === 'approvals')
    expect(notice).toBeGreaterThan(0)
    expect(all[notice]).toMatchObject({ outcome: 'ok', reason: `approval ${id}: notified through webhook ops` })
    const trail = all.filter((e) => e.front_end !== 'approvals')
    expect(trail.map((e) => [e.front_end, e.outcome, e.phase])).toEqual([
      ['bigquery', 'held', null],
      ['admin', 'ok', null],
      ['bigquery', 'admitted', 'admitted'],
      ['bigquery', 'ok', 'completed']
    ])
    const [held, approval, admitted, released] = trail
    expect(held?.reason).toMatch(new RegExp(`^approval required by rule hold-customer-reads: .*; held, approval ${id}$`))
    expect(approval).toMatchObject({ approver: 'carol' })
    expect(admitted?.reason).toContain(`released by approval ${id} (approved by carol)`)
    expect(released).toMatchObject({ approver: 'carol', rows_returned: '1' })
    // The same story through the admin API, by approval id.
    const auditor = await idp.userToken({ subject: 'dave', groups: ['auditors'] })
    const res = await fetch(`${url}/admin/v1/events?approvalId=${id}`, { headers: { authorization: `Bearer ${auditor}` } })
    const listed = await res.json() as { items: Array<{ id: string | number }> }
    expect(res.status, JSON.stringify(listed)).toBe(200)
    expect(listed.items.map((e) => String(e.id)).sort()).toEqual(all.map((e) => e.id).sort())
  })

  it('jobs.insert: PENDING on jobs.get until approved, then the job runs once and its results are masked', async () => {
    const upstream = spyBigQueryCalls({ jobs: true })
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = @id`
    const [job] = await client().createQueryJob({ query: sql, params: { id: 2 } })
    const [meta] = await job.getMetadata()
    expect(meta.status).toEqual({ state: 'PENDING' })
    const id = await pendingFor(sql)
    expect(ran(upstream, sql)).toEqual([])
    await admin('POST', `/approvals/${id}/approve`, {})
    const [rows] = await job.getQueryResults()
    expect(rows).toEqual([{ id: 2, email: '****' }])
    // The approved binds ran: exactly one job, with the parameter the client sent.
    const runs = ran(upstream, sql)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toContain('"queryParameters"')
    const [done] = await job.getMetadata()
    expect(done.status.state).toBe('DONE')
  })

  it('denied: the client gets the approver and the reason', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 3`
    const waiting = client().query({ query: sql }).then(() => undefined, (e: Error) => e)
    const id = await pendingFor(sql)
    expect((await admin('POST', `/approvals/${id}/deny`, { reason: 'not for this ticket' })).json.result).toBe('denied')
    const err = await waiting
    expect(err?.message).toBe(`approval ${id} denied by carol: not for this ticket`)
    // The poll that learned of it is in the trail: the approval, who denied it and why.
    const [ended] = await store.query<{ reason: string, approver: string }>("select reason, approver from session_events where approval_id = $1 and error_code = 'SLUICE_APPROVAL_DENIED'", [id])
    expect(ended).toEqual({ reason: `approval ${id} denied by carol: not for this ticket`, approver: 'carol' })
  })

  it('expired: the client is told to ask again', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 4`
    const waiting = client().query({ query: sql }).then(() => undefined, (e: Error) => e)
    const id = await pendingFor(sql)
    // Thirty minutes pass (the rule's expiresAfterMinutes).
    await store.query("update approvals set expires_at = now() - interval '1 second' where id = $1", [id])
    const err = await waiting
    expect(err?.message).toBe(`approval ${id} expired after 30 min; ask again or change the statement`)
    const [ended] = await store.query<{ reason: string, approver: string | null }>("select reason, approver from session_events where approval_id = $1 and error_code = 'SLUICE_APPROVAL_EXPIRED'", [id])
    expect(ended).toEqual({ reason: `approval ${id} expired after 30 min; ask again or change the statement`, approver: null })
  })

  it('cancelled by the client: the approval is withdrawn and the job reads cancelled', async () => {
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 5`
    const [job] = await client().createQueryJob({ query: sql })
    const id = await pendingFor(sql)
    const [cancelled] = await job.cancel()
    expect(cancelled.job?.status).toMatchObject({ state: 'DONE', errorResult: { reason: 'stopped', message: `approval ${id} was withdrawn by the requester; the statement was not run` } })
    expect((await admin('GET', `/approvals/${id}`)).json.status).toBe('withdrawn')
    const [meta] = await job.getMetadata()
    expect(meta.status.state).toBe('DONE')
  })

  it('a dry run of a held statement is refused with its approval, never held (holding it would run it)', async () => {
    const upstream = spyBigQueryCalls({ jobs: true })
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 6`
    const err = await client().query({ query: sql, dryRun: true }).then(() => undefined, (e: Error) => e)
    expect(err?.message).toMatch(/^approval required by rule hold-customer-reads: .* waiting for approval [0-9a-f-]{36} \(rule hold-customer-reads\)/)
    // Only the approval's preview reached the warehouse (a dry run of its own).
    expect(ran(upstream, sql)).toEqual([])
    const jobs = await store.query<{ n: string }>('select count(*) as n from bigquery_jobs where held is not null and admitted::text like $1', ['%id = 6%'])
    expect(jobs[0]?.n).toBe('0')
  })

  it('cost-aware: a query the dry run says reads over 10 GiB is held, a small one runs, one without an estimate is refused', async () => {
    const upstream = spyBigQueryCalls({ jobs: true })
    estimateLikeBigQuery()
    const small = `SELECT id FROM ${SEED_DATASET}.profiles ORDER BY id`
    const [rows] = await client().query({ query: small })
    expect(rows.length).toBeGreaterThan(0)

    const big = `SELECT id, cards FROM ${SEED_DATASET}.profiles ORDER BY id`
    const waiting = client().query({ query: big })
    const id = await pendingFor(big)
    expect(ran(upstream, big)).toEqual([])
    const shown = (await admin('GET', `/approvals/${id}`)).json
    expect(shown).toMatchObject({ ruleId: 'hold-big-scans', preview: { source: 'bigquery-dry-run', bytes: 50 * GIB } })
    expect(shown.reason).toContain('would read 50 GiB (53687091200 bytes) by the warehouse\'s estimate, over the rule\'s 10 GiB (10737418240 bytes)')
    await admin('POST', `/approvals/${id}/approve`, {})
    const [bigRows] = await waiting
    expect(bigRows.length).toBe(rows.length)
    expect(ran(upstream, big)).toHaveLength(1)

    const unmeasured = `SELECT id, phones FROM ${SEED_DATASET}.profiles`
    const err = await client().query({ query: unmeasured }).then(() => undefined, (e: Error) => e)
    expect(err?.message).toMatch(/^denied by rule hold-big-scans: .*the warehouse gave no estimate of the bytes it would read/)
    expect(ran(upstream, unmeasured)).toEqual([])

    // The estimate the rule decided on is in the events (hashed with the analysis column).
    const events = await store.query<{ analysis: any, outcome: string }>("select analysis, outcome from session_events where sql_text = $1 order by seq", [big])
    expect(events.find((e) => e.outcome === 'held')?.analysis.estimate).toEqual({ bytes: 50 * GIB, source: 'bigquery-dry-run' })
    vi.restoreAllMocks()
  })
})
