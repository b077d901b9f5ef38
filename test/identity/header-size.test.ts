// Regression (issue 10, item 8): a token header over 16 KiB got Node's bare 431 (no
// WWW-Authenticate, no event), because Node's HTTP parser refuses request heads over its 16 KiB
// default before Sluice sees the request. Sluice now accepts heads up to listen.maxHeaderBytes
// (default 64 KiB, at least identity.maxTokenBytes + 8 KiB), so its verifier refuses an
// oversize token itself: 401, the header, a recorded event. Real sockets only: inject() never
// runs Node's parser.
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BQ_PROJECT, startInputGateway, type InputGateway } from '../support/input-gateway.js'
import { validClaims } from './forge.js'

/** A token signed by the trusted key, padded with a claim to about `bytes` bytes. */
async function tokenOfSize (gw: InputGateway, bytes: number): Promise<string> {
  const bare = await gw.idp.sign(validClaims(gw.idp.issuer, { sub: 'alice', groups: ['ai-agents'], pad: '' }))
  // base64url grows 4/3: pad the claim so the encoded token lands near the wanted size.
  const pad = 'x'.repeat(Math.max(0, Math.floor((bytes - bare.length) * 3 / 4)))
  return await gw.idp.sign(validClaims(gw.idp.issuer, { sub: 'alice', groups: ['ai-agents'], pad }))
}

/** One raw HTTP/1.1 request; resolves with the status line and body the server wrote before closing. */
async function rawRequest (gw: InputGateway, head: string): Promise<{ status: number, body: string }> {
  const { port } = new URL(gw.url)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (err) => { if (chunks.length === 0) reject(err) })
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
    socket.end(head)
  })
}

describe('request heads larger than Node\'s 16 KiB default', () => {
  let gw: InputGateway

  beforeAll(async () => { gw = await startInputGateway() })
  afterAll(async () => { await gw?.close() })

  async function eventOf (requestId: string | null): Promise<Record<string, unknown> | undefined> {
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    return events.find((e) => e.requestId === requestId) as Record<string, unknown> | undefined
  }

  it.each([20 * 1024, 48 * 1024])('a %i-byte token is refused by Sluice with 401, WWW-Authenticate and an event', async (bytes) => {
    const token = await tokenOfSize(gw, bytes)
    expect(token.length).toBeGreaterThan(16 * 1024)

    for (const [path, init] of [
      ['/v1/whoami', {}],
      ['/api/v2/statements', { method: 'POST', body: JSON.stringify({ statement: 'SELECT 1' }) }],
      [`/bigquery/v2/projects/${BQ_PROJECT}/queries`, { method: 'POST', body: JSON.stringify({ query: 'SELECT 1' }) }]
    ] as const) {
      const res = await fetch(`${gw.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } })
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="sluice", error="invalid_token", error_description="the token was rejected: token larger than 16384 bytes"')
      expect(await res.text()).toContain('token larger than 16384 bytes')
      expect(await eventOf(res.headers.get('x-request-id'))).toMatchObject({ outcome: 'unauthenticated', statusCode: 401, errorCode: 'SLUICE_AUTH_INVALID', reason: expect.stringContaining('token larger than 16384 bytes') })
    }
    expect(gw.bigquery.bodies).toEqual([])
  })

  it('a token within identity.maxTokenBytes in a head over 16 KiB is accepted', async () => {
    const token = await tokenOfSize(gw, 16_000)
    expect(token.length).toBeLessThanOrEqual(16384)
    // Other headers push the head past Node's 16 KiB default.
    const res = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}`, 'x-padding': 'p'.repeat(4096) } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ subject: 'alice', roles: ['agent'] })
  })

  it('a head beyond listen.maxHeaderBytes gets a 431 that names the limits', async () => {
    // Just past the limit, so the server has the whole head when it answers.
    const head = `GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${'a'.repeat(65 * 1024)}\r\nConnection: close\r\n\r\n`
    const res = await rawRequest(gw, head)
    expect(res.status).toBe(431)
    expect(JSON.parse(res.body)).toEqual({
      code: 'SLUICE_HEADERS_TOO_LARGE',
      message: 'the request headers exceed 65536 bytes (listen.maxHeaderBytes); a token may be at most 16384 bytes (identity.maxTokenBytes)'
    })
  })
})

describe('listen.maxHeaderBytes is what the server enforces', () => {
  let gw: InputGateway

  beforeAll(async () => { gw = await startInputGateway({ listen: { maxHeaderBytes: 32768 } }) })
  afterAll(async () => { await gw?.close() })

  it('a 24 KiB head passes, a 33 KiB one is refused with 431', async () => {
    const ok = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${await gw.token('alice')}`, 'x-padding': 'p'.repeat(24 * 1024) } })
    expect(ok.status).toBe(200)
    const res = await rawRequest(gw, `GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'p'.repeat(33 * 1024)}\r\nConnection: close\r\n\r\n`)
    expect(res.status).toBe(431)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'SLUICE_HEADERS_TOO_LARGE', message: expect.stringContaining('exceed 32768 bytes') })
  })
})
