// Several real gateway processes on one Postgres, behind the round-robin proxy: what the
// multi-replica tests drive. Every replica is `sluice start` run from the sources (no build
// needed) with ONE generated sluice.yaml — the same store, the same secrets.key, the same
// identity, connections and policies — and only its port set apart (SLUICE_PORT), the way a
// Deployment runs one image and one ConfigMap. Replicas are child processes so a test can kill
// one outright (SIGKILL, no drain) and read its memory from /proc.
//
//   const cluster = await startReplicas({ config: { identity, connections } })
//   await fetch(`${cluster.url}/api/v2/statements`, …)   // through the proxy
//   cluster.proxy.log                                    // which replica answered what
//   await cluster.replicas[0].kill()                      // the next request goes to the other
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort, spawnChildServer, type ChildServer } from './child-server.js'
import { procCpuMs, procMemory } from './proc-stats.js'
import { startRoundRobinProxy, type RoundRobinProxy } from './round-robin.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from './stores.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ENTRY = fileURLToPath(new URL('./sluice-from-source.ts', import.meta.url))
/** The compiled CLI (`npm run build`): what `node bin/sluice.js` and the container image run. */
export const COMPILED_CLI = join(ROOT, 'bin/sluice.js')
/** Booting from source (tsx compiles on the fly) and migrating take seconds on a busy machine. */
const READY_TIMEOUT_MS = 90_000

export interface ReplicasOptions {
  /**
   * sluice.yaml sections the test chooses: identity, connections, policies, masking, recording, …
   * The harness sets listen, store.url and secrets.key itself (given ones are refused, since a
   * replica set that does not share them is not what these tests are about).
   */
  config: Record<string, unknown>
  /** policies.directory (default: the shipped ./policies). */
  policiesDir?: string
  /** Number of replicas (default 2). */
  count?: number
  /** Store database to use; default a throwaway one on the test Postgres, dropped on close. */
  storeUrl?: string
  /**
   * One gateway on the embedded PGlite store (in the temporary directory) instead of Postgres:
   * for the benchmark's side-by-side; PGlite belongs to one process, so count must be 1.
   */
  pglite?: boolean
  /** store.poolSize per replica (default 4: several replicas share one server). */
  poolSize?: number
  /** log.level of the replicas (default warn; their output tail appears in start errors). */
  logLevel?: string
  /** How long a replica may take to answer /readyz (default 90 s; PGlite boots slowly under load). */
  readyTimeoutMs?: number
  /**
   * Old-generation heap of each replica (MB), for memory tests: a gateway that held a whole
   * large result could not serve it at all, and garbage is collected before it can pass for
   * retained memory in the RSS measured (the young generation is kept small as well). Kept
   * across restarts.
   */
  heapMb?: number
  /** Further Node options of each replica (the benchmark's BENCH_GATEWAY_NODE_OPTIONS). */
  nodeOptions?: string
  /** Further environment of each replica (the benchmark's allocator setting). */
  env?: Record<string, string>
  /**
   * Run the compiled CLI in dist/ (built beforehand) instead of the sources through tsx: the
   * benchmark measures what a deployment runs, without tsx's loader thread, its compiled
   * sources and their source maps in the gateway's memory.
   */
  compiled?: boolean
}

export interface Replica {
  readonly index: number
  /** Its own address, bypassing the proxy. */
  readonly url: string
  readonly port: number
  /** The gateway process's pid (changes on restart). */
  readonly pid: number
  /** True until killed or stopped. */
  readonly running: boolean
  /** Ends the process at once (SIGKILL by default: a crash, no drain) and waits for its exit. */
  kill: (signal?: NodeJS.Signals) => Promise<void>
  /** Starts it again on the same port (after kill) and waits until /readyz answers. */
  restart: () => Promise<void>
  /** VmHWM of the gateway process: its peak resident memory since it started. */
  peakRssBytes: () => number
  /** VmRSS: its resident memory now. */
  rssBytes: () => number
  /** utime + stime of the gateway process, ms. */
  cpuMs: () => number
  /** The tail of its stdout / stderr. */
  output: () => string
}

export interface ReplicaCluster {
  /** The round-robin proxy: what clients talk to. */
  url: string
  proxy: RoundRobinProxy
  replicas: Replica[]
  /** The shared store database (undefined on PGlite). */
  storeUrl: string | undefined
  /** The generated configuration file every replica reads. */
  configPath: string
  close: () => Promise<void>
}

const HARNESS_KEYS = ['listen', 'store', 'secrets']

/** This process's environment without anything that would override the generated file. */
/** Young generation of a memory test's replica (MB per semi-space). */
const SEMI_SPACE_MB = 4

