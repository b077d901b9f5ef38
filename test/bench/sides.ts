// The sides of the gateway benchmark, each a process of its own so its CPU is its own:
//   direct        — the instant upstream (test/bench/upstream.ts), called the way a client calls
//                   the warehouse itself;
//   proxy         — a bare @fastify/http-proxy in front of it (test/bench/bare-proxy.ts);
//   sluice-pg     — Sluice (`sluice start` from the sources) on a Postgres store;
//   sluice-pg-async — the same on a store database with synchronous_commit = off: Sluice's own
//                   cost without the disk's fsync;
//   sluice-pglite — the same on the embedded PGlite store.
// Every Sluice side has the same configuration: a real OIDC provider, the upstream as its
// Snowflake and BigQuery connection, the bench policy (reads allowed, emails masked), log level
// info as shipped (BENCH_LOG_LEVEL to change it).
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { freePort, spawnChildServer, type ChildServer } from '../support/child-server.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { startReplicas, type ReplicaCluster } from '../support/replicas.js'
import { createThrowawayDatabase, TEST_DATABASE_URL, type ThrowawayDatabase } from '../support/stores.js'
import type { Call } from './load.js'
import { BENCH_PROJECT } from './upstream.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** A variable the container image sets (the Dockerfile's ENV), '' when it sets none. */
export function imageEnv (name: string): string {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  return new RegExp(`^\\s*${name}=(\\S+)`, 'm').exec(dockerfile)?.[1] ?? ''
}

/** The Node options the container image runs the gateway with (the Dockerfile's ENV NODE_OPTIONS). */
export function imageNodeOptions (): string {
  return imageEnv('NODE_OPTIONS')
}

/**
 * glibc's mmap threshold for the gateways: the image's (it sets none, so glibc's own), or
 * BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD to measure a deployment that sets one (an empty value:
 * glibc's default).
 */
export function gatewayMallocEnv (): Record<string, string> {
  const threshold = process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD ?? imageEnv('MALLOC_MMAP_THRESHOLD_')
  return threshold === '' ? {} : { MALLOC_MMAP_THRESHOLD_: threshold }
}

/**
 * The gateways' Node options: the image's, so the bench measures the gateway as it ships;
 * BENCH_GATEWAY_NODE_OPTIONS replaces them (an empty value runs Node's defaults).
 */
export function gatewayNodeOptions (): string {
  return process.env.BENCH_GATEWAY_NODE_OPTIONS ?? imageNodeOptions()
}

/**
 * How every bench starts Sluice: as it ships, the compiled CLI with the image's Node options and
 * allocator setting (replicas.ts takes these as they are).
 */
export function shippedLaunch (): { compiled: true, nodeOptions: string, env: Record<string, string> } {
  return { compiled: true, nodeOptions: gatewayNodeOptions(), env: gatewayMallocEnv() }
}
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))

export type Protocol = 'sqlapi' | 'connector' | 'bigquery'
export const PROTOCOLS: Protocol[] = ['sqlapi', 'connector', 'bigquery']
export const SIDE_NAMES = ['direct', 'proxy', 'sluice-pg', 'sluice-pg-async', 'sluice-pglite'] as const
export type SideName = typeof SIDE_NAMES[number]

export interface Side {
  name: SideName
  url: string
  /** The process whose CPU and memory are this side's cost. */
  pid: () => number
  /** True for Sluice (OIDC bearer, Sluice's own connector session), false for the warehouse's own API. */
  sluice: boolean
  /** Snowflake Token for the connector protocol: the upstream's session, or Sluice's. */
  connectorToken: string
}

export interface Sides {
  sides: Side[]
  byName: (name: SideName) => Side
  /** The OIDC access token every Sluice request carries (minted once). */
  bearer: string
  upstreamUrl: string
  /** Store databases, for the commit round-trip measurement. */
  stores: { postgres: string, postgresAsync: string }
  close: () => Promise<void>
}

async function spawnNode (name: string, file: string, args: string[]): Promise<{ server: ChildServer, url: string }> {
  const port = await freePort()
  const server = spawnChildServer(name, process.execPath, ['--import', 'tsx', file, String(port), ...args], { cwd: ROOT })
  const url = `http://127.0.0.1:${port}`
  await server.waitUntil(async () => (await fetch(`${url}/healthz`)).status === 200, 60_000)
  return { server, url }
}

/** A throwaway store database whose sessions commit without waiting for the WAL flush. */
async function asyncCommitDatabase (): Promise<ThrowawayDatabase> {
  const db = await createThrowawayDatabase()
  const admin = new URL(TEST_DATABASE_URL)
  admin.pathname = '/postgres'
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} })
  try {
    // The name is hex from createThrowawayDatabase; an identifier cannot be a parameter.
    await sql.unsafe(`alter database "${db.name}" set synchronous_commit = off`)
  } finally {
    await sql.end({ timeout: 5 })
  }
  return db
}

