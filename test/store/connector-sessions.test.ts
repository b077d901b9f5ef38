// The connector-session records (src/state/connector-sessions.ts) on both store engines: found
// by their token digest only while live, renewed atomically (the old digest finds nothing),
// upstream tokens replaced only by the holder of the current version, and expired sessions
// claimed once, in bounded batches, through the expiry index. Plus the sealing they rely on.
import { randomBytes, randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLAIM_EXPIRED, StoreConnectorSessions, type ConnectorSessionRecord } from '../../src/state/connector-sessions.js'
import { createSealer } from '../../src/state/sealed.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { alice } from '../recording/helpers.js'
import { storeEngines } from '../support/stores.js'

const slow = { timeout: 120_000 }
const sealer = createSealer(randomBytes(32))

function record (over: Partial<ConnectorSessionRecord> = {}): ConnectorSessionRecord {
  const id = randomInt(1, 2 ** 47)
  return {
    id,
    tokenHash: `st-${randomBytes(8).toString('hex')}`,
    masterHash: `mt-${randomBytes(8).toString('hex')}`,
    principal: { ...alice, expiresAt: new Date(Date.now() + 3600_000) },
    connection: 'wh',
    application: 'JavaScript',
    formats: { family: 'node', session: {} },
    upstream: {
      context: { database: 'DB', role: 'R' },
      sessionId: 42,
      parameters: [{ name: 'TIMEZONE', value: 'UTC' }],
      serverVersion: '9.1.0',
      sealed: sealer.seal({ token: 'upstream-secret-token' }, String(id)),
      version: 0
    },
    ...over
  }
}

describe('sealing', () => {
  it('opens only with the same key and the same AAD', () => {
    const sealed = sealer.seal({ token: 't' }, 'a')
    expect(sealer.open(sealed, 'a')).toEqual({ token: 't' })
    expect(sealer.open(sealed, 'b')).toBeUndefined()
    expect(createSealer(randomBytes(32)).open(sealed, 'a')).toBeUndefined()
    expect(sealed.toString('utf8')).not.toContain('"token"')
  })
})

