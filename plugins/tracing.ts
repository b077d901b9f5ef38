// OpenTelemetry traces, registered only when `tracing.enabled` is set. Wiring only, in the
// style of plugins/metrics.ts: a span per front-end round trip (onRequest → onResponse) whose
// context rides on the round trip, so the pipeline's stages (analyze, decide, hold, mask) and
// the front ends' upstream calls become its children (src/tracing/spans.ts); every recorded
// event (admitted, completed, failed authentication) gets a `sluice.record` span and the trace
// ids, through the one Recording instance, as metrics observes it. The round trip's log lines
// carry its trace id. Attributes are ids and counts, never SQL text or values.
import fp from 'fastify-plugin'
import { SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import type { SpanExporter } from '@opentelemetry/sdk-trace'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RoundTripFacts } from '../src/recording/build.js'
import type { Recording, SessionRef } from '../src/recording/recorder.js'
import { startTracing } from '../src/tracing/provider.js'
import { contextOf, inSpan, TRACER_NAME, traceRef } from '../src/tracing/spans.js'
import { outcomeOf } from '../src/recording/round-trips.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The round trip's span (front-end routes, tracing on). */
    traceSpan: Span | null
  }
}

export interface TracingPluginOptions {
  /** Replaces the OTLP exporter; spans are exported as they end (tests). */
  exporter?: SpanExporter
}

/** The round trips in flight, by request id: recorded events find their trace here. */
type Traces = Map<string, Context>

/** Every recorded event of a traced round trip: a child span, and the trace ids in the event. */
export function traceRecording (recording: Recording, traces: Traces): void {
  const record = recording.record.bind(recording)
  recording.record = async function recordTraced (facts: RoundTripFacts, session?: SessionRef) {
    const parent = traces.get(facts.requestId)
    const span = parent === undefined ? undefined : trace.getSpan(parent)
    if (parent === undefined || span === undefined) return await record(facts, session)
    const attributes = { 'sluice.request_id': facts.requestId, 'sluice.phase': facts.phase ?? 'round_trip', 'sluice.outcome': facts.outcome }
    return await inSpan(parent, 'sluice.record', attributes, async () => await record({ ...facts, trace: traceRef(span) }, session))
  }
}

function finish (request: FastifyRequest, reply: FastifyReply, traces: Traces, aborted: boolean): void {
  const span = request.traceSpan
  if (span === null) return
  request.traceSpan = null
  traces.delete(request.id)
  const trip = request.roundTrip ?? {}
  span.setAttributes({
    'http.response.status_code': reply.statusCode,
    'sluice.outcome': aborted ? 'aborted' : outcomeOf(reply.statusCode, trip),
    ...(request.connectionName !== null && { 'sluice.connection': request.connectionName }),
    ...(trip.statementId !== undefined && { 'sluice.statement_id': trip.statementId }),
    ...(trip.decision !== undefined && { 'sluice.rule_id': trip.decision.ruleId }),
    ...(trip.rowsReturned !== undefined && { 'sluice.rows': trip.rowsReturned }),
    ...(trip.errorCode !== undefined && { 'sluice.error_code': trip.errorCode })
  })
  if (aborted || reply.statusCode >= 500 || trip.errorCode !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, ...(trip.errorCode !== undefined && { message: trip.errorCode }) })
  span.end()
}

async function tracingPlugin (fastify: FastifyInstance, options: TracingPluginOptions): Promise<void> {
  const config = fastify.config.tracing
  if (config?.enabled !== true) return
  const runtime = startTracing(config, options.exporter)
  if (!runtime.registered) fastify.log.warn('tracing: another OpenTelemetry tracer provider was registered first in this process; Sluice spans go to it')
  const tracer = trace.getTracer(TRACER_NAME)
  const traces: Traces = new Map()
  fastify.decorateRequest('traceSpan', null)
  traceRecording(fastify.recording, traces)

  fastify.addHook('onRequest', async function startRoundTripSpan (request, reply) {
    const frontEnd = request.routeOptions.config.frontEnd
    if (frontEnd === undefined) return
    const route = request.routeOptions.url ?? 'unmatched'
    const span = tracer.startSpan(`${request.method} ${route}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': request.method, 'http.route': route, 'sluice.request_id': request.id, 'sluice.front_end': frontEnd }
    })
    const context = contextOf(span)
    request.traceSpan = span
    request.roundTrip.traceContext = context
    traces.set(request.id, context)
    // Every line this request logs from here on ("request completed" included) names its trace.
    const log = request.log.child({ traceId: span.spanContext().traceId })
    request.log = log
    reply.log = log
  })
  fastify.addHook('onResponse', async function endRoundTripSpan (request, reply) { finish(request, reply, traces, false) })
  fastify.addHook('onRequestAbort', async function abortRoundTripSpan (request) { finish(request, { statusCode: 499 } as FastifyReply, traces, true) })
  fastify.addHook('onClose', async function stopTracing () { await runtime.shutdown() })
}

export default fp(tracingPlugin, { name: 'sluice-tracing', fastify: '5.x', dependencies: ['sluice-recording'] })