async function connectorLogin (url: string, data: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${url}/session/v1/login-request?requestId=${randomUUID()}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ data })
  })
  const body = await res.json() as { success?: boolean, data?: { token?: string }, message?: string }
  if (body.data?.token === undefined) throw new Error(`connector login at ${url} failed: ${JSON.stringify(body).slice(0, 300)}`)
  return body.data.token
}

export async function startSides (): Promise<Sides> {
  const cleanups: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  }
  try {
    const upstream = await spawnNode('bench upstream', here('./upstream.ts'), [])
    cleanups.push(upstream.server.close)
    const proxy = await spawnNode('bare proxy', here('./bare-proxy.ts'), [upstream.url])
    cleanups.push(proxy.server.close)
    const idp: TestIdp = await startTestIdp()
    cleanups.push(idp.close)
    const asyncDb = await asyncCommitDatabase()
    cleanups.push(asyncDb.drop)

    const config = {
      log: { level: process.env.BENCH_LOG_LEVEL ?? 'info' },
      identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
      connections: {
        sf: { kind: 'snowflake', url: upstream.url, user: 'bench', password: 'bench-upstream-secret', default: true },
        bq: { kind: 'bigquery', url: upstream.url, project: BENCH_PROJECT, default: true }
      }
    }
    // store.poolSize 10 as shipped (the replica harness defaults to 4 for tests).
    const one = { config, count: 1, policiesDir: here('./policies'), poolSize: 10, ...shippedLaunch() }
    const clusters: Record<string, ReplicaCluster> = {}
    const variants = [['sluice-pg', {}], ['sluice-pg-async', { storeUrl: asyncDb.url }], ['sluice-pglite', { pglite: true }]] as const
    // Booted together: each boot waits on migrations as much as on the CPU.
    const started = await Promise.allSettled(variants.map(async ([name, options]) => {
      const cluster = await startReplicas({ ...one, ...options, logLevel: config.log.level, readyTimeoutMs: 300_000 })
      clusters[name] = cluster
      cleanups.push(cluster.close)
    }))
    const failed = started.find((s) => s.status === 'rejected')
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason

    const bearer = await idp.userToken({ subject: 'bench-user', groups: ['ai-agents'] })
    const upstreamSession = await connectorLogin(upstream.url, { ACCOUNT_NAME: 'bench', LOGIN_NAME: 'bench', PASSWORD: 'bench' })
    const sides: Side[] = [
      { name: 'direct', url: upstream.url, pid: () => upstream.server.child.pid ?? 0, sluice: false, connectorToken: upstreamSession },
      { name: 'proxy', url: proxy.url, pid: () => proxy.server.child.pid ?? 0, sluice: false, connectorToken: upstreamSession }
    ]
    for (const name of ['sluice-pg', 'sluice-pg-async', 'sluice-pglite'] as const) {
      const replica = clusters[name]!.replicas[0]!
      const token = await connectorLogin(replica.url, { ACCOUNT_NAME: 'bench', AUTHENTICATOR: 'OAUTH', TOKEN: bearer })
      sides.push({ name, url: replica.url, pid: () => replica.pid, sluice: true, connectorToken: token })
    }
    return {
      sides,
      byName: (name) => sides.find((s) => s.name === name)!,
      bearer,
      upstreamUrl: upstream.url,
      stores: { postgres: clusters['sluice-pg']!.storeUrl!, postgresAsync: asyncDb.url },
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** The statement reading n rows, in each warehouse's dialect (the upstream answers n rows). */
export function selectRows (protocol: Protocol, n: number, where = ''): string {
  return protocol === 'bigquery'
    ? `SELECT id, name, email, amount, note FROM bench.rows_${n}${where}`
    : `SELECT ID, NAME, EMAIL, AMOUNT, NOTE FROM BENCH.PUBLIC.ROWS_${n}${where}`
}

/** One request of `protocol` carrying `sql`, as a client sends it to this side. */
export function callFor (side: Side, protocol: Protocol, sql: string, bearer: string): Call {
  switch (protocol) {
    case 'sqlapi':
      return {
        method: 'POST',
        path: '/api/v2/statements',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ statement: sql, timeout: 60, database: 'BENCH', schema: 'PUBLIC' })
      }
    case 'connector':
      return {
        method: 'POST',
        // A fresh request id each time: a repeated one is a retry, which Sluice answers from its cache.
        path: `/queries/v1/query-request?requestId=${randomUUID()}`,
        headers: { authorization: `Snowflake Token="${side.connectorToken}"`, 'content-type': 'application/json', accept: 'application/snowflake' },
        body: JSON.stringify({ sqlText: sql, asyncExec: false, sequenceId: 1, querySubmissionTime: Date.now() })
      }
    case 'bigquery':
      return {
        method: 'POST',
        path: `/bigquery/v2/projects/${BENCH_PROJECT}/queries`,
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: sql, useLegacySql: false })
      }
  }
}
