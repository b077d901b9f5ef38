// Credentials in URLs (issue 10, item 6): which query parameters are redacted in logs, which
// count as a bearer token to refuse, and the logger options that apply both to every line.
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { loggerOptions, serializeError, serializeRequest } from '../../src/logging.js'
import { bearerTokensInQuery, isCredentialParam, redactText, redactUrl } from '../../src/url-credentials.js'

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl'

describe('isCredentialParam', () => {
  it.each([
    'access_token', 'token', 'id_token', 'refresh_token', 'oauth_token', 'masterToken', 'sessionToken',
    'X-Amz-Security-Token', 'key', 'api_key', 'apiKey', 'api-key', 'password', 'passwd', 'pwd', 'secret',
    'client_secret', 'sig', 'signature', 'X-Goog-Signature', 'X-Amz-Credential', 'code', 'assertion',
    'client_assertion', 'authorization', 'auth', 'private_key', 'passphrase', 'ACCESS_TOKEN'
  ])('%s is credential-like', (name) => {
    expect(isCredentialParam(name)).toBe(true)
  })

  it.each(['requestId', 'request_guid', 'databaseName', 'schemaName', 'warehouse', 'roleName', 'async', 'partition', 'maxResults', 'location', 'keyword', 'monkey'])('%s is not', (name) => {
    expect(isCredentialParam(name)).toBe(false)
  })
})

describe('redactUrl', () => {
  it('replaces only the values of credential-like parameters, keeping everything else verbatim', () => {
    expect(redactUrl('/api/v2/statements?async=true&access_token=abc&requestId=7')).toBe('/api/v2/statements?async=true&access_token=[redacted]&requestId=7')
    expect(redactUrl('/x?key=AIza123&sig=s&Signature=t&X-Amz-Credential=c%2F1')).toBe('/x?key=[redacted]&sig=[redacted]&Signature=[redacted]&X-Amz-Credential=[redacted]')
    expect(redactUrl('/x?a=%20b&c')).toBe('/x?a=%20b&c')
    expect(redactUrl('/no-query')).toBe('/no-query')
  })

  it('recognises percent-encoded names and JWT-shaped values under any name', () => {
    expect(redactUrl('/x?access%5Ftoken=abc')).toBe('/x?access%5Ftoken=[redacted]')
    expect(redactUrl(`/x?q=${JWT}&n=1`)).toBe('/x?q=[redacted]&n=1')
    expect(redactUrl(`/x?${JWT}`)).toBe('/x?[redacted]')
  })

  it('leaves empty values and a fragment alone', () => {
    expect(redactUrl('/x?token=&a=1#token=frag')).toBe('/x?token=&a=1#token=frag')
  })
})

describe('bearerTokensInQuery', () => {
  it('names the parameters that carry a bearer token, never their values', () => {
    expect(bearerTokensInQuery('/x?access_token=abc')).toEqual(['access_token'])
    expect(bearerTokensInQuery('/x?Token=abc&id_token=def&oauth_token=ghi')).toEqual(['Token', 'id_token', 'oauth_token'])
    expect(bearerTokensInQuery(`/x?whatever=${JWT}`)).toEqual(['whatever'])
    expect(bearerTokensInQuery('/x?access%5Ftoken=abc')).toEqual(['access_token'])
  })

  it('ignores cursors, other credentials (logged redacted, but not bearer tokens) and empty values', () => {
    expect(bearerTokensInQuery('/bigquery/v2/projects/p/queries/j?pageToken=CIDBB777&maxResults=10')).toEqual([])
    expect(bearerTokensInQuery('/x?key=abc&sig=def')).toEqual([])
    expect(bearerTokensInQuery('/x?token=&access_token')).toEqual([])
    expect(bearerTokensInQuery('/x')).toEqual([])
  })
})

describe('redactText', () => {
  it('redacts query pairs and JWTs inside free text', () => {
    expect(redactText(`Reply was already sent in "/api/v2/statements?async=true&token=${JWT}" (POST)`))
      .toBe('Reply was already sent in "/api/v2/statements?async=true&token=[redacted]" (POST)')
    expect(redactText(`bearer ${JWT} refused`)).toBe('bearer [redacted] refused')
    expect(redactText('GET /x?requestId=1 failed')).toBe('GET /x?requestId=1 failed')
  })
})

describe('logger options', () => {
  function capture (): { lines: string[], stream: Writable } {
    const lines: string[] = []
    return { lines, stream: new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }) }
  }

  it('serializeRequest keeps Fastify\'s fields and redacts the URL', () => {
    expect(serializeRequest({ method: 'GET', url: '/x?token=abc', host: 'h', ip: '1.2.3.4', headers: {}, socket: { remotePort: 5 } }))
      .toEqual({ method: 'GET', url: '/x?token=[redacted]', version: undefined, host: 'h', remoteAddress: '1.2.3.4', remotePort: 5 })
  })

  it('serializeError redacts message and stack', () => {
    const out = serializeError(new Error(`failed in /x?access_token=${JWT}`)) as { message: string, stack: string, type: string }
    expect(out.type).toBe('Error')
    expect(out.message).toBe('failed in /x?access_token=[redacted]')
    expect(out.stack).not.toContain(JWT)
  })

  // Both ways Fastify can be given a logger: options (buildServer without an instance) and a
  // pino instance (what startGateway passes). Fastify merges our serializers over its own.
  it.each(['options', 'instance'] as const)('Fastify with the logger as %s logs request URLs, errors and messages redacted', async (how) => {
    const { lines, stream } = capture()
    const app: FastifyInstance = how === 'options'
      ? Fastify({ logger: { ...loggerOptions('info'), stream } })
      : Fastify({ loggerInstance: pino(loggerOptions('info'), stream) }) as unknown as FastifyInstance
    app.get('/x', async (request) => {
      request.log.warn(`quoting ${request.url}`)
      request.log.error({ err: new Error(`upstream said no to ${request.url}`) }, 'failed')
      return { ok: true }
    })
    await app.ready()
    const res = await app.inject({ url: `/x?access_token=${JWT}&requestId=9` })
    expect(res.statusCode).toBe(200)
    await app.close()

    const text = lines.join('')
    expect(text).not.toContain(JWT)
    expect(text).not.toContain(JWT.split('.')[2])
    expect(text).toContain('"url":"/x?access_token=[redacted]&requestId=9"')
    expect(text).toContain('quoting /x?access_token=[redacted]&requestId=9')
    expect(text).toContain('upstream said no to /x?access_token=[redacted]&requestId=9')
  })
})
