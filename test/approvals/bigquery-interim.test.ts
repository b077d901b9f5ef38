// The held path as it stands before the front ends wait in their protocols, through an
// unchanged official client (@google-cloud/bigquery) against bqemulator, with the gateway's own
// stages (analyzer, policy engine with an `approval` rule, masking) and approvals.enabled: the
// query is refused with the approval's id, nothing reaches the warehouse; once an approver
// releases it through the admin API, the same query runs once and returns its (masked) rows;
// the grant given with it lets the same shape with another literal through; revoked, it stops.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { Pipeline } from '../../src/pipeline.js'
import { composeApprovals, createStages, type ComposedApprovals, type ComposedStages } from '../../src/pipeline/compose.js'
import { maskedColumnsFor } from '../../src/masking/summary.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { spyBigQueryCalls } from '../support/upstream-spy.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const POLICY = `
version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.customers'] }
    approval: { grant: { maxMinutes: 10 } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

describe('a held BigQuery query, before the protocol wiring', { timeout: 180_000 }, () => {
  let emulator: BqEmulator
  let idp: TestIdp
  let app: FastifyInstance
  let stages: ComposedStages
  let approvals: ComposedApprovals
  let dir: string
  let url: string
  let agent: string
  let carol: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-approvals-bq-'))
    await writeFile(join(dir, 'policy.yaml'), POLICY)
    emulator = await startBqEmulator()
    idp = await startTestIdp()
    const config = validateConfig({
      listen: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
      identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'] } },
      connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
      policies: { directory: dir, watch: false },
      approvals: { enabled: true }
    })
    const store = await openPgliteStore({ dataDir: MEMORY })
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
    agent = await idp.userToken({ subject: 'alice', groups: ['ai-agents'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  })
  afterAll(async () => {
    await app?.close()
    await approvals?.close()
    await stages?.close()
    await idp?.close()
    await emulator?.close()
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
  const held = async (sql: string): Promise<string> => {
    const err = await client().query({ query: sql }).then(() => undefined, (e: Error) => e)
    expect(err?.message).toMatch(/approval required by rule hold-customer-reads: .* waiting for approval [0-9a-f-]{36} \(rule hold-customer-reads\)/)
    return /waiting for approval ([0-9a-f-]{36})/.exec(err?.message ?? '')?.[1] as string
  }

  it('refuses with the approval id, runs once when approved, reuses the grant, stops when revoked', async () => {
    const upstream = spyBigQueryCalls({ jobs: true })
    const sql = `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 1`
    const id = await held(sql)
    expect(upstream.some((q) => q.includes('customers'))).toBe(false)

    const shown = await admin('GET', `/approvals/${id}`)
    expect(shown.json).toMatchObject({ status: 'pending', sql, chain: 'claude-code acting for alice', connection: 'bq-test', connectionKind: 'bigquery', analysis: { kinds: ['select'], tables: [`${T}.customers`], maskedColumns: [`${T}.customers.email (mask-email)`] } })
    const approved = await admin('POST', `/approvals/${id}/approve`, { reason: 'support ticket', grant: { minutes: 10 } })
    expect(approved).toMatchObject({ status: 200, json: { result: 'approved', grant: { state: 'active' } } })

    const [rows] = await client().query({ query: sql })
    expect(rows).toEqual([{ id: 1, email: '****' }])
    expect(upstream.filter((q) => q.includes(sql))).toHaveLength(1)
    expect((await admin('GET', `/approvals/${id}`)).json.status).toBe('executed')

    const [other] = await client().query({ query: `SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 2` })
    expect(other).toEqual([{ id: 2, email: '****' }])

    expect((await admin('DELETE', `/grants/${approved.json.grant.id as string}`)).status).toBe(200)
    await held(`SELECT id, email FROM ${SEED_DATASET}.customers WHERE id = 3`)
  })
})
