import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import authPlugin, { createAuthHook, type AuthFailure, type AuthPluginOptions } from '../../plugins/auth.js'
import rolesPlugin from '../../plugins/roles.js'
import { ERR_AUTH_ISSUER_UNAVAILABLE } from '../../src/errors.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { attackerKey, signWith, validClaims } from './forge.js'

interface Built { app: FastifyInstance, logs: string[] }

async function build (options: AuthPluginOptions): Promise<Built> {
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { logs.push(String(chunk)); done() } })
  const app = Fastify({ logger: { level: 'trace', stream } })
  await app.register(authPlugin, options)
  await app.register(rolesPlugin)
  app.get('/healthz', async (request) => ({ ok: true, principal: request.principal }))
  app.get('/whoami', { config: { authenticate: true } }, async (request) => request.principal)
  app.get('/admin', { config: { authenticate: true }, preHandler: app.requireRole('admin', 'owner') }, async () => ({ ok: true }))
  app.get('/unguarded-admin', { preHandler: app.requireRole('admin') }, async () => ({ ok: true }))
  await app.ready()
  return { app, logs }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

describe('sluice-auth with a real issuer', () => {
  let idp: TestIdp
  let built: Built
  const failures: Array<{ code: string, url: string }> = []

  beforeAll(async () => {
    idp = await startTestIdp()
    const verifier = createTokenVerifier(idp.identityConfig({ groupRoles: { dba: ['admin'] } }))
    built = await build({
      verifier,
      onFailure: async (request: FastifyRequest, err: AuthFailure) => {
        await new Promise(resolve => setTimeout(resolve, 20))
        failures.push({ code: err.code, url: request.url })
      }
    })
  })
  afterAll(async () => {
    await built?.app.close()
    await idp?.close()
  })

  test('public routes need no token and have no principal', async () => {
    const res = await built.app.inject({ url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ ok: true, principal: null })
  })

  test('missing token: 401, challenge without an error code', async () => {
    const res = await built.app.inject({ url: '/whoami' })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer realm="sluice"')
    expect(res.json()).toEqual({ code: 'SLUICE_AUTH_MISSING', message: expect.stringContaining('bearer token is required') })
  })

  test('another scheme counts as no bearer token', async () => {
    const res = await built.app.inject({ url: '/whoami', headers: { authorization: 'Basic YWxpY2U6cHc=' } })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer realm="sluice"')
  })

  test('forged token: 401 with invalid_token, the reason, and a recorded failure before the reply', async () => {
    const { privateKey } = await attackerKey()
    const forged = await signWith(privateKey, validClaims(idp.issuer), { alg: 'RS256', kid: idp.kid })
    const before = failures.length

    const res = await built.app.inject({ url: '/whoami', headers: bearer(forged) })

    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate'])
      .toBe('Bearer realm="sluice", error="invalid_token", error_description="the token was rejected: signature invalid"')
    expect(res.json()).toEqual({ code: 'SLUICE_AUTH_INVALID', message: 'the token was rejected: signature invalid' })
    // onFailure sleeps before recording; seeing its entry now means the reply waited for it.
    expect(failures.slice(before)).toEqual([{ code: 'SLUICE_AUTH_INVALID', url: '/whoami' }])
  })

  test('good token: the principal reaches the handler', async () => {
    const token = await idp.userToken({ subject: 'alice', groups: ['dba'] })
    const res = await built.app.inject({ url: '/whoami', headers: bearer(token) })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ subject: 'alice', type: 'human', groups: ['dba'], roles: ['admin'], clientId: 'cursor' })
  })

  test('requireRole: 403 without any of the roles, through with one', async () => {
    const intern = await idp.userToken({ subject: 'ivan', groups: ['interns'] })
    const denied = await built.app.inject({ url: '/admin', headers: bearer(intern) })
    expect(denied.statusCode).toBe(403)
    expect(denied.json()).toEqual({ code: 'SLUICE_FORBIDDEN', message: expect.stringContaining('requires one of the roles admin, owner') })

    const dba = await idp.userToken({ subject: 'dora', groups: ['dba'] })
    const allowed = await built.app.inject({ url: '/admin', headers: bearer(dba) })
    expect(allowed.statusCode).toBe(200)
  })

  test('requireRole on a route without authentication fails closed', async () => {
    const res = await built.app.inject({ url: '/unguarded-admin' })
    expect(res.statusCode).toBe(403)
    expect(res.json().message).toContain('no authenticated caller')
  })

  test('tokens never reach the logs, the refusal reason does', async () => {
    const good = await idp.userToken({ subject: 'alice', groups: ['dba'] })
    const expired = await idp.sign(validClaims(idp.issuer, { exp: Math.floor(Date.now() / 1000) - 3600 }))
    const logsBefore = built.logs.length

    await built.app.inject({ url: '/whoami', headers: bearer(good) })
    const res = await built.app.inject({ url: '/whoami', headers: bearer(expired) })
    expect(res.statusCode).toBe(401)

    const captured = built.logs.slice(logsBefore).join('\n')
    expect(captured).toContain('authentication refused')
    expect(captured).toContain('expired')
    for (const token of [good, expired]) {
      expect(captured).not.toContain(token)
      expect(captured).not.toContain(token.split('.')[1])
      expect(captured).not.toContain(token.split('.')[2])
    }
  })
})

