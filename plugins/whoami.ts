// GET /v1/whoami: lets an agent (or its operator) check what Sluice makes of its token —
// subject, groups, the roles they map to and the delegation chain — before it sends SQL.
// It is a front-end route like any other, so each call is a recorded session event.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export async function whoami (request: FastifyRequest) {
  const p = request.principal
  if (p === null) return {}
  return {
    subject: p.subject,
    issuer: p.issuer,
    type: p.type,
    groups: p.groups,
    roles: p.roles,
    clientId: p.clientId ?? null,
    delegation: p.delegation,
    expiresAt: p.expiresAt.toISOString()
  }
}

async function whoamiPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.get('/v1/whoami', { config: { frontEnd: 'identity', authenticate: true } }, whoami)
}

export default fp(whoamiPlugin, {
  name: 'sluice-whoami',
  fastify: '5.x',
  dependencies: ['sluice-auth', 'sluice-recording']
})
