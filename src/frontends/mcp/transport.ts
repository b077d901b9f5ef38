// How Streamable HTTP requests meet the SDK's per-request transport: the JSON-RPC messages of a
// POST body (requests, the initialize request, cancellations), when a request's server and
// transport may close, and errors in JSON-RPC's own shape.
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { FastifyReply } from 'fastify'
import { isResponse } from './events.js'

function messagesOf (body: unknown): Array<Record<string, unknown>> {
  return (Array.isArray(body) ? body : [body]).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object')
}

/** The ids of the JSON-RPC requests in a POST body (a message or a batch): each gets one response. */
export function requestIdsOf (body: unknown): Array<string | number> {
  return messagesOf(body).filter((m) => typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')).map((m) => m.id as string | number)
}

function requestCount (body: unknown): number {
  return requestIdsOf(body).length
}

/** The JSON-RPC responses in a POST body: a client's answers to requests Sluice sent it. */
export function responsesOf (body: unknown): Array<Record<string, unknown>> {
  return messagesOf(body).filter((m) => m.method === undefined && isResponse(m))
}

/** The request ids `notifications/cancelled` messages in a POST body name. */
export function cancelledIds (body: unknown): Array<string | number> {
  return messagesOf(body)
    .filter((m) => m.method === 'notifications/cancelled')
    .map((m) => (m.params as { requestId?: unknown } | undefined)?.requestId)
    .filter((id): id is string | number => typeof id === 'string' || typeof id === 'number')
}

/**
 * The per-request server and transport are closed once the client has gone and every request of
 * the body was answered: a client that disconnects does not cancel its call (an explicit
 * notifications/cancelled does), so the answer is stored for it to resume from any replica.
 */
export function closeWhenAnswered (transport: StreamableHTTPServerTransport, server: Server, body: unknown, reply: FastifyReply): void {
  const expected = requestCount(body)
  let answered = 0
  let gone = false
  let closed = false
  const close = (): void => {
    if (closed || !gone || answered < expected) return
    closed = true
    void transport.close().catch(() => undefined)
    void server.close().catch(() => undefined)
  }
  const send = transport.send.bind(transport)
  transport.send = async (message, options) => {
    try {
      await send(message, options)
    } finally {
      if (isResponse(message)) { answered++; close() }
    }
  }
  reply.raw.on('close', () => { gone = true; close() })
}

export function jsonRpcError (reply: FastifyReply, status: number, code: number, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ jsonrpc: '2.0', error: { code, message }, id: null })
}

export interface InitializeFacts { clientInfo?: { name?: unknown, version?: unknown }, capabilities?: unknown, protocolVersion?: unknown }

/** The initialize request of a POST body (a single message or a batch), if there is one. */
export function initializeOf (body: unknown): InitializeFacts | undefined {
  const messages = Array.isArray(body) ? body : [body]
  const init = messages.find((m) => m !== null && typeof m === 'object' && (m as { method?: unknown }).method === 'initialize') as { params?: InitializeFacts } | undefined
  return init === undefined ? undefined : init.params ?? {}
}

/** A client-announced name or version, bounded: it goes into the trail. */
export function text (v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v.slice(0, 200) : undefined
}
