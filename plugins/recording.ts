// Every authenticated request to a front end opens or continues a session and writes an event
// before its response leaves the gateway (record, then release). A statement the pipeline
// admits gets one more, earlier: its "admitted" event, committed before the warehouse is called
// (the pipeline awaits trip.onAdmitted), and the response that releases its result is its
// "completed" event. If an event cannot be written the response is withheld: before execution
// the client is told to retry (nothing ran); after, that the statement ran but its result is
// withheld (a retry would run it again). Failed authentications are recorded too.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Principal } from '../src/identity/principal.js'
import type { RoundTrip } from '../src/pipeline.js'
import { Recording } from '../src/recording/recorder.js'
import { recordAdmitted, recordAuthFailure, recordHeld, recordCompleted, unrecordedRefusal, type RoundTripContext } from '../src/recording/round-trips.js'
import type { SessionRecorder } from '../src/recording/sessions.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks a front-end route: its requests are recorded as session events. */
    frontEnd?: string
    /**
     * Renders "this round trip could not be recorded" in the front end's own protocol (the
     * response is withheld): ERR_STORE_UNAVAILABLE (retryable: nothing was executed) or
     * ERR_RESULT_UNRECORDED (not retryable: the statement ran). Default: the catalogue error as
     * JSON, 503 with retry-after for the first, 500 for the second.
     */
    recordingFailure?: (error: Error & { code: string, statusCode?: number }) => { statusCode: number, contentType?: string, body: string }
  }
  interface FastifyRequest {
    /** What the pipeline did for this request; front ends fill it, recording writes it. */
    roundTrip: RoundTrip
    /** Front ends with their own session notion (connector sessions) set this; else token-based. */
    sessionKey: string | null
    /** The connection the request addressed, once the front end resolved it. */
    connectionName: string | null
  }
  interface FastifyInstance {
    /** Sessions and events, low level (reads, session lookups). */
    recorder: SessionRecorder
    /** The recording service: chained batched writer, admission probe, retention, webhook. */
    recording: Recording
    recordAuthFailure: (request: FastifyRequest, err: Error & { code?: string }) => Promise<void>
  }
}

/** A SQL API-style session lives as long as its bearer token: key it by the token's hash. */
export function tokenSessionKey (request: FastifyRequest, frontEnd: string): string | null {
  const header = request.headers.authorization
  if (header === undefined) return null
  return `${frontEnd}:${createHash('sha256').update(header).digest('base64url')}`
}

/** The request a front-end route's events belong to. */
function contextOf (request: FastifyRequest, frontEnd: string, principal: Principal): RoundTripContext {
  return {
    requestId: request.id,
    frontEnd,
    principal,
    sessionKey: request.sessionKey ?? tokenSessionKey(request, frontEnd) ?? `${frontEnd}:${request.id}`,
    connection: request.connectionName ?? undefined,
    route: request.routeOptions.url ?? request.url,
    method: request.method,
    sourceIp: request.ip,
    userAgent: request.headers['user-agent']
  }
}

/**
 * Commits a statement's admitted event: who, which agent, the SQL, its analysis and the
 * decision (rule included), before the warehouse is called.
 */
export function createAdmittedRecorder (recording: Recording, request: FastifyRequest) {
  return async function recordAdmittedEvent (trip: RoundTrip): Promise<void> {
    const frontEnd = request.routeOptions.config.frontEnd
    const principal = request.principal
    if (frontEnd === undefined || principal === null || principal === undefined) return
    await recordAdmitted(recording, contextOf(request, frontEnd, principal), trip)
  }
}

/** Commits the event of a statement a rule just held for approval (round-trips.ts recordHeld). */
export function createHeldRecorder (recording: Recording, request: FastifyRequest) {
  return async function recordHeldEvent (trip: RoundTrip): Promise<void> {
    const frontEnd = request.routeOptions.config.frontEnd
    const principal = request.principal
    if (frontEnd === undefined || principal === null || principal === undefined) return
    await recordHeld(recording, contextOf(request, frontEnd, principal), trip)
  }
}

