// A gateway as src/gateway.ts composes it for held statements: the real analyzer, policy engine
// and masking over a policy directory, approvals.enabled with the hold stage over the store,
// and the BigQuery front end, on loopback. Several started on one Postgres database are the
// replicas of one deployment (each its own approvals service, so its own replica id).
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { maskedColumnsFor } from '../../src/masking/summary.js'
import { Pipeline } from '../../src/pipeline.js'
import { composeApprovals, createStages } from '../../src/pipeline/compose.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { Store } from '../../src/store/store.js'
import { SEED_DATASET, SEED_PROJECT } from '../support/bqemulator.js'
import type { TestIdp } from '../support/oidc-provider.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`

/** The held BigQuery tests' policy: agents' reads of the seeded customers wait for an approver; emails masked. */
export const HELD_CUSTOMER_READS_POLICY = `
version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['${T}.customers'] }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

export interface HeldGateway {
  url: string
  store: Store
  /** The approvals service's replica id (recorded as claimedBy). */
  replica: string
  /** An admin API call with the given bearer token. */
  admin: (token: string, method: string, path: string, body?: unknown) => Promise<{ status: number, json: any }>
  close: () => Promise<void>
}

export interface HeldGatewayOptions {
  idp: TestIdp
  policiesDirectory: string
  connections: Record<string, Record<string, unknown>>
  /** One Postgres database for every replica; an in-memory PGlite store when absent. */
  databaseUrl?: string
}

/** Groups: ai-agents → agent, approvers → approver. */
export async function startHeldGateway (options: HeldGatewayOptions): Promise<HeldGateway> {
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    identity: { ...options.idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'] } },
    connections: options.connections,
    policies: { directory: options.policiesDirectory, watch: false },
    approvals: { enabled: true },
    ...(options.databaseUrl !== undefined && { store: { url: options.databaseUrl } })
  })
  const store = options.databaseUrl === undefined ? await openPgliteStore({ dataDir: MEMORY }) : openPostgresStore({ url: options.databaseUrl, poolSize: 4 })
  await migrate(store)
  const stages = await createStages(config)
  const approvals = composeApprovals(config, store, undefined, {
    maskedColumns: (statement, admission) => maskedColumnsFor(stages.policies.policySet.masking, statement.principal.roles, statement.connection.name,
      admission.analysis.statements.flatMap((s) => s.tablesRead))
  })
  const pipeline = new Pipeline({ ...stages.stages, hold: approvals.hold })
  const app = await buildServer({ config, store, verifier: createTokenVerifier(config.identity!), pipeline, logger: false, approvals: approvals.service })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    url,
    store,
    replica: approvals.service.replica,
    admin: async (token, method, path, body) => {
      const res = await fetch(`${url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) })
      return { status: res.status, json: await res.json() }
    },
    close: async () => {
      await app.close() // closes the store too
      await approvals.close()
      await stages.close()
    }
  }
}
