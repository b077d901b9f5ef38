// CancelRequest across replicas: a cancel arrives on a new connection, which a load balancer
// may hand to another gateway than the session's. The backend key Sluice issued is in the store
// (migration 0009), so the other replica cancels the session's upstream statement itself.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storeBackendKeys } from '../../src/frontends/postgres/backend-keys.js'
import { migrate } from '../../src/store/migrate.js'
import { storeEngines } from '../support/stores.js'
import { agentClient, startWireGateway, type WireGateway } from './harness.js'

describe.each(storeEngines())('backend keys on $name', (engine) => {
  it('stores, finds by pid and secret only, refuses a taken pid, removes', async () => {
    const store = await engine.open()
    try {
      await migrate(store)
      const keys = storeBackendKeys(store)
      const key = { pid: 4242, secret: 77, connection: 'app-db', upstreamPid: 1234, upstreamSecret: 99 }
      expect(await keys.put(key)).toBe(true)
      expect(await keys.put({ ...key, secret: 1 })).toBe(false)
      expect(await keys.find(4242, 77)).toEqual(key)
      expect(await keys.find(4242, 78)).toBeUndefined()
      await keys.remove(4242)
      expect(await keys.find(4242, 77)).toBeUndefined()
    } finally {
      await store.close()
      await engine.cleanup?.()
    }
  })
})

let w: WireGateway
beforeAll(async () => { w = await startWireGateway() }, 120_000)
afterAll(async () => { await w?.close() })

it('a CancelRequest sent to another replica cancels the statement', async () => {
  const other = await w.replica()
  const client = await agentClient(w)
  try {
    const sleeping = client.query('select pg_sleep(60)').catch((e: unknown) => e)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const canceller = new pg.Client({ host: '127.0.0.1', port: other.postgres?.port as number })
    canceller.on('error', () => {})
    ;(canceller as unknown as { connection: NodeJS.EventEmitter }).connection.on('error', () => {})
    ;(canceller as unknown as { cancel: (c: pg.Client, q: unknown) => void }).cancel(client, (client as unknown as { _activeQuery: unknown })._activeQuery)
    const err = await sleeping as pg.DatabaseError
    expect(err.code).toBe('57014')
    expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }])
  } finally { await client.end() }
  // The session's key is gone with the session (removed as the server sees the socket close).
  let left = -1
  for (let i = 0; i < 50 && left !== 0; i++) {
    left = (await w.events`select count(*)::int as n from postgres_backend_keys`)[0]?.n as number
    if (left !== 0) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  expect(left).toBe(0)
}, 120_000)
