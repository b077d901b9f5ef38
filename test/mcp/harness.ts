// A whole gateway with the MCP endpoint and one connection of every kind: fakesnow (Snowflake),
// bqemulator (BigQuery), the machine's PostgreSQL (a throwaway database seeded with canaries),
// the real OIDC provider, a throwaway Postgres store, the real policy engine with a deny rule, an
// approval rule and masking rules, approvals on. MCP clients are the official ones.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js'
import postgres from 'postgres'
import { validateConfig } from '../../src/config/load.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { CANARY as BQ_CANARY, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { CUSTOMERS as SF_CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'
import { CANARY as PG_CANARY, SEED as PG_SEED } from '../postgres/harness.js'

export { SEED_DATABASE, SEED_SCHEMA, SEED_PROJECT }

/** Every seeded value a masking rule must keep out of every byte of every tool result. */
export const CANARIES = [
  ...SF_CUSTOMERS.flatMap((c) => [c.email, c.ssn]),
  BQ_CANARY,
  PG_CANARY.email, PG_CANARY.ssn
]

export const POLICY = `
version: 1
rules:
  - { id: deny-ddl, effect: deny, match: { kinds: [ddl, dcl] }, message: Schema changes go through migrations. }
  - id: deny-probe
    effect: deny
    match: { tables: ['*.public.probe'] }
    message: the probe table is off limits to agents.
  - id: hold-orders
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['sluice_test.public.orders'] }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select, show] }
masking:
  - { id: mask-email, columns: ['*.*.customers.email'], function: redact }
  - { id: mask-ssn, columns: ['*.*.customers.ssn', '*.*.profiles.address.ssn'], function: redact }
  - { id: mask-profile, columns: ['*.*.profiles.phones', '*.*.profiles.cards.holder'], function: redact }
`

export interface McpGateway {
  gateway: Gateway
  /** A second replica on the same store, upstreams and IdP (its own mcp settings). */
  replica?: Gateway
  idp: TestIdp
  fakesnow: Fakesnow
  bq: BqEmulator
  upstream: ThrowawayDatabase
  store: ThrowawayDatabase
  /** Reads the store directly (recorded events). */
  events: postgres.Sql
  agentToken: (subject?: string) => Promise<string>
  approverToken: () => Promise<string>
  /** The official TS client, connected with a bearer token. */
  connect: (token: string, url?: string, name?: string, options?: ConnectOptions) => Promise<Client>
  admin: (method: string, path: string, body?: unknown) => Promise<{ status: number, json: any }>
  close: () => Promise<void>
}

export interface ConnectOptions {
  /** Declared at initialize (e.g. `{ elicitation: {} }`). */
  capabilities?: ClientCapabilities
  /** Called before connecting: request handlers (elicitation) go here. */
  setup?: (client: Client) => void
  /** The transport's fetch, to send some POSTs elsewhere (another replica). */
  fetch?: FetchLike
}

export interface McpGatewayOptions {
  /** Rules put first in the policy, before the shared ones. */
  rules?: string
  /** mcp section of the first gateway; the replica, when asked for, gets `replicaMcp`. */
  mcp?: Record<string, unknown>
  replicaMcp?: Record<string, unknown>
}

export async function startMcpGateway (options: McpGatewayOptions = {}): Promise<McpGateway> {
  const [idp, fakesnow, bq, upstream, store] = await Promise.all([startTestIdp(), startFakesnow(), startBqEmulator(), createThrowawayDatabase(), createThrowawayDatabase()])
  const direct = postgres(upstream.url, { max: 1, onnotice: () => {} })
  await direct.unsafe(PG_SEED)
  await direct.end({ timeout: 5 })
  const dir = await mkdtemp(join(tmpdir(), 'sluice-mcp-'))
  await writeFile(join(dir, 'policy.yaml'), options.rules === undefined ? POLICY : POLICY.replace('\nrules:\n', `\nrules:\n${options.rules}`))
  const configFor = (mcp: Record<string, unknown> | undefined) => validateConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    store: { url: store.url },
    secrets: { key: 'mcp-test-secret-key-0123456789abcdef' },
    policies: { directory: dir, watch: false },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], approvers: ['approver'] } },
    approvals: { enabled: true },
    ...(mcp !== undefined && { mcp }),
    connections: {
      snow: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, description: 'CRM in Snowflake' },
      bq: { kind: 'bigquery', url: bq.url, project: SEED_PROJECT, description: 'CRM in BigQuery' },
      pg: { kind: 'postgres', url: upstream.url, description: 'The application database' }
    }
  })
  const gateway = await startGateway(configFor(options.mcp))
  const replica = options.replicaMcp === undefined ? undefined : await startGateway(configFor(options.replicaMcp))
  const events = postgres(store.url, { max: 1, onnotice: () => {} })
  const clients: Client[] = []
  return {
    gateway,
    ...(replica !== undefined && { replica }),
    idp,
    fakesnow,
    bq,
    upstream,
    store,
    events,
    agentToken: async (subject = 'alice') => await idp.userToken({ subject, groups: ['ai-agents'] }),
    approverToken: async () => await idp.userToken({ subject: 'carol', groups: ['approvers'] }),
    async connect (token, url = gateway.url, name = 'mcp-test-client', options = {}) {
      const client = new Client({ name, version: '1.2.3' }, options.capabilities === undefined ? undefined : { capabilities: options.capabilities })
      options.setup?.(client)
      const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } }, ...(options.fetch !== undefined && { fetch: options.fetch }) })
      await client.connect(transport)
      clients.push(client)
      return client
    },
    async admin (method, path, body) {
      const token = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
      const res = await fetch(`${gateway.url}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) })
      return { status: res.status, json: await res.json() }
    },
    async close () {
      for (const c of clients) await c.close().catch(() => undefined)
      await replica?.close()
      await gateway.close()
      await events.end({ timeout: 5 })
      await Promise.all([fakesnow.close(), bq.close(), idp.close()])
      await upstream.drop()
      await store.drop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
