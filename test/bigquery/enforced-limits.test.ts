// Limits Sluice keeps itself on the BigQuery front end: an unreachable upstream answered as
// BigQuery's retryable 503 backendError naming the connection (nothing ran).
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, startSluice, type Sluice } from './harness.js'

/** A loopback port nothing listens on: connecting to it is refused at once. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

let sluice: Sluice

beforeAll(async () => {
  const down = await closedPort()
  sluice = await startSluice({
    connections: {
      'bq-down': { kind: 'bigquery', url: `http://127.0.0.1:${down}`, project: 'down-project', default: true }
    }
  })
})

afterAll(async () => { await sluice?.close() })

describe('an unreachable BigQuery upstream is retryable and named', () => {
  it('jobs.query answers 503 backendError naming the connection', async () => {
    const res = await api(sluice, await sluice.token(), 'POST', '/bigquery/v2/projects/down-project/queries', { query: 'SELECT 1', useLegacySql: false })
    expect(res.status).toBe(503)
    expect(res.json.error.errors[0].reason).toBe('backendError')
    expect(res.json.error.status).toBe('UNAVAILABLE')
    expect(res.json.error.message).toContain('bq-down')
    expect(res.json.error.message).toMatch(/nothing was executed; retry later/)
  })

  it('@google-cloud/bigquery (retries off) sees the 503 backendError', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: await sluice.token() })
    const bq = new BigQuery({ projectId: 'down-project', apiEndpoint: sluice.url, authClient, autoRetry: false })
    const err = await bq.query({ query: 'SELECT 1' }).then(() => undefined, (e: unknown) => e) as { code?: number, errors?: Array<{ reason?: string }>, message?: string }
    expect(err?.code).toBe(503)
    expect(err?.errors?.[0]?.reason).toBe('backendError')
    expect(err?.message).toContain('bq-down')
  })
})
