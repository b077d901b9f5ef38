// Builds the Fastify app: the plugin chain store → recording → auth → roles → front ends.
// Everything it needs is passed in, so tests build the same app with their own store,
// verifier and pipeline, and `sluice start` builds it from configuration.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { SluiceConfig } from './config/types.js'
import { ERR_BAD_REQUEST, ERR_HEADERS_TOO_LARGE, isSluiceError } from './errors.js'
import type { TokenVerifier } from './identity/verifier.js'
import type { Pipeline } from './pipeline.js'
import type { Store } from './store/store.js'
import { loggerOptions, RoundTripLogController } from './logging.js'
import bodyParsersPlugin from '../plugins/body-parsers.js'
import storePlugin from '../plugins/store.js'
import healthPlugin from '../plugins/health.js'
import recordingPlugin from '../plugins/recording.js'
import authPlugin from '../plugins/auth.js'
import rolesPlugin from '../plugins/roles.js'
import whoamiPlugin from '../plugins/whoami.js'
import adminPlugin from '../plugins/admin.js'
import approvalsPlugin from '../plugins/approvals.js'
import type { ApprovalService } from './approvals/service.js'
import type { Recording } from './recording/recorder.js'
import type { SpanExporter } from '@opentelemetry/sdk-trace'
import type { PolicySet } from './policy/model.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: SluiceConfig
    pipeline: Pipeline
    /** For front ends whose protocol carries the OIDC token elsewhere (a login body). */
    tokenVerifier: TokenVerifier | null
  }
}

export interface ServerDeps {
  config: SluiceConfig
  store: Store
  verifier: TokenVerifier | null
  pipeline: Pipeline
  /** The gateway's recorder, shared with the pipeline's admission check; built by the plugin when absent. */
  recording?: Recording
  /** The approvals service the hold stage uses; built on the store when absent. */
  approvals?: ApprovalService
  /** The gateway passes its own pino instance (shared with the stages); tests may pass `false`. */
  logger?: FastifyBaseLogger | false
  /** Where spans go instead of OTLP when `tracing.enabled` (tests: an in-memory exporter). */
  traceExporter?: SpanExporter
  /** The policy set deciding now, for front ends that say what a principal may use (MCP). */
  policies?: () => PolicySet
}

export async function buildServer (deps: ServerDeps): Promise<FastifyInstance> {
  const { config } = deps
  const app = Fastify({
    ...(deps.logger === undefined || deps.logger === false
      ? { logger: deps.logger ?? loggerOptions(config.log.level) }
      : { loggerInstance: deps.logger }),
    // Client-chosen ids would let a caller forge or collide audit records; ours are UUIDs.
    genReqId: () => randomUUID(),
    // One info line per round trip instead of Fastify's two (see RoundTripLogController).
    logController: new RoundTripLogController(),
    trustProxy: config.listen.trustProxy,
    bodyLimit: config.listen.bodyLimitBytes,
    // Node's 16 KiB default would answer a large token with a bare 431 before Sluice sees it;
    // with room above identity.maxTokenBytes (checked at load) the verifier refuses it, with
    // WWW-Authenticate and a recorded event.
    http: { maxHeaderSize: config.listen.maxHeaderBytes },
    clientErrorHandler: createClientErrorHandler(config),
    // On shutdown idle keep-alive sockets close at once; in-flight requests still finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // The router's own limit (100) would answer a long path segment with a bare 414 before any
    // route, so before authentication. Past the header limit Node refuses the URL anyway; below
    // it every segment reaches its route: authenticate, authorize, then validate.
    routerOptions: { maxParamLength: config.listen.maxHeaderBytes }
  })

  app.decorate('config', config)
  app.decorate('pipeline', deps.pipeline)
  app.decorate('tokenVerifier', deps.verifier)
  app.addHook('onSend', async function echoRequestId (request, reply) {
    reply.header('x-request-id', request.id)
  })
  app.setErrorHandler(handleError)
  app.setNotFoundHandler(function notFound (request, reply) {
    return reply.code(404).send({ code: 'SLUICE_NOT_FOUND', message: `no route for ${request.method} ${request.url.split('?')[0]}` })
  })

  await app.register(bodyParsersPlugin)
  await app.register(storePlugin, { store: deps.store })
  await app.register(healthPlugin)
  await app.register(recordingPlugin, { recording: deps.recording })
  await app.register(import('../plugins/metrics.js'))
  // Before authentication: a refused token's round trip is traced (and its event names the trace).
  if (config.tracing?.enabled === true) await app.register(import('../plugins/tracing.js'), { ...(deps.traceExporter !== undefined && { exporter: deps.traceExporter }) })
  await app.register(authPlugin, {
    verifier: deps.verifier,
    onFailure: (request, err) => app.recordAuthFailure(request, err)
  })
  await app.register(rolesPlugin)
  await app.register(whoamiPlugin)
  await app.register(adminPlugin)
  await app.register(approvalsPlugin, { ...(deps.approvals !== undefined && { approvals: deps.approvals }) })
  await app.register(import('../plugins/bigquery.js'))
  await app.register(import('../plugins/snowflake.js'))
  await app.register(import('../plugins/mcp.js'), { ...(deps.policies !== undefined && { policies: deps.policies }) })
  return app
}

/**
 * Errors Node's HTTP parser raises before there is a request (Fastify's default handler, with
 * a 431 that says which limit was hit instead of a bare status line). Nothing is recorded:
 * there is no route, front end or principal yet, and the head was never read in full.
 */
function createClientErrorHandler (config: SluiceConfig) {
  const tokenLimit = config.identity === undefined ? '' : `; a token may be at most ${config.identity.maxTokenBytes} bytes (identity.maxTokenBytes)`
  return function clientError (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    let refusal: Error & { code: string, statusCode?: number }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      refusal = new ERR_HEADERS_TOO_LARGE(config.listen.maxHeaderBytes, tokenLimit)
      this.log.warn({ code: refusal.code, limit: config.listen.maxHeaderBytes }, 'request headers too large')
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      refusal = Object.assign(new ERR_BAD_REQUEST('the request was not received in time'), { statusCode: 408 })
    } else {
      refusal = new ERR_BAD_REQUEST('the HTTP request could not be parsed')
    }
    if (socket.writable) {
      const status = refusal.statusCode ?? 400
      const text = JSON.stringify({ code: refusal.code, message: refusal.message })
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${text}`)
    }
    socket.destroy(err)
  }
}

/** Catalogue errors are shown as they are; anything else is an internal error with its request id. */
function handleError (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (request.roundTrip !== null && request.roundTrip !== undefined) request.roundTrip.errorCode = error.code
  if (isSluiceError(error)) {
    return reply.code(error.statusCode ?? 500).send({ code: error.code, message: error.message })
  }
  const status = error.statusCode ?? 500
  if (status < 500) {
    // Fastify's own client errors (bad JSON, unsupported media type, body too large).
    return reply.code(status).send({ code: 'SLUICE_BAD_REQUEST', message: `malformed request: ${error.message}` })
  }
  request.log.error({ err: error }, 'unhandled error')
  return reply.code(500).send({ code: 'SLUICE_INTERNAL', message: `internal error; quote request id ${request.id}` })
}
