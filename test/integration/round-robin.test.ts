// The round-robin proxy the replica tests stand behind, against two plain HTTP servers: what
// those tests rely on it for — alternation even on one keep-alive connection, the client's Host
// header and body passed through untouched, a refusing replica skipped, a replica dying
// mid-answer seen by the client as a broken answer (never a short one).
import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRoundRobinProxy, type RoundRobinProxy } from '../support/round-robin.js'

interface Seen { name: string, host: string | undefined, body: string, path: string }

async function backend (name: string, seen: Seen[]): Promise<{ server: Server, url: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      seen.push({ name, host: req.headers.host, body, path: req.url ?? '' })
      if (req.url === '/half') {
        // Promise a long answer, send part of it, then die.
        res.writeHead(200, { 'content-length': '1000000' })
        res.write('x'.repeat(1000))
        setTimeout(() => { res.socket?.destroy() }, 50)
        return
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }).end(`${name}:${body}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

/** One request on `agent` (keep-alive: consecutive calls reuse one connection). */
async function call (agent: Agent, url: string, method = 'GET', body?: string, host?: string): Promise<{ status: number, text: string, backend: string | undefined }> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent, headers: host === undefined ? {} : { host } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => { text += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text, backend: res.headers['x-backend'] as string | undefined }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('round-robin proxy', () => {
  const seen: Seen[] = []
  let a: { server: Server, url: string }
  let b: { server: Server, url: string }
  let proxy: RoundRobinProxy
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })

  beforeAll(async () => {
    a = await backend('a', seen)
    b = await backend('b', seen)
    proxy = await startRoundRobinProxy([a.url, b.url])
  })
  afterAll(async () => {
    agent.destroy()
    await proxy.close()
    for (const s of [a, b]) {
      s.server.closeAllConnections()
      await new Promise((resolve) => s.server.close(resolve))
    }
  })

  it('alternates replicas on one keep-alive connection and logs who answered', async () => {
    const sockets = new Set<unknown>()
    agent.on('free', (socket) => sockets.add(socket))
    proxy.setNext(0)
    const answers = []
    for (let i = 0; i < 4; i++) answers.push(await call(agent, `${proxy.url}/q?i=${i}`))
    expect(answers.map((r) => r.backend)).toEqual(['a', 'b', 'a', 'b'])
    expect(sockets.size).toBe(1)
    expect(proxy.log.slice(-4)).toEqual([0, 1, 0, 1].map((replica, i) => ({ method: 'GET', path: `/q?i=${i}`, replica, status: 200 })))
  })

  it('passes the client\'s Host header and body through unchanged', async () => {
    const res = await call(agent, `${proxy.url}/echo`, 'POST', '{"statement":"SELECT 1"}', 'sluice.example:8443')
    expect(res.text).toMatch(/^[ab]:\{"statement":"SELECT 1"\}$/)
    expect(seen.at(-1)).toMatchObject({ host: 'sluice.example:8443', body: '{"statement":"SELECT 1"}', path: '/echo' })
  })

  it('breaks the client\'s answer when a replica dies mid-answer', async () => {
    await expect(call(new Agent(), `${proxy.url}/half`)).rejects.toThrow()
  })

  it('skips a replica that refuses connections, and answers 502 when none is left', async () => {
    b.server.closeAllConnections()
    await new Promise((resolve) => b.server.close(resolve))
    const answers = []
    for (let i = 0; i < 3; i++) answers.push(await call(agent, `${proxy.url}/after`))
    expect(answers.map((r) => [r.status, r.backend])).toEqual([[200, 'a'], [200, 'a'], [200, 'a']])
    a.server.closeAllConnections()
    await new Promise((resolve) => a.server.close(resolve))
    const none = await call(agent, `${proxy.url}/none`)
    expect(none.status).toBe(502)
    expect(none.text).toContain('no replica answered')
  })
})
