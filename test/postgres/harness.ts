// A whole gateway with the PostgreSQL listener on, against the machine's Postgres: one
// throwaway database as the upstream (seeded with canary values), one as the store, a real
// OIDC provider, and a policy directory of the test's own.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import postgres from 'postgres'
import { validateConfig } from '../../src/config/load.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

export const CANARY = {
  email: 'canary.7f3e@example.com',
  ssn: '987-65-4321',
  salary: '918273.64',
  birth: '1961-03-17',
  secret: 'canary-json-5c1d',
  tag: 'canary-tag-a9b2'
}

export const SEED = `
create table customers (id int primary key, name text, email text, ssn text, salary numeric(12,2), born date, profile jsonb, tags text[]);
insert into customers values
  (1, 'Ada', '${CANARY.email}', '${CANARY.ssn}', ${CANARY.salary}, '${CANARY.birth}', '{"plan": "pro", "secret": "${CANARY.secret}"}', '{${CANARY.tag},plain}'),
  (2, 'Bob', 'bob@example.org', '111-22-3333', 1000.00, '1990-01-01', '{"plan": "free", "secret": "x"}', '{b}');
create table probe (n int);
create table numbers (n int);
insert into numbers select generate_series(1, 5000);
`

export const POLICY = `
version: 1
rules:
  - { id: deny-ddl-dcl, effect: deny, match: { kinds: [ddl, dcl] }, message: Schema changes go through migrations. }
  - { id: deny-unknown, effect: deny, match: { kinds: [unknown] } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select, show, transaction, insert, call] }
    limits: { maxRows: 100000 }
masking:
  - { id: pii-email, columns: ['*.public.customers.email'], function: redact }
  - { id: pii-ssn, columns: ['*.public.customers.ssn'], function: partial, keep: { first: 0, last: 0 } }
  - { id: pay, columns: ['*.public.customers.salary'], function: default }
  - { id: dob, columns: ['*.public.customers.born'], function: year }
  - { id: profile-secret, columns: ['*.public.customers.profile.secret'], function: redact }
  - { id: tags, columns: ['*.public.customers.tags'], function: redact }
`

export interface WireGateway {
  gateway: Gateway
  idp: TestIdp
  upstream: ThrowawayDatabase
  store: ThrowawayDatabase
  port: number
  /** Direct to the upstream database, to check what ran. */
  direct: postgres.Sql
  /** Direct to the store, to read the recorded events. */
  events: postgres.Sql
  token: () => Promise<string>
  /** Another gateway on the same store and upstream (a second replica). */
  replica: () => Promise<Gateway>
  close: () => Promise<void>
}

export async function startWireGateway (policy = POLICY, listen: Record<string, unknown> = {}): Promise<WireGateway> {
  const idp = await startTestIdp()
  const upstream = await createThrowawayDatabase()
  const store = await createThrowawayDatabase()
  const direct = postgres(upstream.url, { max: 2, onnotice: () => {} })
  await direct.unsafe(SEED)
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pgwire-'))
  await writeFile(join(dir, 'policy.yaml'), policy)
  const config = validateConfig({
    listen: { port: 0, postgres: { port: 0, ...listen } },
    log: { level: 'silent' },
    store: { url: store.url },
    secrets: { key: 'postgres-wire-test-secret-key-0123456789' },
    policies: { directory: dir, watch: false },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
    connections: { 'app-db': { kind: 'postgres', url: upstream.url, aliases: ['app'] } }
  })
  const gateway = await startGateway(config)
  const replicas: Gateway[] = []
  const events = postgres(store.url, { max: 1, onnotice: () => {} })
  return {
    gateway,
    idp,
    upstream,
    store,
    port: gateway.postgres?.port as number,
    direct,
    events,
    token: () => idp.userToken({ subject: 'alice', groups: ['ai-agents'] }),
    async replica () {
      const other = await startGateway(config)
      replicas.push(other)
      return other
    },
    async close () {
      for (const r of replicas) await r.close()
      await gateway.close()
      await direct.end({ timeout: 5 })
      await events.end({ timeout: 5 })
      await upstream.drop()
      await store.drop()
      await idp.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A node-postgres client of the agent, connected through the gateway's listener. */
export async function agentClient (w: WireGateway, database = 'app-db'): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: w.port, database, user: 'agent', password: await w.token() })
  await client.connect()
  return client
}

/**
 * The agent's client with the bytes it receives kept: `since()` marks a point, and the function
 * it answers gives the backend message types received after it, in order.
 */
export async function tappedClient (w: WireGateway): Promise<{ client: pg.Client, since: () => () => string[] }> {
  const client = new pg.Client({ host: '127.0.0.1', port: w.port, database: 'app-db', user: 'agent', password: await w.token() })
  const chunks: Buffer[] = []
  const stream = (client as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream
  stream.on('data', (c: Buffer) => chunks.push(c))
  await client.connect()
  // Messages received from now on (the startup answer is whole by the time connect resolves).
  const since = (): () => string[] => {
    const from = chunks.length
    return () => messageTypes(Buffer.concat(chunks.slice(from)))
  }
  return { client, since }
}

/** Backend message types in the order received, from raw socket chunks. */
function messageTypes (bytes: Buffer): string[] {
  const types: string[] = []
  let at = 0
  while (at + 5 <= bytes.length) {
    types.push(String.fromCharCode(bytes[at] as number))
    at += 1 + bytes.readInt32BE(at + 1)
  }
  return types
}