export interface RecordHookOptions {
  recording: Recording
}

function payloadBytes (payload: unknown): number | null {
  if (typeof payload === 'string') return Buffer.byteLength(payload)
  if (payload instanceof Uint8Array) return payload.byteLength
  // A stream's length is not known before it is sent; the front end may set trip.bytesReturned.
  return null
}

export function createRecordHook ({ recording }: RecordHookOptions) {
  return async function recordRoundTrip (request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const frontEnd = request.routeOptions.config.frontEnd
    const principal = request.principal
    // Unauthenticated requests were recorded by recordAuthFailure; public routes are not events.
    if (frontEnd === undefined || principal === null || principal === undefined) return payload
    const trip = request.roundTrip ?? {}
    try {
      await recordCompleted(recording, contextOf(request, frontEnd, principal), trip, {
        statusCode: reply.statusCode,
        durationMs: reply.elapsedTime,
        bytesReturned: payloadBytes(payload)
      })
    } catch (err) {
      request.log.error({ err: (err as Error).message }, 'recording failed; response withheld')
      const { error: refusal, ran } = unrecordedRefusal(trip, request.id)
      trip.errorCode = refusal.code
      // Whatever the route was about to send (its stream included) is dropped.
      if (payload !== null && typeof payload === 'object' && 'destroy' in payload) (payload as { destroy: () => void }).destroy()
      const render = request.routeOptions.config.recordingFailure
      const rendered = render?.(refusal) ?? { statusCode: refusal.statusCode ?? 503, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ code: refusal.code, message: refusal.message }) }
      reply.code(rendered.statusCode).type(rendered.contentType ?? 'application/json; charset=utf-8')
      if (ran) reply.removeHeader('retry-after')
      else reply.header('retry-after', '5')
      reply.removeHeader('content-length')
      reply.removeHeader('content-encoding')
      return rendered.body
    }
    return payload
  }
}

export interface RecordingPluginOptions {
  /** Built by the gateway so the pipeline's admission check shares it; built here otherwise. */
  recording?: Recording
}

async function recordingPlugin (fastify: FastifyInstance, options: RecordingPluginOptions): Promise<void> {
  const recording = options.recording ?? new Recording(fastify.store, fastify.config.recording, fastify.log)
  fastify.decorate('recording', recording)
  fastify.decorate('recorder', recording.sessions)
  fastify.decorateRequest('roundTrip', null as unknown as RoundTrip)
  fastify.decorateRequest('sessionKey', null)
  fastify.decorateRequest('connectionName', null)

  fastify.addHook('onRequest', async function startRoundTrip (request) {
    request.roundTrip = { onAdmitted: createAdmittedRecorder(recording, request), onHeld: createHeldRecorder(recording, request) }
  })
  fastify.addHook('onSend', createRecordHook({ recording }))
  fastify.addHook('onReady', async function startRecording () { recording.start() })
  // Registered after the store plugin, so it runs before the store closes: queued events are
  // written and the closing checkpoint signed while the store is still there.
  fastify.addHook('onClose', async function stopRecording () { await recording.close() })

  fastify.decorate('recordAuthFailure', async function recordRouteAuthFailure (request: FastifyRequest, err: Error & { code?: string }) {
    const frontEnd = request.routeOptions.config.frontEnd
    if (frontEnd === undefined) return
    // A forged or expired token is exactly what an auditor looks for; a store failure here
    // must not turn a 401 into something else, so it is logged and the 401 stands.
    try {
      await recordAuthFailure(recording, {
        requestId: request.id,
        frontEnd,
        route: request.routeOptions.url ?? request.url,
        method: request.method,
        statusCode: 401,
        errorCode: err.code,
        reason: err.message,
        sourceIp: request.ip,
        userAgent: request.headers['user-agent']
      })
    } catch (recordErr) {
      request.log.error({ err: (recordErr as Error).message }, 'could not record a failed authentication')
    }
  })
}

export default fp(recordingPlugin, { name: 'sluice-recording', fastify: '5.x', dependencies: ['sluice-store'] })
