// Which transport failures may be answered as retryable: only those that prove the request never
// reached the warehouse (a sent statement may have run, and a retry would run it twice).
import { describe, expect, it } from 'vitest'
import { neverSent } from '../../src/warehouses/unsent.js'

function coded (code: string, cause?: unknown): Error {
  return Object.assign(new Error(code), { code, cause })
}

describe('neverSent', () => {
  it('is true for refused, unresolvable, unroutable and connect-timeout failures', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(neverSent(coded(code)), code).toBe(true)
    }
  })

  it('is true for TLS handshake failures', () => {
    for (const code of ['ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER']) {
      expect(neverSent(coded(code)), code).toBe(true)
    }
  })

  it('looks through undici\'s wrapping and happy-eyeballs AggregateErrors', () => {
    expect(neverSent(new TypeError('fetch failed', { cause: coded('ECONNREFUSED') }))).toBe(true)
    expect(neverSent(Object.assign(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]), { code: 'ECONNREFUSED' }))).toBe(true)
    expect(neverSent(new AggregateError([coded('ECONNREFUSED')]))).toBe(true)
  })

  it('is false once the request may have been sent (socket closed, reset, body or headers timeout, abort)', () => {
    for (const code of ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED']) {
      expect(neverSent(coded(code)), code).toBe(false)
    }
    expect(neverSent(new Error('something else'))).toBe(false)
    expect(neverSent(new AggregateError([coded('ECONNREFUSED'), coded('ECONNRESET')]))).toBe(false)
  })
})