describe.each(storeEngines())('connector sessions on $name', slow, (engine) => {
  let store: Store
  let sessions: StoreConnectorSessions

  beforeAll(async () => {
    store = await engine.open()
    await migrate(store)
    sessions = new StoreConnectorSessions(store)
  })
  afterAll(async () => { await engine.cleanup() })

  it('stores a session and gives it back by its token digest, principal and upstream intact', async () => {
    const r = record()
    const created = await sessions.create(r, 60, 120)
    expect(created).toMatchObject({ id: r.id, tokenLive: true, connection: 'wh', application: 'JavaScript' })
    expect(created.tokenSecondsLeft).toBeGreaterThanOrEqual(59)
    expect(created.masterSecondsLeft).toBeGreaterThan(created.tokenSecondsLeft)
    const found = await sessions.byToken(r.tokenHash)
    expect(found?.principal).toEqual(r.principal)
    expect(found?.principal.expiresAt).toBeInstanceOf(Date)
    expect(found?.formats).toEqual(r.formats)
    expect(found?.upstream).toMatchObject({ context: r.upstream.context, sessionId: 42, parameters: r.upstream.parameters, serverVersion: '9.1.0', version: 0 })
    expect(sealer.open(found!.upstream.sealed, String(r.id))).toEqual({ token: 'upstream-secret-token' })
    expect(await sessions.byToken(r.masterHash)).toBeUndefined()
  })

  it('says a session token ran out while the master lives, and forgets the session when the master has', async () => {
    const renewable = record()
    await sessions.create(renewable, 0, 60)
    expect(await sessions.byToken(renewable.tokenHash)).toMatchObject({ tokenLive: false })
    const gone = record()
    await sessions.create(gone, 0, 0.05)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await sessions.byToken(gone.tokenHash)).toBeUndefined()
    expect(await sessions.renew(gone.masterHash, 'new', 60)).toBeUndefined()
  })

  it('renews by the master digest: the new token digest finds the session, the old one nothing, never past the master', async () => {
    const r = record()
    await sessions.create(r, 0, 30)
    const renewed = await sessions.renew(r.masterHash, `${r.tokenHash}-2`, 3600)
    expect(renewed).toMatchObject({ id: r.id, tokenLive: true })
    expect(renewed!.tokenSecondsLeft).toBeLessThanOrEqual(30)
    expect(await sessions.byToken(r.tokenHash)).toBeUndefined()
    expect((await sessions.byToken(`${r.tokenHash}-2`))?.id).toBe(r.id)
    expect(await sessions.renew('no-such-master', 'x', 60)).toBeUndefined()
  })

  it('replaces the upstream tokens only for the holder of the current version', async () => {
    const r = record()
    await sessions.create(r, 60, 60)
    const next = { ...r.upstream, sessionId: 43, sealed: sealer.seal({ token: 'renewed' }, String(r.id)) }
    expect(await sessions.saveUpstream(r.id, 0, next)).toBe(1)
    // A second replica that also renewed from version 0 loses, and reads the winner's.
    expect(await sessions.saveUpstream(r.id, 0, { ...next, sealed: sealer.seal({ token: 'late' }, String(r.id)) })).toBeUndefined()
    const stored = await sessions.upstream(r.id)
    expect(stored).toMatchObject({ version: 1, sessionId: 43 })
    expect(sealer.open(stored!.sealed, String(r.id))).toEqual({ token: 'renewed' })
    expect((await sessions.byToken(r.tokenHash))?.upstream.version).toBe(1)
  })

  it('lets one replica at a time claim the renewal of an upstream session version, until it stores, gives back or the lease runs out', async () => {
    const r = record()
    await sessions.create(r, 60, 60)
    const claims = await Promise.all([sessions.claimRefresh(r.id, 0, 30), sessions.claimRefresh(r.id, 0, 30)])
    expect(claims.sort()).toEqual([false, true])
    await sessions.releaseRefresh(r.id, 0)
    expect(await sessions.claimRefresh(r.id, 0, 0.05)).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // A lease that ran out (its replica died) is free again; storing new tokens ends a claim.
    expect(await sessions.claimRefresh(r.id, 0, 30)).toBe(true)
    expect(await sessions.saveUpstream(r.id, 0, r.upstream)).toBe(1)
    expect(await sessions.claimRefresh(r.id, 0, 30)).toBe(false)
    expect(await sessions.claimRefresh(r.id, 1, 30)).toBe(true)
  })

  it('deletes a session (logout): gone for every lookup, its record returned once', async () => {
    const r = record()
    await sessions.create(r, 60, 60)
    expect((await sessions.delete(r.id))?.id).toBe(r.id)
    expect(await sessions.delete(r.id)).toBeUndefined()
    expect(await sessions.byToken(r.tokenHash)).toBeUndefined()
    expect(await sessions.upstream(r.id)).toBeUndefined()
    expect(await sessions.saveUpstream(r.id, 0, r.upstream)).toBeUndefined()
  })

  it('claims expired sessions in bounded batches, each once, and leaves live ones', async () => {
    await sessions.claimExpired(1000)
    const live = record()
    await sessions.create(live, 60, 3600)
    const expired = Array.from({ length: 5 }, () => record())
    for (const r of expired) await sessions.create(r, 0, 0.01)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const [a, b] = await Promise.all([sessions.claimExpired(3), sessions.claimExpired(3)])
    const claimed = [...a!, ...b!, ...await sessions.claimExpired(100)].map((r) => r.id)
    expect(a!.length).toBeLessThanOrEqual(3)
    expect(claimed.sort()).toEqual(expired.map((r) => r.id).sort())
    expect(await sessions.claimExpired(100)).toEqual([])
    expect((await sessions.byToken(live.tokenHash))?.id).toBe(live.id)
  })

  it('finds expired sessions through the expiry index, not a scan of the table', async () => {
    const plan = await store.transaction(async (tx) => {
      await tx.query('set local enable_seqscan = off')
      return await tx.query<Record<string, string>>(`explain ${CLAIM_EXPIRED}`, [50])
    })
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/connector_sessions_expires_idx/)
  })
})
