// What both Snowflake front ends share: request-body handling, applied inside their own
// encapsulated contexts so no other route is affected (gzip request bodies, which both drivers
// and SQL API clients send, and JSON bodies that may be empty: a cancel or heartbeat POST),
// compressed responses, and the last-resort release of upstream error text.
import { Readable, pipeline } from 'node:stream'
import { createGunzip, createGzip } from 'node:zlib'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_BAD_REQUEST, isSluiceError } from '../src/errors.js'
import type { ReleaseText } from '../src/warehouses/snowflake/wire.js'
import { assertWellFormedJson, bufferParser, utf8Text } from './body-parsers.js'

export async function gunzipBody (request: FastifyRequest, _reply: FastifyReply, payload: NodeJS.ReadableStream) {
  if (String(request.headers['content-encoding'] ?? '').toLowerCase() !== 'gzip') return payload
  // The declared length is the compressed one; the parser must not hold the body to it.
  delete request.headers['content-length']
  const gunzip = createGunzip()
  payload.pipe(gunzip)
  return gunzip
}

/**
 * JSON bodies, where an empty one counts as {} instead of a 400. Read as bytes and checked as
 * UTF-8 (body-parsers.ts) after the gunzip hook: a string read would already have replaced
 * invalid bytes with U+FFFD.
 */
export function lenientJsonBodies (app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, bufferParser(lenientJson))
  app.addHook('preParsing', gunzipBody)
}

function lenientJson (body: Buffer): unknown {
  const text = utf8Text(body)
  if (text.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ERR_BAD_REQUEST('the body is not valid JSON')
  }
  assertWellFormedJson(value, text)
  return value
}

type Render = (request: FastifyRequest, reply: FastifyReply, err: Error) => Promise<FastifyReply> | FastifyReply

/**
 * Catalogue errors raised before a handler runs (a body that is not UTF-8, not JSON) are
 * answered in the front end's own shape, as its handlers answer theirs; anything else goes on
 * to the server's handler.
 */
export function catalogueErrorsAs (app: FastifyInstance, render: Render): void {
  app.setErrorHandler(async function snowflakeProtocolError (error, request, reply) {
    if (!isSluiceError(error)) throw error
    return await render(request, reply, error)
  })
}

const GZIP_FROM_BYTES = 16 * 1024

/** A body compressed as it is sent (zlib's thread pool, not the event loop). */
export function gzipStream (body: string | Buffer): Readable {
  const gzip = createGzip()
  pipeline(Readable.from([typeof body === 'string' ? Buffer.from(body, 'utf8') : body]), gzip, () => {
    // A failure destroys the gzip stream, which ends the response; nothing more to do here.
  })
  return gzip
}

/** Sends a body gzip-compressed when the client accepts it and it is worth it (both drivers do). */
export async function sendCompressible (request: FastifyRequest, reply: FastifyReply, body: string | Buffer, type = 'application/json'): Promise<FastifyReply> {
  reply.type(type)
  const accepts = /\bgzip\b/i.test(String(request.headers['accept-encoding'] ?? ''))
  const bytes = Buffer.byteLength(body)
  if (accepts && bytes >= GZIP_FROM_BYTES) {
    // Recorded as the body it is (a stream's length is not known when the event is written).
    if (request.roundTrip !== null && request.roundTrip !== undefined) request.roundTrip.bytesReturned ??= bytes
    return await reply.header('content-encoding', 'gzip').send(gzipStream(body))
  }
  return await reply.send(body)
}

/** Upstream wording that reached a renderer without its statement: the detectors still run. */
export function releaseText (request: FastifyRequest): ReleaseText {
  return (message, codes) => request.server.pipeline.releaseError(undefined, undefined, message, codes)
}
