// Side B of the gateway benchmark: a bare pass-through reverse proxy in Node — Fastify with
// @fastify/http-proxy in front of the instant upstream, nothing else (no auth, no parsing, no
// logging) — so the table shows what plain proxying costs before Sluice's own work.
// Its own process, so its CPU is measured apart from the load generator's.
//
// Run alone: node --import tsx test/bench/bare-proxy.ts <port> <upstream url>
import Fastify, { type FastifyPluginAsync } from 'fastify'

// A devDependency only this process loads: a non-literal specifier keeps the typecheck of a
// checkout that has not installed it yet (npm install) from failing on the import.
const MODULE_NAME: string = '@fastify/http-proxy'
const { default: httpProxy } = await import(MODULE_NAME) as { default: FastifyPluginAsync<{ upstream: string }> }

const [port, upstream] = process.argv.slice(2)
if (port === undefined || upstream === undefined) {
  process.stderr.write('usage: bare-proxy.ts <port> <upstream url>\n')
  process.exit(2)
}
const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 })
await app.register(httpProxy, { upstream })
await app.listen({ host: '127.0.0.1', port: Number(port) })
process.stdout.write(`bare proxy listening on ${port} → ${upstream}\n`)
