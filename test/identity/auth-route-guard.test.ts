import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import authPlugin from '../../plugins/auth.js'

describe('front-end routes must decide on authentication', () => {
  it('refuses to register a front-end route that leaves config.authenticate unset', async () => {
    const app = Fastify()
    await app.register(authPlugin, { verifier: null })
    expect(() => app.get('/v1/forgot', { config: { frontEnd: 'test' } }, async () => 'open'))
      .toThrow(/must set config.authenticate/)
    await app.close()
  })

  it('accepts an explicit decision either way', async () => {
    const app = Fastify()
    await app.register(authPlugin, { verifier: null })
    app.get('/v1/checked', { config: { frontEnd: 'test', authenticate: true } }, async () => 'checked')
    app.get('/v1/self', { config: { frontEnd: 'test', authenticate: false } }, async () => 'self')
    await app.ready()
    expect((await app.inject('/v1/checked')).statusCode).toBe(401)
    expect((await app.inject('/v1/self')).statusCode).toBe(200)
    await app.close()
  })
})
