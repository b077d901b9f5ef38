// Request bodies are UTF-8 text, never decoded lossily (issue 10, item 11): the checks, and the
// root parsers and the Snowflake contexts' lenient JSON parser that use them.
import { gzipSync } from 'node:zlib'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import bodyParsers, { assertWellFormedJson, utf8Text } from '../../plugins/body-parsers.js'
import { lenientJsonBodies } from '../../plugins/snowflake-http.js'

const INVALID_UTF8: Array<[string, number[]]> = [
  ['a Latin-1 byte', [0xe9]],
  ['a lone continuation byte', [0x80]],
  ['a truncated two-byte sequence', [0xc3]],
  ['an overlong encoding of /', [0xc0, 0xaf]],
  ['a UTF-8-encoded surrogate', [0xed, 0xa0, 0x80]],
  ['a code point beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['0xFF', [0xff]]
]

describe('utf8Text', () => {
  it.each(INVALID_UTF8)('refuses %s', (_what, bytes) => {
    const body = Buffer.concat([Buffer.from('SELECT \''), Buffer.from(bytes), Buffer.from('\'')])
    expect(() => utf8Text(body)).toThrow(expect.objectContaining({ code: 'SLUICE_BAD_REQUEST', statusCode: 400, message: expect.stringContaining('not valid UTF-8') }))
  })

  it('returns valid text as it is, multi-byte characters included', () => {
    expect(utf8Text(Buffer.from('SELECT \'café ☃ 😀\''))).toBe('SELECT \'café ☃ 😀\'')
    expect(utf8Text(Buffer.alloc(0))).toBe('')
  })
})

describe('assertWellFormedJson', () => {
  const check = (text: string): void => { assertWellFormedJson(JSON.parse(text), text) }

  it.each([
    ['a lone high surrogate', '{"q":"\\ud800"}'],
    ['a lone low surrogate', '{"q":"x\\udce9y"}'],
    ['a reversed pair', '{"q":"\\ude00\\ud83d"}'],
    ['one in a key', '{"\\ud800":1}'],
    ['one deep in arrays', '{"b":[[["ok","\\udfff"]]]}']
  ])('refuses %s', (_what, text) => {
    expect(() => { check(text) }).toThrow(/lone UTF-16 surrogate/)
  })

  it('accepts paired escapes, plain text, and an escaped backslash before u', () => {
    expect(() => { check('{"q":"\\ud83d\\ude00"}') }).not.toThrow()
    expect(() => { check('{"q":"😀 café"}') }).not.toThrow()
    expect(() => { check('{"q":"\\\\ud800"}') }).not.toThrow()
  })

  it('walks deep nesting without recursion', () => {
    const depth = 50_000
    const text = `${'['.repeat(depth)}"\\ud800"${']'.repeat(depth)}`
    expect(() => { check(text) }).toThrow(/lone UTF-16 surrogate/)
  })
})

describe('the parsers', () => {
  async function appWith (register: (app: FastifyInstance) => void | Promise<void>): Promise<FastifyInstance> {
    const app = Fastify()
    await register(app)
    app.post('/echo', async (request) => ({ body: request.body }))
    await app.ready()
    return app
  }

  it('root parsers: invalid UTF-8 and lone surrogates are 400, valid text passes, Fastify\'s own JSON checks stay', async () => {
    const app = await appWith(async (a) => { await a.register(bodyParsers) })
    const post = async (payload: Buffer | string, type = 'application/json') =>
      await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': type }, payload })

    for (const [, bytes] of INVALID_UTF8) {
      const res = await post(Buffer.concat([Buffer.from('{"query":"'), Buffer.from(bytes), Buffer.from('"}')]))
      expect(res.statusCode).toBe(400)
      expect(res.json().message).toContain('not valid UTF-8')
    }
    expect((await post('{"query":"\\ud800"}')).statusCode).toBe(400)
    expect((await post(Buffer.from([0x61, 0xff]), 'text/plain')).statusCode).toBe(400)

    expect((await post('{"query":"SELECT \'😀\'"}')).json()).toEqual({ body: { query: 'SELECT \'😀\'' } })
    expect((await post('plain ☃', 'text/plain')).json()).toEqual({ body: 'plain ☃' })
    // Still Fastify's parser underneath: prototype poisoning and empty bodies are refused.
    expect((await post('{"__proto__":{"x":1}}')).statusCode).toBe(400)
    expect((await post('')).statusCode).toBe(400)
    await app.close()
  })

  it('the Snowflake lenient parser checks the body after gunzip', async () => {
    const app = await appWith((a) => { lenientJsonBodies(a) })
    const post = async (payload: Buffer, gzip: boolean) => await app.inject({
      method: 'POST', url: '/echo', payload: gzip ? gzipSync(payload) : payload,
      headers: { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) }
    })
    const bad = Buffer.concat([Buffer.from('{"sqlText":"'), Buffer.from([0xe9]), Buffer.from('"}')])
    for (const gzip of [false, true]) {
      const res = await post(bad, gzip)
      expect(res.statusCode).toBe(400)
      expect(res.json().message).toContain('not valid UTF-8')
      expect((await post(Buffer.from('{"sqlText":"\\udce9"}'), gzip)).statusCode).toBe(400)
      expect((await post(Buffer.from('{"sqlText":"café"}'), gzip)).json()).toEqual({ body: { sqlText: 'café' } })
      expect((await post(Buffer.alloc(0), gzip)).json()).toEqual({ body: {} })
    }
    await app.close()
  })
})
