// A round-robin HTTP reverse proxy in front of several gateway replicas, standing in for a load
// balancer that does not pin clients: each request goes to the next replica, so two requests of
// one client on one keep-alive connection still land on different replicas. A replica that
// refuses the connection (killed, restarting) is skipped for the next one, as a balancer's
// health check would, so "kill one replica, the next fetch goes to the other" can be tested.
//
// It rewrites nothing but where it connects: the client's Host header is kept (the gateway
// builds next-page and status URLs from it, so they point back at the proxy), no
// X-Forwarded-* is added. Request bodies are read whole before forwarding, so a refused
// replica can be retried with the same bytes (statements are bounded by listen.bodyLimitBytes);
// responses stream through unbuffered, so a large result costs the proxy no memory.
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pipeline } from 'node:stream'

export interface ProxyLogEntry {
  method: string
  /** Path and query as the client sent them. */
  path: string
  /** Index into the proxy's targets of the replica that answered. */
  replica: number
  status: number
}

export interface RoundRobinProxy {
  url: string
  port: number
  /** Every answered request, in the order the answers started. */
  readonly log: ProxyLogEntry[]
  /** Makes the next request try `replica` first (then round-robin again from there). */
  setNext: (replica: number) => void
  close: () => Promise<void>
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, not the message. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer'])

function endToEnd (headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** `targets`: base URLs (http://127.0.0.1:port) of the replicas, in replica order. */
export async function startRoundRobinProxy (targets: string[]): Promise<RoundRobinProxy> {
  if (targets.length === 0) throw new Error('round-robin proxy: no targets')
  const upstreams = targets.map((t) => new URL(t))
  const agents = targets.map(() => new Agent({ keepAlive: true }))
  const log: ProxyLogEntry[] = []
  let cursor = 0

  function forward (req: IncomingMessage, res: ServerResponse, body: Buffer, index: number, attempts: number): void {
    const target = upstreams[index] as URL
    const upstream = request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: endToEnd(req.headers),
      agent: agents[index]
    }, (answer) => {
      log.push({ method: req.method ?? 'GET', path: req.url ?? '/', replica: index, status: answer.statusCode ?? 0 })
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers))
      // A replica dying mid-answer must reach the client as a broken response, not a short one.
      pipeline(answer, res, (err) => { if (err !== undefined && err !== null) res.destroy(err) })
    })
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // Certainly not delivered: refused, or a pooled keep-alive socket the dead replica had closed.
      const undelivered = err.code === 'ECONNREFUSED' || (upstream.reusedSocket && err.code === 'ECONNRESET')
      if (undelivered && attempts + 1 < upstreams.length) {
        forward(req, res, body, (index + 1) % upstreams.length, attempts + 1)
      } else if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`round-robin proxy: no replica answered (${err.code ?? err.message})`)
      } else {
        res.destroy(err)
      }
    })
    upstream.end(body)
  }

  const server = createServer((req, res) => {
    const first = cursor
    cursor = (cursor + 1) % upstreams.length
    readBody(req).then((body) => { forward(req, res, body, first, 0) }, (err: Error) => { res.destroy(err) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    setNext (replica) {
      if (!Number.isInteger(replica) || replica < 0 || replica >= upstreams.length) throw new Error(`round-robin proxy: no replica ${replica}`)
      cursor = replica
    },
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
      for (const agent of agents) agent.destroy()
    }
  }
}
