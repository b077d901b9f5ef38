// Limits Sluice keeps itself, whatever the warehouse does: an unreachable upstream answered as
// retryable in each Snowflake protocol (nothing ran), the rule's statement timeout cancelling a
// statement that stalls, and maxRows truncating (announced, recorded) or refusing.
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import snowflake from 'snowflake-sdk'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'

/** A loopback port nothing listens on: connecting to it is refused at once. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

describe('an unreachable Snowflake upstream is retryable and named', () => {
  let gw: SnowflakeGateway
  let headers: Record<string, string>

  beforeAll(async () => {
    const port = await closedPort()
    gw = await startSnowflakeGateway({
      connections: { 'snowflake-down': { kind: 'snowflake', url: `http://127.0.0.1:${port}`, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } }
    })
    headers = { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' }
  })

  afterAll(async () => { await gw?.close() })

  it('SQL API: 503 with Retry-After, naming the connection, instead of 422 000603', async () => {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: 'SELECT 1' }) })
    const body = await res.body.json() as { code: string, message: string }
    expect(res.statusCode).toBe(503)
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    expect(body.message).toContain('snowflake-down')
    expect(body.message).toMatch(/unreachable, nothing was executed; retry later/)
  })

  it('connector login: HTTP 503 (which the drivers retry) with the connector body naming the connection', async () => {
    const res = await request(`${gw.url}/session/v1/login-request`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ data: { AUTHENTICATOR: 'OAUTH', TOKEN: headers.authorization?.slice(7), ACCOUNT_NAME: 'sluice', CLIENT_APP_ID: 'JavaScript' } })
    })
    const body = await res.body.json() as { success: boolean, message: string }
    expect(res.statusCode).toBe(503)
    expect(body.success).toBe(false)
    expect(body.message).toContain('snowflake-down')
  })

  it('snowflake-sdk: the login fails with the retryable 503 after its (few) retries', async () => {
    const connection = snowflake.createConnection({
      accessUrl: gw.url,
      account: 'sluice',
      authenticator: 'OAUTH',
      token: await gw.token('alice'),
      sfRetryMaxLoginRetries: 1
    } as Parameters<typeof snowflake.createConnection>[0])
    const err = await new Promise<unknown>((resolve) => { connection.connect((e) => { resolve(e) }) })
    // The driver's network-failure error after retrying (401002), not a statement error (000603).
    expect(err).toMatchObject({ name: 'RequestFailedError', code: 401002 })
  }, 60_000)
})
