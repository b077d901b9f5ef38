// RFC 9110 §15.5.6: a method the resource does not take is 405 with `Allow`, not the server's
// "no route" 404. The refusal is an ordinary route of the front end that owns the path, so it
// runs after the same authentication (and role check) as the declared methods, is recorded like
// them, and is rendered in that front end's own error shape by its error handler. It answers in
// onRequest, before any body is read: a QUERY without Content-Type or a body of an unknown type
// must not turn the 405 into a 400 or 415.
import type { FastifyContextConfig, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { ERR_METHOD_NOT_ALLOWED } from '../src/errors.js'

export interface RefuseMethodsOptions {
  config: FastifyContextConfig
  /** The declared routes' authorization (a role guard), so refusals do not bypass it. */
  authorize?: onRequestHookHandler
  /** The path as clients know it, for the message (defaults to the route's url). */
  label?: string
}

/** The Allow value for the methods a path declares; HEAD comes with GET, as Fastify serves it. */
export function allowHeader (declared: string[]): string {
  const methods = declared.map((m) => m.toUpperCase())
  if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD')
  return methods.join(', ')
}

export function refuseOtherMethods (app: FastifyInstance, url: string, declared: string[], options: RefuseMethodsOptions): void {
  const allow = allowHeader(declared)
  const taken = new Set(allow.split(', '))
  const methods = app.supportedMethods.filter((m) => !taken.has(m))
  async function methodNotAllowed (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header('allow', allow)
    throw new ERR_METHOD_NOT_ALLOWED(request.method, options.label ?? url, allow)
  }
  app.route({
    method: methods,
    url,
    config: options.config,
    // Route hooks run after the server's own onRequest hooks, authentication among them.
    onRequest: options.authorize === undefined ? [methodNotAllowed] : [options.authorize, methodNotAllowed],
    handler: methodNotAllowed
  })
}
