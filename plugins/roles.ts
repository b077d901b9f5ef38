// Role checks for routes. Roles are already on the principal (the identity room maps groups
// and clients to roles); this only compares.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ERR_FORBIDDEN } from '../src/errors.js'

export type RoleGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler that lets the request through when the principal holds any of `roles`. */
    requireRole: (...roles: string[]) => RoleGuard
  }
}

export function requireRole (...roles: string[]): RoleGuard {
  if (roles.length === 0) throw new TypeError('requireRole needs at least one role')
  const wanted = [...roles]

  return async function checkRole (request, reply) {
    const principal = request.principal
    if (principal === null || principal === undefined) {
      // Fail closed: the route forgot `config.authenticate`, so there is nobody to check.
      return forbid(reply, 'no authenticated caller on this route')
    }
    if (wanted.some(role => principal.roles.includes(role))) return undefined
    return forbid(reply, `requires one of the roles ${wanted.join(', ')}; ${principal.subject} has ${principal.roles.length === 0 ? 'none' : principal.roles.join(', ')}`)
  }
}

function forbid (reply: FastifyReply, reason: string): FastifyReply {
  const err = new ERR_FORBIDDEN(reason)
  reply.log.warn({ code: err.code, reason }, 'request forbidden')
  return reply.code(err.statusCode ?? 403).send({ code: err.code, message: err.message })
}

async function sluiceRoles (fastify: FastifyInstance): Promise<void> {
  fastify.decorate('requireRole', requireRole)
}

export default fp(sluiceRoles, { name: 'sluice-roles', fastify: '5.x', dependencies: ['sluice-auth'] })
