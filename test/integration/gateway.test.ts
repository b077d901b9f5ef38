// The whole gateway, started the way `sluice start` starts it, against a real OIDC provider
// and each store: readiness, an authenticated round trip recorded as a session event, and a
// forged token refused with 401 and recorded too.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { startGateway, type Gateway } from '../../src/gateway.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'

interface StoreSetup { name: string, store: () => Promise<{ settings: Record<string, unknown>, cleanup: () => Promise<void> }> }

const stores: StoreSetup[] = [
  {
    name: 'pglite',
    async store () {
      const dir = await mkdtemp(join(tmpdir(), 'sluice-gw-'))
      return { settings: { dataDir: join(dir, 'data') }, cleanup: () => rm(dir, { recursive: true, force: true }) }
    }
  },
  {
    name: 'postgres',
    async store () {
      const db: ThrowawayDatabase = await createThrowawayDatabase()
      return { settings: { url: db.url }, cleanup: () => db.drop() }
    }
  }
]

/** Flips one character of the payload segment: the signature no longer matches. */
function tamper (token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  claims.groups = ['admins']
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.')
}

describe.each(stores)('gateway on $name', (setup) => {
  let idp: TestIdp
  let gateway: Gateway
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    idp = await startTestIdp()
    const store = await setup.store()
    cleanup = store.cleanup
    const config = validateConfig({
      listen: { port: 0 },
      log: { level: 'silent' },
      store: store.settings,
      secrets: { key: 'integration-test-secret-key-0123456789' },
      identity: {
        ...idp.identityConfig(),
        groupRoles: { 'ai-agents': ['agent'], security: ['auditor'] },
        clientRoles: { 'ci-bot': ['agent'] }
      }
    })
    gateway = await startGateway(config)
  })

  afterAll(async () => {
    await gateway?.close()
    await idp?.close()
    await cleanup?.()
  })

  it('is alive and ready', async () => {
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${gateway.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ready', checks: { store: 'ok', config: 'loaded' } })
  })

  it('maps a human token to roles and records the round trip in a session', async () => {
    const token = await idp.userToken({ subject: 'alice', groups: ['ai-agents'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    const headers = { authorization: `Bearer ${token}`, 'user-agent': 'gateway-test/1.0' }
    const first = await fetch(`${gateway.url}/v1/whoami`, { headers })
    expect(first.status).toBe(200)
    const body = await first.json() as Record<string, unknown>
    expect(body).toMatchObject({ subject: 'alice', type: 'human', roles: ['agent'], delegation: [{ subject: 'claude-code' }] })
    const second = await fetch(`${gateway.url}/v1/whoami`, { headers })
    expect(second.status).toBe(200)

    const ids = [first.headers.get('x-request-id'), second.headers.get('x-request-id')]
    const events = (await gateway.app.recorder.listEvents({ limit: 100 })).filter((e) => ids.includes(e.requestId))
    expect(events).toHaveLength(2)
    for (const event of events) {
      expect(event).toMatchObject({ principalSubject: 'alice', frontEnd: 'identity', route: '/v1/whoami', method: 'GET', statusCode: 200, outcome: 'ok', userAgent: 'gateway-test/1.0' })
      expect(event.sourceIp).toBe('127.0.0.1')
      expect(event.durationMs).toBeGreaterThanOrEqual(0)
    }
    // One token, one session: the second request continued the first one's session.
    expect(events[0]?.sessionId).toBeTruthy()
    expect(events[0]?.sessionId).toBe(events[1]?.sessionId)
    const session = await gateway.app.recorder.getSession(events[0]?.sessionId as string)
    expect(session).toMatchObject({ principalSubject: 'alice', frontEnd: 'identity' })
  })

  it('records a machine client as a machine principal', async () => {
    const token = await idp.machineToken({ clientId: 'ci-bot' })
    const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ type: 'machine', clientId: 'ci-bot', roles: ['agent'] })
  })

  it('refuses a forged token with 401 and records the attempt', async () => {
    const forged = tamper(await idp.userToken({ subject: 'mallory', groups: ['ai-agents'] }))
    const res = await fetch(`${gateway.url}/v1/whoami`, { headers: { authorization: `Bearer ${forged}` } })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="sluice", error="invalid_token"/)
    const requestId = res.headers.get('x-request-id')
    const events = await gateway.app.recorder.listEvents({ limit: 100 })
    const attempt = events.find((e) => e.requestId === requestId)
    expect(attempt).toMatchObject({ outcome: 'unauthenticated', statusCode: 401, errorCode: 'SLUICE_AUTH_INVALID', sessionId: null, frontEnd: 'identity' })
    // Nothing of the token is kept in the record.
    expect(JSON.stringify(attempt)).not.toContain(forged.split('.')[2])
  })

  it('answers unknown routes with a catalogue 404', async () => {
    const res = await fetch(`${gateway.url}/nope`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ code: 'SLUICE_NOT_FOUND' })
  })
})
