// Request bodies are UTF-8 text, checked before anything reads them. Decoding with Node's
// defaults would turn each invalid byte into U+FFFD and let the statement run as a different
// text than the client sent (and than the audit trail can show); a lone UTF-16 surrogate in a
// JSON escape (`"\ud800"`, what Python's json.dumps writes for an undecodable byte) is the
// same defect one layer up, since it becomes U+FFFD when the statement is encoded upstream.
// Both are refused with 400. Every body parser of every front end goes through `utf8Text` and
// `assertWellFormedJson`: the root parsers here, and the Snowflake contexts' lenient JSON parser
// after their gunzip hook, so compressed bodies are checked as decoded.
import { isUtf8 } from 'node:buffer'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ERR_BAD_REQUEST } from '../src/errors.js'

/** The body as text, or a refusal: never a lossy decode. */
export function utf8Text (body: Buffer): string {
  if (!isUtf8(body)) {
    throw new ERR_BAD_REQUEST('the request body is not valid UTF-8; Sluice does not replace invalid bytes, so send the statement as UTF-8 text')
  }
  return body.toString('utf8')
}

/** A surrogate escape in JSON text; only bodies that have one need the walk below. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/
/** With the `u` flag a paired surrogate is one code point, so only a lone one matches. */
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Refuses parsed JSON holding a string (or key) with a lone surrogate. Iterative, so a deeply
 * nested body cannot exhaust the stack; linear in the body.
 */
export function assertWellFormedJson (value: unknown, text: string): void {
  if (!SURROGATE_ESCAPE.test(text)) return
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const node = pending.pop()
    if (typeof node === 'string') {
      if (LONE_SURROGATE.test(node)) throw loneSurrogate()
    } else if (Array.isArray(node)) {
      for (const item of node) pending.push(item)
    } else if (node !== null && typeof node === 'object') {
      for (const [key, item] of Object.entries(node)) {
        if (LONE_SURROGATE.test(key)) throw loneSurrogate()
        pending.push(item)
      }
    }
  }
}

function loneSurrogate (): Error {
  return new ERR_BAD_REQUEST('the request body holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF without its pair), which is not valid Unicode text; send the statement as valid UTF-8')
}

type ParserDone = (err: Error | null, value?: unknown) => void

/** A Fastify `parseAs: 'buffer'` parser from a function that returns the body's value or throws. */
export function bufferParser (parse: (body: Buffer) => unknown) {
  return function parseBuffer (_request: unknown, body: string | Buffer, done: ParserDone): void {
    let value: unknown
    try {
      value = parse(body as Buffer)
    } catch (err) {
      done(err as Error, undefined)
      return
    }
    done(null, value)
  }
}

/** Fastify's own JSON parser (prototype-poisoning checks, empty-body refusal) over checked text. */
async function sluiceBodyParsers (fastify: FastifyInstance): Promise<void> {
  const parseJson = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, function parseUtf8Json (request, body, done) {
    let text: string
    try {
      text = utf8Text(body as Buffer)
    } catch (err) {
      done(err as Error, undefined)
      return
    }
    parseJson(request, text, (err, value) => {
      if (err !== null) {
        done(err, undefined)
        return
      }
      try {
        assertWellFormedJson(value, text)
      } catch (invalid) {
        done(invalid as Error, undefined)
        return
      }
      done(null, value)
    })
  })
  fastify.addContentTypeParser('text/plain', { parseAs: 'buffer' }, bufferParser(utf8Text))
}

export default fp(sluiceBodyParsers, { name: 'sluice-body-parsers', fastify: '5.x' })
