// Liveness and readiness for orchestrators. /readyz checks what a request needs: the store
// answers and the configuration was loaded (it always is once the server exists).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export function createReadinessHandler (deps: { ping: () => Promise<void> }) {
  return async function readiness (request: FastifyRequest, reply: FastifyReply) {
    try {
      await deps.ping()
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'readiness: store unreachable')
      return reply.code(503).send({ status: 'unavailable', checks: { store: 'unreachable', config: 'loaded' } })
    }
    return { status: 'ready', checks: { store: 'ok', config: 'loaded' } }
  }
}

async function healthPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', { logLevel: 'warn' }, async function liveness () {
    return { status: 'alive' }
  })
  fastify.get('/readyz', { logLevel: 'warn' }, createReadinessHandler({ ping: () => fastify.store.ping() }))
}

export default fp(healthPlugin, { name: 'sluice-health', fastify: '5.x', dependencies: ['sluice-store'] })
