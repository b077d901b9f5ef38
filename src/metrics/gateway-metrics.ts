// The gateway's Prometheus metrics, one registry per gateway (tests build several in one
// process; a module-level default registry would mix them). Every label value comes from a
// bounded set: front-end names (route config), outcomes and effects (enums), rule ids (the
// loaded policy files), catalogue error codes. SQL text, tokens, principals, connection URLs
// and request ids never become labels.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Round trips take from a millisecond (a refusal) to minutes (a large result streamed). */
const ROUND_TRIP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
/** A commit is one INSERT of a batch, queued behind at most one other per lane. */
/** Analysis is sub-millisecond for most statements, seconds for a megabyte of SQL. */
const ANALYSIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
const COMMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const OUTCOMES = new Set(['ok', 'error', 'denied', 'held', 'unauthenticated', 'admitted'])
const EFFECTS = new Set(['allow', 'deny', 'require_approval'])
const CATALOGUE_CODE = /^SLUICE_[A-Z0-9_]{1,64}$/
const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/
const FRONT_END = /^[a-z0-9][a-z0-9_-]{0,63}$/
/** Connection names as the config schema allows them. */
const CONNECTION = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** Anything outside the expected shape is folded into one value, so no label can grow unbounded. */
function bounded (value: string | null | undefined, allowed: Set<string> | RegExp): string {
  if (value === null || value === undefined) return 'none'
  const ok = allowed instanceof Set ? allowed.has(value) : allowed.test(value)
  return ok ? value : 'other'
}

export interface RoundTripObservation {
  frontEnd: string
  outcome: string
  seconds: number
}

export interface DecisionObservation {
  frontEnd: string
  effect: string
  ruleId: string
}

export interface GatewayMetricsOptions {
  queueDepth?: () => number
  /** Committed recording batches and the events they held, since start (EventWriter.stats). */
  batches?: () => { batches: number, events: number }
  /** Statements waiting for an approver (read from the store at scrape time); undefined: approvals off. */
  approvalsPending?: () => Promise<number | undefined>
  defaultMetrics?: boolean
}

export class GatewayMetrics {
  readonly registry: Registry
  readonly #requests: Counter<'front_end' | 'outcome'>
  readonly #roundTrip: Histogram<'front_end' | 'outcome'>
  readonly #decisions: Counter<'front_end' | 'effect' | 'rule'>
  readonly #tokenFailures: Counter<'front_end' | 'reason'>
  readonly #commit: Histogram<'result'>
  readonly #masked: Counter<'front_end' | 'rule'>
  readonly #upstreamErrors: Counter<'connection' | 'code'>
  readonly #analysis: Histogram<'front_end'>
  readonly #upstream: Histogram<'connection'>

