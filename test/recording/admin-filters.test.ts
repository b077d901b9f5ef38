// Admin filters reach SQL only checked and normalised (src/recording/filters.ts): valid RFC 3339
// input Postgres itself refuses (offsets past ±15:59, year 0000) works, bad input is a 400 naming
// its parameter, nothing is a 5xx; and authorization comes before validation and 405.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normaliseTime } from '../../src/recording/filters.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { storeEngines } from '../support/stores.js'
import { startHarness, type Harness } from './harness.js'
import { bob, facts } from './helpers.js'

const slow = { timeout: 120_000 }
const OLD = Date.parse('2026-01-15T10:00:00Z') * 1000

describe('normaliseTime', () => {
  it('applies the offset itself and writes a literal Postgres accepts', () => {
    expect(normaliseTime('2026-01-01T00:00:00+18:59', 'since')).toBe('2025-12-31 05:01:00.000000+00')
    expect(normaliseTime('2026-01-01T00:00:00-2359', 'since')).toBe('2026-01-01 23:59:00.000000+00')
    expect(normaliseTime('2026-01-01 00:00:00+05', 'since')).toBe('2025-12-31 19:00:00.000000+00')
    expect(normaliseTime('2026-01-01t00:00:00.5z', 'since')).toBe('2026-01-01 00:00:00.500000+00')
  })

  it('rounds to the microsecond as Postgres does, and reads a leap second as the next minute', () => {
    expect(normaliseTime('2026-01-01T00:00:00.1234565Z', 'since')).toBe('2026-01-01 00:00:00.123457+00')
    expect(normaliseTime('2026-12-31T23:59:59.9999999Z', 'since')).toBe('2027-01-01 00:00:00.000000+00')
    expect(normaliseTime('2026-06-30T23:59:60Z', 'since')).toBe('2026-07-01 00:00:00.000000+00')
  })

  it('spells years outside 1–9999 the way Postgres reads them', () => {
    expect(normaliseTime('0000-01-01T00:00:00Z', 'since')).toBe('0001-01-01 00:00:00.000000+00 BC')
    expect(normaliseTime('0001-01-01T00:00:00+01:00', 'since')).toBe('0001-12-31 23:00:00.000000+00 BC')
    expect(normaliseTime('9999-12-31T23:59:59-23:59', 'until')).toBe('10000-01-01 23:58:59.000000+00')
    expect(normaliseTime('0099-03-01T00:00:00Z', 'since')).toBe('0099-03-01 00:00:00.000000+00')
  })

  it('refuses what is not a date-time, naming the parameter', () => {
    for (const bad of ['2026-01-01', '2026-02-30T00:00:00Z', '2025-02-29T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:00:00',
      '2026-01-01T00:00:00+24:00', '2026-13-01T00:00:00Z', 'yesterday', '2026-01-01T00:00:00Z\u0000']) {
      expect(() => normaliseTime(bad, 'until'), bad).toThrow(/^malformed request: until /)
    }
    expect(normaliseTime('2024-02-29T00:00:00Z', 'since')).toBe('2024-02-29 00:00:00.000000+00')
  })
})

