// Result capture per connection (connections.<name>.recording): a connection with capture off
// still has every event written, without a capture; one with a smaller budget truncates at it;
// the others keep the top-level budget. On both stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { getEvent, searchEvents } from '../../src/recording/search.js'
import { migrate } from '../../src/store/migrate.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { storeEngines } from '../support/stores.js'
import { startHarness, type Harness } from './harness.js'

const slow = { timeout: 120_000 }

describe.each(storeEngines())('per-connection result capture on $name', slow, (engine) => {
  let idp: TestIdp
  let h: Harness
  let token: string

  beforeAll(async () => {
    idp = await startTestIdp()
    const store = await engine.open()
    await migrate(store)
    h = await startHarness({
      store,
      identity: idp.identityConfig(),
      connections: {
        // Never dialled (the harness answers the statements itself); a PostgreSQL connection names its database all the same.
        wh: { kind: 'postgres', url: 'postgres://127.0.0.1:5432/unused' },
        hr: { kind: 'postgres', url: 'postgres://127.0.0.1:5432/unused', recording: { captureResults: false } },
        // The columns take 63 bytes of the budget, a row 10: room for the first row only.
        small: { kind: 'postgres', url: 'postgres://127.0.0.1:5432/unused', recording: { resultCaptureBytes: 75 } }
      }
    })
    token = await idp.userToken({ subject: 'alice', groups: ['analysts'] })
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  async function completedEventOf (connection: string) {
    const res = await h.app.inject({ method: 'POST', url: '/test/sql', headers: { authorization: `Bearer ${token}` }, payload: { sql: 'SELECT id, email FROM orders', connection } })
    expect(res.statusCode).toBe(200)
    expect(res.json().rows).toEqual([[1, '***'], [2, '***'], [3, '***']])
    const requestId = String(res.headers['x-request-id'])
    const page = await searchEvents(h.app.store, { requestId })
    const events = page.items.filter((e) => e.requestId === requestId)
    expect(events.map((e) => e.phase).sort()).toEqual(['admitted', 'completed'])
    const completed = events.find((e) => e.phase === 'completed')!
    return (await getEvent(h.app.store, completed.id))!
  }

  it('writes the events of a connection with capture off, without a capture', async () => {
    const e = await completedEventOf('hr')
    expect(e).toMatchObject({ connection: 'hr', outcome: 'ok', rowsReturned: 3, hasResult: false, resultDigest: null, resultTruncated: false })
    expect(e.masking).toEqual([{ column: 'EMAIL', rule: 'mask-email', values: 3 }])
    expect(e.result).toBeNull()
  })

  it('keeps capturing for the other connections, each with its own budget', async () => {
    const wh = await completedEventOf('wh')
    expect(wh).toMatchObject({ connection: 'wh', hasResult: true, resultTruncated: false })
    expect(wh.result).toMatchObject({ rows: [[1, '***'], [2, '***'], [3, '***']], rowsReleased: 3, truncated: false })
    const small = await completedEventOf('small')
    expect(small).toMatchObject({ connection: 'small', hasResult: true, resultTruncated: true })
    expect(small.result).toMatchObject({ rows: [[1, '***']], rowsReleased: 3, truncated: true })
  })

  it('validates the settings', () => {
    expect(() => validateConfig({ connections: { hr: { kind: 'postgres', recording: { captureResults: 'no' } } } })).toThrow()
    expect(() => validateConfig({ connections: { hr: { kind: 'postgres', recording: { resultCaptureBytes: -1 } } } })).toThrow()
    expect(() => validateConfig({ connections: { hr: { kind: 'postgres', recording: { capture: true } } } })).toThrow()
  })
})