describe('sluice-auth without an issuer', () => {
  test('verifier null: every protected request is 401, identity not configured', async () => {
    const { app } = await build({ verifier: null })
    try {
      const bare = await app.inject({ url: '/whoami' })
      expect(bare.statusCode).toBe(401)
      expect(bare.json().message).toContain('identity is not configured')
      expect(bare.headers['www-authenticate']).toBe('Bearer realm="sluice"')

      const withToken = await app.inject({ url: '/whoami', headers: bearer('a.b.c') })
      expect(withToken.statusCode).toBe(401)
      expect(withToken.headers['www-authenticate']).toContain('error="invalid_token"')

      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200)
    } finally {
      await app.close()
    }
  })

  test('issuer unavailable: 503 without a bearer challenge', async () => {
    const verifier = { verify: async () => { throw new ERR_AUTH_ISSUER_UNAVAILABLE('discovery document timed out') } }
    const { app } = await build({ verifier })
    try {
      const res = await app.inject({ url: '/whoami', headers: bearer('a.b.c') })
      expect(res.statusCode).toBe(503)
      expect(res.headers['www-authenticate']).toBeUndefined()
      expect(res.json()).toEqual({ code: 'SLUICE_AUTH_ISSUER_UNAVAILABLE', message: expect.stringContaining('timed out') })
    } finally {
      await app.close()
    }
  })
})

describe('createAuthHook', () => {
  test('a verifier bug still refuses, and a failing onFailure does not turn 401 into 500', async () => {
    const secret = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl'
    const logs: string[] = []
    const stream = new Writable({ write (chunk, _encoding, done) { logs.push(String(chunk)); done() } })
    const app = Fastify({ logger: { level: 'trace', stream } })
    const hook = createAuthHook({
      verifier: { verify: async (token) => { throw new TypeError(`boom near ${token}`) } },
      onFailure: () => { throw new Error('store down') }
    })
    app.decorateRequest('principal', null)
    app.get('/x', { onRequest: hook }, async () => ({ ok: true }))
    try {
      const res = await app.inject({ url: '/x', headers: bearer(secret) })
      expect(res.statusCode).toBe(401)
      expect(res.json().message).toContain('token could not be verified')
      const captured = logs.join('\n')
      expect(captured).toContain('TypeError')
      expect(captured).not.toContain(secret)
    } finally {
      await app.close()
    }
  })

  test('sluice-roles refuses to load without sluice-auth', async () => {
    const app = Fastify()
    await expect(app.register(rolesPlugin).ready()).rejects.toThrow(/sluice-auth/)
    await app.close()
  })
})