describe.each(storeEngines())('admin filters on $name', slow, (engine) => {
  let idp: TestIdp
  let store: Store
  let h: Harness
  let auditor: string
  let agent: string

  // null: no Authorization header at all.
  const get = async (url: string, token: string | null = auditor, method: 'GET' | 'POST' | 'DELETE' | 'PUT' = 'GET') => {
    const res = await h.app.inject({ method, url, headers: token === null ? {} : { authorization: `Bearer ${token}` } })
    let body: any
    try { body = res.json() } catch { body = undefined }
    return { status: res.statusCode, body, text: res.body, headers: res.headers }
  }

  beforeAll(async () => {
    idp = await startTestIdp()
    store = await engine.open()
    await migrate(store)
    h = await startHarness({ store, identity: idp.identityConfig() })
    auditor = await idp.userToken({ subject: 'carol', groups: ['security'] })
    agent = await idp.userToken({ subject: 'alice', groups: ['analysts'] })
    for (let i = 0; i < 3; i++) {
      await h.recording.record(facts({ principal: bob, connection: 'lake', startedAtMicros: OLD + i * 1_000_000 }),
        { sessionKey: 'old-session', principal: bob, frontEnd: 'test', connection: 'lake' })
    }
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  it('answers an offset Postgres refuses (+18:59) as the same instant in UTC, on /events, /sessions and /export', async () => {
    // 2026-01-16T04:59:01+18:59 is 2026-01-15T10:00:01Z: the second and third of the old events.
    const offset = encodeURIComponent('2026-01-16T04:59:01+18:59')
    const events = await get(`/admin/v1/events?connection=lake&since=${offset}`)
    expect(events.status).toBe(200)
    expect(events.body.items).toHaveLength(2)
    const utc = await get('/admin/v1/events?connection=lake&since=2026-01-15T10:00:01Z')
    expect(events.body.items.map((e: { id: string }) => e.id)).toEqual(utc.body.items.map((e: { id: string }) => e.id))

    const sessions = await get(`/admin/v1/sessions?connection=lake&until=${encodeURIComponent('2026-01-01T00:00:00+18:59')}`)
    expect(sessions.status).toBe(200)
    expect(sessions.body.items).toEqual([])

    const jsonl = await get(`/admin/v1/export?since=${offset}&until=${encodeURIComponent('2026-01-16T04:59:03+18:59')}`)
    expect(jsonl.status).toBe(200)
    expect(jsonl.text.split('\n').filter((l) => l.includes('"kind":"event"') || l.includes('"requestId"')).length).toBeGreaterThanOrEqual(1)
    const csv = await get(`/admin/v1/export?format=csv&since=${offset}`)
    expect(csv.status).toBe(200)
    expect(csv.headers['content-type']).toMatch(/^text\/csv/)
    expect(csv.text.split('\n')[0]).toMatch(/^id,occurredAt,/)
  })

  it('takes year 0000 and offsets that leave 1–9999', async () => {
    expect((await get('/admin/v1/events?since=0000-01-01T00:00:00Z')).status).toBe(200)
    expect((await get(`/admin/v1/sessions?since=${encodeURIComponent('0001-01-01T00:00:00+23:59')}`)).status).toBe(200)
    expect((await get(`/admin/v1/export?format=csv&until=${encodeURIComponent('9999-12-31T23:59:59-23:59')}`)).status).toBe(200)
  })

  it('answers bad filters with a 400 that names the parameter, in JSON also for a CSV export', async () => {
    const nul = await get('/admin/v1/events?principal=a%00b')
    expect(nul.status).toBe(400)
    // The schema refuses it (pattern) and the filter layer would too (filters.ts): either names it.
    expect(nul.body.message).toMatch(/principal/)
    expect((await get('/admin/v1/sessions?frontEnd=%00')).body.message).toMatch(/frontEnd/)
    const cursor = await get(`/admin/v1/events?cursor=${Buffer.from('{"id":"x"}').toString('base64url')}`)
    expect(cursor.status).toBe(400)
    expect(cursor.body.message).toMatch(/cursor/)
    const sessionCursor = await get(`/admin/v1/sessions?cursor=${Buffer.from('{"t":"soon","id":"nope"}').toString('base64url')}`)
    expect(sessionCursor.status).toBe(400)
    const timeline = await get(`/admin/v1/sessions/00000000-0000-4000-8000-000000000000/timeline?cursor=${Buffer.from('{"id":"1e5"}').toString('base64url')}`)
    expect(timeline.status).toBeLessThan(500)
    const csv = await get('/admin/v1/export?format=csv&since=2026-02-30T00:00:00Z')
    expect(csv.status).toBe(400)
    expect(csv.headers['content-type']).toMatch(/^application\/json/)
    expect(csv.body.message).toMatch(/since/)
  })

  it('refuses a caller without the auditor role before validating anything', async () => {
    const long = await get(`/admin/v1/events/${'x'.repeat(70)}`, agent)
    expect(long.status).toBe(403)
    expect(long.text).not.toMatch(/params|characters|must/)
    expect((await get('/admin/v1/events?limit=100000&bogus=1', agent)).status).toBe(403)
    expect((await get(`/admin/v1/events/${'x'.repeat(70)}`, null)).status).toBe(401)
    // The auditor gets the validation detail.
    expect((await get(`/admin/v1/events/${'x'.repeat(70)}`)).body.message).toMatch(/64 characters/)
    // Past the router's own default limit (100) too: no bare 414 before authentication.
    const segment = 'y'.repeat(3000)
    expect((await get(`/admin/v1/sessions/${segment}/timeline`, null)).status).toBe(401)
    expect((await get(`/admin/v1/sessions/${segment}/timeline`, agent)).status).toBe(403)
    expect((await get(`/admin/v1/events/${segment}`)).status).toBe(400)
  })

  it('answers an undeclared method with 405 and Allow, after authentication and the role check', async () => {
    const post = await get('/admin/v1/events', auditor, 'POST')
    expect(post.status).toBe(405)
    expect(post.headers.allow).toBe('GET, HEAD')
    expect(post.body).toMatchObject({ code: 'SLUICE_METHOD_NOT_ALLOWED' })
    expect((await get('/admin/v1/sessions/abc/timeline', auditor, 'DELETE')).status).toBe(405)
    expect((await get('/admin/v1/export', agent, 'PUT')).status).toBe(403)
    expect((await get('/admin/v1/verify', null, 'POST')).status).toBe(401)
  })
})
