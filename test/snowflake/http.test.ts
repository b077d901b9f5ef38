// The request/response body handling both Snowflake front ends share (plugins/snowflake-http.ts).
import { gunzipSync, gzipSync } from 'node:zlib'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { lenientJsonBodies, sendCompressible } from '../../plugins/snowflake-http.js'

async function app () {
  const fastify = Fastify()
  await fastify.register(async (child) => {
    lenientJsonBodies(child)
    child.post('/echo', async (request, reply) => await sendCompressible(request, reply, JSON.stringify({ got: request.body, pad: 'x'.repeat(Number((request.query as { pad?: string }).pad ?? 0)) })))
  })
  // Outside the encapsulated context the default parser still applies.
  fastify.post('/plain', async (request) => ({ got: request.body }))
  return fastify
}

describe('snowflake front-end body handling', () => {
  it('reads gzip request bodies and treats an empty JSON body as {}', async () => {
    const fastify = await app()
    const gz = await fastify.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: gzipSync(JSON.stringify({ sqlText: 'SELECT 1' })) })
    expect(gz.json()).toMatchObject({ got: { sqlText: 'SELECT 1' } })
    const empty = await fastify.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '' })
    expect(empty.json()).toMatchObject({ got: {} })
    const bad = await fastify.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{nope' })
    expect(bad.statusCode).toBe(400)
    const plain = await fastify.inject({ method: 'POST', url: '/plain', headers: { 'content-type': 'application/json' }, payload: '' })
    expect(plain.statusCode).toBe(400)
  })

  it('compresses large responses for clients that accept gzip, and only those', async () => {
    const fastify = await app()
    const big = await fastify.inject({ method: 'POST', url: '/echo?pad=20000', headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, deflate' }, payload: '{}' })
    expect(big.headers['content-encoding']).toBe('gzip')
    expect(JSON.parse(gunzipSync(big.rawPayload).toString()).pad).toHaveLength(20000)
    const small = await fastify.inject({ method: 'POST', url: '/echo?pad=10', headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' }, payload: '{}' })
    expect(small.headers['content-encoding']).toBeUndefined()
    const refused = await fastify.inject({ method: 'POST', url: '/echo?pad=20000', headers: { 'content-type': 'application/json' }, payload: '{}' })
    expect(refused.headers['content-encoding']).toBeUndefined()
  })
})
