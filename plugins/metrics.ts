// GET /metrics: Prometheus text format. Wiring only: what is counted is decided in
// src/metrics/gateway-metrics.ts. Round trips are observed when their answer has been sent
// (onResponse), so the latency is the whole round trip, streamed results included; decisions,
// masked values, upstream errors, token failures and commit latency are observed where every
// round trip already goes, the
// recorder: each event carries its front end, outcome, decision and error code, and the
// recorder's promise settles when the event is committed.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { RoundTripFacts } from '../src/recording/build.js'
import type { Recording, SessionRef } from '../src/recording/recorder.js'
import { GatewayMetrics } from '../src/metrics/gateway-metrics.js'
import { outcomeOf } from '../src/recording/round-trips.js'

/** Catalogue codes meaning the warehouse failed the statement or could not be reached. */
const UPSTREAM_ERRORS = new Set([
  'SLUICE_UPSTREAM_FAILED', 'SLUICE_UPSTREAM_UNAVAILABLE', 'SLUICE_UPSTREAM_SECONDARY_ROLES',
  'SLUICE_SNOWFLAKE_STATEMENT_FAILED', 'SLUICE_BIGQUERY_UPSTREAM'
])

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
  }
}

export function createRoundTripObserver (metrics: GatewayMetrics) {
  return async function observeRoundTrip (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const frontEnd = request.routeOptions.config.frontEnd
    if (frontEnd === undefined) return
    metrics.roundTrip({ frontEnd, outcome: outcomeOf(reply.statusCode, request.roundTrip ?? {}), seconds: reply.elapsedTime / 1000 })
  }
}

/** What one recorded event says about decisions and token failures. */
export function observeEvent (metrics: GatewayMetrics, facts: RoundTripFacts): void {
  if (facts.outcome === 'unauthenticated' && facts.principal == null) metrics.tokenFailure(facts.frontEnd, facts.errorCode)
  const trip = facts.trip
  if (trip == null) return
  // Masked values are counted where a page was released: admitted events carry none.
  for (const column of trip.maskedColumns ?? []) metrics.masked(facts.frontEnd, column.rule, column.values)
  if (facts.phase !== 'admitted' && trip.errorCode !== undefined && UPSTREAM_ERRORS.has(trip.errorCode)) metrics.upstreamError(facts.connection, trip.errorCode)
  // Observed once per request, on the event that closes it (the admitted event carries none):
  // the completion, the refusal, or the "still running" answer of an async submit.
  const timings = trip.timings
  if (timings !== undefined && facts.phase !== 'admitted') {
    if (timings.analyze !== undefined) metrics.analysis(facts.frontEnd, timings.analyze)
    if (timings.upstream !== undefined) metrics.upstream(facts.connection, timings.upstream)
  }
  const decision = trip.decision
  // A statement is decided once before it is admitted; its completion and the polls of a
  // running statement repeat that decision and are not counted again.
  if (decision === undefined) return
  if (facts.phase === 'completed' || (facts.phase !== 'admitted' && trip.statementId !== undefined)) return
  metrics.decision({ frontEnd: facts.frontEnd, effect: decision.effect, ruleId: decision.ruleId })
}

/**
 * Observes every event the gateway records, through the one Recording instance all recording
 * paths share (admitted events, completions, authentication failures), without a second hook
 * on the request path.
 */
export function instrumentRecording (recording: Recording, metrics: GatewayMetrics): void {
  const record = recording.record.bind(recording)
  recording.record = async function recordObserved (facts: RoundTripFacts, session?: SessionRef) {
    observeEvent(metrics, facts)
    const started = process.hrtime.bigint()
    let ok = false
    try {
      const event = await record(facts, session)
      ok = true
      return event
    } finally {
      metrics.commit(Number(process.hrtime.bigint() - started) / 1e9, ok)
    }
  }
}

async function metricsPlugin (fastify: FastifyInstance): Promise<void> {
  const metrics = new GatewayMetrics({
    queueDepth: () => fastify.recording.writer.pending,
    batches: () => fastify.recording.writer.stats,
    // The approvals plugin may register after this one: looked up at scrape time.
    approvalsPending: async () => fastify.hasDecorator('approvals') ? await fastify.approvals.approvals.pendingCount() : undefined
  })
  fastify.decorate('metrics', metrics)
  instrumentRecording(fastify.recording, metrics)
  fastify.addHook('onResponse', createRoundTripObserver(metrics))
  fastify.get('/metrics', { logLevel: 'warn' }, async function scrape (_request, reply) {
    return await reply.type(metrics.contentType).send(await metrics.text())
  })
}

export default fp(metricsPlugin, { name: 'sluice-metrics', fastify: '5.x', dependencies: ['sluice-recording'] })