function childEnv (port: number, heapMb: number | undefined, nodeOptions: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SLUICE_') && name !== 'DATABASE_URL') env[name] = value
  }
  // The young generation small too (V8's default lets it grow to ~48 MB): what the RSS then
  // shows is memory kept, not garbage a scavenge has not come round to yet.
  if (heapMb !== undefined) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --max-old-space-size=${heapMb} --max-semi-space-size=${SEMI_SPACE_MB}`.trim()
  if (nodeOptions !== undefined) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${nodeOptions}`.trim()
  return { ...env, ...extra, SLUICE_PORT: String(port) }
}

async function ready (url: string): Promise<boolean> {
  const res = await request(`${url}/readyz`, { headersTimeout: 5000, bodyTimeout: 5000 })
  await res.body.dump()
  return res.statusCode === 200
}

export async function startReplicas (options: ReplicasOptions): Promise<ReplicaCluster> {
  const given = HARNESS_KEYS.filter((k) => k in options.config)
  if (given.length > 0) throw new Error(`startReplicas: the harness sets ${given.join(', ')}; leave them out of config`)
  const count = options.count ?? 2
  if (options.pglite === true && (count !== 1 || options.storeUrl !== undefined)) throw new Error('startReplicas: a PGlite store serves one replica and no storeUrl')
  const dir = await mkdtemp(join(tmpdir(), 'sluice-replicas-'))
  let database: ThrowawayDatabase | undefined
  const replicas: ReplicaHandle[] = []
  let proxy: RoundRobinProxy | undefined

  const close = async (): Promise<void> => {
    await proxy?.close()
    await Promise.all(replicas.map(async (r) => { await r.kill('SIGTERM') }))
    await database?.drop()
    await rm(dir, { recursive: true, force: true })
  }

  try {
    if (options.storeUrl === undefined && options.pglite !== true) database = await createThrowawayDatabase()
    const storeUrl = options.pglite === true ? undefined : options.storeUrl ?? (database as ThrowawayDatabase).url
    const policies = (options.config.policies ?? {}) as Record<string, unknown>
    const file = {
      ...options.config,
      log: { level: options.logLevel ?? 'warn', ...(options.config.log as object | undefined) },
      // The port comes from SLUICE_PORT per replica; everything else is shared.
      listen: { host: '127.0.0.1' },
      store: storeUrl === undefined ? { dataDir: join(dir, 'pglite') } : { url: storeUrl, poolSize: options.poolSize ?? 4 },
      secrets: { key: randomBytes(32).toString('hex') },
      policies: { watch: false, ...policies, directory: options.policiesDir ?? policies.directory ?? join(ROOT, 'policies') }
    }
    const configPath = join(dir, 'sluice.yaml')
    // JSON is YAML: the file the gateway's own loader reads, references and all.
    await writeFile(configPath, JSON.stringify(file, null, 2))

    const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS
    for (let index = 0; index < count; index++) replicas.push(new ReplicaHandle(index, await freePort(), configPath, readyTimeoutMs, options))
    // Started together: concurrent migrations on one store are part of what replicas must survive.
    await Promise.all(replicas.map(async (r) => { await r.restart() }))
    proxy = await startRoundRobinProxy(replicas.map((r) => r.url))
    return { url: proxy.url, proxy, replicas, storeUrl, configPath, close }
  } catch (err) {
    await close().catch(() => {})
    throw err
  }
}

class ReplicaHandle implements Replica {
  readonly url: string
  private server: ChildServer | undefined

  constructor (readonly index: number, readonly port: number, private readonly configPath: string, private readonly readyTimeoutMs: number, private readonly launch: Pick<ReplicasOptions, 'heapMb' | 'nodeOptions' | 'env' | 'compiled'>) {
    this.url = `http://127.0.0.1:${port}`
  }

  get pid (): number {
    const pid = this.server?.child.pid
    if (pid === undefined) throw new Error(`replica ${this.index} is not running`)
    return pid
  }

  get running (): boolean {
    const child = this.server?.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const server = this.server
    if (server === undefined || !this.running) return
    const child = server.child
    const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
    if (signal === 'SIGTERM') {
      await server.close()
    } else {
      child.kill(signal)
      await exited
      await server.close() // only unregisters its exit hook now
    }
  }

  async restart (): Promise<void> {
    if (this.running) throw new Error(`replica ${this.index} is running; kill it first`)
    const server = spawnChildServer(`replica ${this.index}`, process.execPath,
      [...(this.launch.compiled === true ? [COMPILED_CLI] : ['--import', 'tsx', ENTRY]), 'start', '--config', this.configPath],
      { env: childEnv(this.port, this.launch.heapMb, this.launch.nodeOptions, this.launch.env), cwd: ROOT })
    this.server = server
    try {
      await server.waitUntil(async () => await ready(this.url), this.readyTimeoutMs)
    } catch (err) {
      await server.close()
      throw err
    }
  }

  peakRssBytes (): number { return procMemory(this.pid).peakRssBytes }
  rssBytes (): number { return procMemory(this.pid).rssBytes }
  cpuMs (): number { return procCpuMs(this.pid) }
  output (): string { return this.server?.output() ?? '' }
}