  constructor (options: GatewayMetricsOptions = {}) {
    this.registry = new Registry()
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    this.#requests = new Counter({
      name: 'sluice_requests_total',
      help: 'Front-end requests answered, by front end and outcome (ok, error, denied, held, unauthenticated).',
      labelNames: ['front_end', 'outcome'],
      registers
    })
    this.#roundTrip = new Histogram({
      name: 'sluice_request_duration_seconds',
      help: 'Whole round trip of a front-end request, from its arrival to the last byte of the answer.',
      labelNames: ['front_end', 'outcome'],
      buckets: ROUND_TRIP_BUCKETS,
      registers
    })
    this.#decisions = new Counter({
      name: 'sluice_statement_decisions_total',
      help: 'Policy decisions on statements, by effect and the rule that decided (a held statement counts once per poll).',
      labelNames: ['front_end', 'effect', 'rule'],
      registers
    })
    this.#tokenFailures = new Counter({
      name: 'sluice_token_verification_failures_total',
      help: 'Requests refused by token verification, by catalogue error code.',
      labelNames: ['front_end', 'reason'],
      registers
    })
    this.#commit = new Histogram({
      name: 'sluice_recording_commit_seconds',
      help: 'From handing a session event to the recorder until it is committed to the store (or fails).',
      labelNames: ['result'],
      buckets: COMMIT_BUCKETS,
      registers
    })
    this.#masked = new Counter({
      name: 'sluice_masked_values_total',
      help: 'Result values masked, by the masking rule (or detector) that masked them.',
      labelNames: ['front_end', 'rule'],
      registers
    })
    this.#upstreamErrors = new Counter({
      name: 'sluice_upstream_errors_total',
      help: 'Round trips the warehouse failed or could not be reached for, by connection and catalogue code.',
      labelNames: ['connection', 'code'],
      registers
    })
    this.#analysis = new Histogram({
      name: 'sluice_policy_analysis_seconds',
      help: 'Parsing and analysing a request\'s SQL (on the parser pool), per admitted or refused request.',
      labelNames: ['front_end'],
      buckets: ANALYSIS_BUCKETS,
      registers
    })
    this.#upstream = new Histogram({
      name: 'sluice_upstream_seconds',
      help: 'The warehouse call of a round trip (all its statements), by connection.',
      labelNames: ['connection'],
      buckets: ROUND_TRIP_BUCKETS,
      registers
    })
    const queueDepth = options.queueDepth
    if (queueDepth !== undefined) {
      // Read at scrape time: no timer, nothing to stop.
      new Gauge({
        name: 'sluice_recording_queue_depth',
        help: 'Session events waiting for the store.',
        registers,
        collect () { this.set(queueDepth()) }
      })
    }
    const batches = options.batches
    if (batches !== undefined) {
      // Mean batch size is events / batches: group commit's effect, read off the writer's own counts.
      new Gauge({
        name: 'sluice_recording_batches_committed',
        help: 'Recording batches (one INSERT each) committed since start.',
        registers,
        collect () { this.set(batches().batches) }
      })
      new Gauge({
        name: 'sluice_recording_events_committed',
        help: 'Session events committed since start, in those batches.',
        registers,
        collect () { this.set(batches().events) }
      })
    }
    const pending = options.approvalsPending
    if (pending !== undefined) {
      new Gauge({
        name: 'sluice_approvals_pending',
        help: 'Statements waiting for an approver now (pending, unexpired), across every replica.',
        registers,
        async collect () {
          const n = await pending().catch(() => undefined)
          if (n !== undefined) this.set(n)
        }
      })
    }
  }

  roundTrip ({ frontEnd, outcome, seconds }: RoundTripObservation): void {
    const labels = { front_end: bounded(frontEnd, FRONT_END), outcome: bounded(outcome, OUTCOMES) }
    this.#requests.inc(labels)
    this.#roundTrip.observe(labels, seconds)
  }

  decision ({ frontEnd, effect, ruleId }: DecisionObservation): void {
    this.#decisions.inc({ front_end: bounded(frontEnd, FRONT_END), effect: bounded(effect, EFFECTS), rule: bounded(ruleId, RULE_ID) })
  }

  tokenFailure (frontEnd: string, code: string | null | undefined): void {
    this.#tokenFailures.inc({ front_end: bounded(frontEnd, FRONT_END), reason: bounded(code, CATALOGUE_CODE) })
  }

  masked (frontEnd: string, rule: string, values: number): void {
    if (values > 0) this.#masked.inc({ front_end: bounded(frontEnd, FRONT_END), rule: bounded(rule, RULE_ID) }, values)
  }

  upstreamError (connection: string | null | undefined, code: string): void {
    this.#upstreamErrors.inc({ connection: bounded(connection, CONNECTION), code: bounded(code, CATALOGUE_CODE) })
  }

  analysis (frontEnd: string, seconds: number): void {
    this.#analysis.observe({ front_end: bounded(frontEnd, FRONT_END) }, seconds)
  }

  upstream (connection: string | null | undefined, seconds: number): void {
    this.#upstream.observe({ connection: bounded(connection, CONNECTION) }, seconds)
  }

  commit (seconds: number, ok: boolean): void {
    this.#commit.observe({ result: ok ? 'ok' : 'error' }, seconds)
  }

  async text (): Promise<string> {
    return await this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }
}
