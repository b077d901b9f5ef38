// Graceful shutdown: a request in flight when close() starts still gets its full answer, new
// connections are refused, and the store is closed only after the drain.
import { request as httpRequest } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { Pipeline } from '../../src/pipeline.js'
import { passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import { buildServer } from '../../src/server.js'
import { openPgliteStore } from '../../src/store/pglite.js'
import type { Store } from '../../src/store/store.js'

function get (url: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject).end()
  })
}

describe('graceful shutdown', () => {
  let store: Store | undefined
  afterEach(async () => { await store?.close().catch(() => {}) })

  it('drains in-flight requests, then refuses new ones and closes the store', async () => {
    store = await openPgliteStore({ dataDir: 'memory://' })
    const config = validateConfig({ log: { level: 'silent' } })
    const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
    const app = await buildServer({ config, store, verifier: null, pipeline, logger: false })
    let entered!: () => void
    const inside = new Promise<void>((resolve) => { entered = resolve })
    app.get('/slow', async function slow () {
      entered()
      await new Promise((resolve) => setTimeout(resolve, 300))
      return { finished: true }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }

    const inflight = get(`http://127.0.0.1:${port}/slow`)
    await inside
    const closing = app.close()
    const answer = await inflight
    expect(answer).toEqual({ status: 200, body: JSON.stringify({ finished: true }) })
    await closing

    await expect(get(`http://127.0.0.1:${port}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await expect(store.ping()).rejects.toBeDefined()
  })
})
