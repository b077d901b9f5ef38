// compose.yaml cannot be run here (no container engine), so its sluice service is run the way
// compose would start it, without the container: the environment compose computes, the files it
// mounts read from where they come from, a real PostgreSQL store. The gateway must start, migrate
// and answer /readyz with exactly that configuration.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

interface Service {
  image?: string
  build?: string
  environment: Record<string, string>
  volumes: string[]
  ports?: string[]
  user?: string
  read_only?: boolean
  tmpfs?: string[]
  cap_drop?: string[]
  security_opt?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
}
const compose = parseYaml(readFileSync('compose.yaml', 'utf8')) as { services: Record<string, Service> }
const sluice = compose.services.sluice as Service

/** Compose's interpolation: ${NAME}, ${NAME:-default}, ${NAME:?error}. */
function interpolate (text: string, env: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name: string, op: string | undefined, arg: string | undefined) => {
    const value = env[name]
    if (value !== undefined && value !== '') return value
    if (op === '?') throw new Error(`compose refuses to start: ${arg ?? name}`)
    return op === '-' ? (arg ?? '') : ''
  })
}

describe('compose.yaml quick start', () => {
  let db: ThrowawayDatabase
  let gateway: Gateway | undefined
  beforeAll(async () => { db = await createThrowawayDatabase() })
  afterAll(async () => {
    await gateway?.close()
    await db?.drop()
  })

  it('runs Sluice like the Kubernetes chart: non-root, read-only root, loopback port, after Postgres is healthy', () => {
    expect(sluice.build).toBe('.')
    expect(sluice.user).toBe('1000:1000')
    expect(sluice.read_only).toBe(true)
    expect(sluice.tmpfs).toEqual(['/tmp'])
    expect(sluice.cap_drop).toEqual(['ALL'])
    expect(sluice.security_opt).toContain('no-new-privileges:true')
    expect(sluice.ports).toEqual(['127.0.0.1:8080:8080'])
    expect(sluice.depends_on?.postgres?.condition).toBe('service_healthy')
    expect(compose.services.postgres?.healthcheck?.test[1]).toBe('pg_isready')
  })

  it('refuses to start without the shared secrets key', () => {
    expect(() => interpolate(JSON.stringify(sluice.environment), { POSTGRES_PASSWORD: 'pw' })).toThrow(/SLUICE_SECRETS_KEY/)
  })

  it('starts the gateway on its PostgreSQL with the mounted config and policies, migrated and ready', async () => {
    const shell = { POSTGRES_PASSWORD: 'pw', SLUICE_SECRETS_KEY: 's'.repeat(48) }
    const env = Object.fromEntries(Object.entries(sluice.environment).map(([k, v]) => [k, interpolate(String(v), shell)]))
    // The service reaches its store as postgres:5432 with the compose password; here, the test server.
    expect(env.SLUICE_STORE_URL).toBe('postgres://sluice:pw@postgres:5432/sluice')
    env.SLUICE_STORE_URL = db.url

    // The bind mounts, read from their sources: container path → repository path.
    const mounts = new Map(sluice.volumes.map((v) => { const [from, to] = v.split(':'); return [to ?? '', resolve(from ?? '')] as const }))
    const configPath = mounts.get(env.SLUICE_CONFIG ?? '')
    expect(configPath).toBe(resolve('compose/sluice.yaml'))
    const { config } = loadConfig({ path: configPath, env: { ...env, SLUICE_CONFIG: configPath } })
    expect(config.secrets?.key).toBe(shell.SLUICE_SECRETS_KEY)
    expect(config.store.url).toBe(db.url)
    expect(config.store.migrateOnStart).toBe(true)
    expect(config.listen).toMatchObject({ host: '0.0.0.0', port: 8080 })
    const policies = mounts.get(config.policies.directory)
    expect(policies).toBe(resolve('policies'))

    // Tests bind to loopback on a free port; everything else is the quick start's.
    gateway = await startGateway({ ...config, listen: { ...config.listen, host: '127.0.0.1', port: 0 }, policies: { ...config.policies, directory: policies ?? '', watch: false } })
    const ready = await fetch(`${gateway.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { store: 'ok' } })
  })
})
