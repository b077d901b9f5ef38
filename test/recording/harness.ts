// A gateway with a pipeline-driven front-end route (`POST /test/sql`) until the warehouse
// front ends land: the real server, plugin chain, verifier, SQL analyzer and recording, a
// decide stage that denies anything touching `secrets`, a masker for EMAIL, and an upstream
// that counts its calls — so tests can prove the upstream was (or was not) reached.
// No vitest imports: the crash test runs this in a child process.
import type { FastifyInstance } from 'fastify'
import { validateConfig } from '../../src/config/load.js'
import type { IdentityConfig } from '../../src/config/types.js'
import { ERR_STORE_UNAVAILABLE, ERR_UPSTREAM_FAILED } from '../../src/errors.js'
import { createTokenVerifier, type TokenVerifier } from '../../src/identity/verifier.js'
import { Pipeline, type NeutralResult, type Statement } from '../../src/pipeline.js'
import { analyzeStage, recordStage } from '../../src/pipeline/compose.js'
import { refuseApprovals, type DecideStage, type HoldStage, type MaskStage } from '../../src/pipeline/stages.js'
import type { ApprovalService } from '../../src/approvals/service.js'
import { captureBudgets } from '../../src/recording/capture.js'
import { Recording } from '../../src/recording/recorder.js'
import { buildServer } from '../../src/server.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { Store } from '../../src/store/store.js'

export const decideForTests: DecideStage = {
  name: 'decide',
  enforcing: true,
  version: 'sha256:test-policies',
  decide (_statement, analysis) {
    const tables = analysis.statements.flatMap((s) => [...s.tablesRead, ...s.tablesWritten])
    if (tables.some((t) => t.includes('secrets'))) {
      return { effect: 'deny', ruleId: 'no-secrets', reason: 'denied by rule no-secrets: agents may not read secrets', detail: 'agents may not read secrets', limits: {} }
    }
    return { effect: 'allow', ruleId: 'allow-agents', reason: 'allowed by rule allow-agents: agents may read', limits: {} }
  }
}

export const maskEmail: MaskStage = {
  name: 'mask',
  enforcing: true,
  plan (_s, _a, schema) {
    return { columns: schema.columns.flatMap((c, index) => (c.name === 'EMAIL' ? [{ index, rule: 'mask-email' }] : [])) }
  },
  mask (plan, page) {
    const masked = new Set(plan.columns.map((c) => c.index))
    return { rows: page.rows.map((row) => row.map((v, i) => (masked.has(i) ? '***' : v))) }
  }
}

/** The upstream: counts calls; `fail_upstream` in the SQL makes it fail, `stall_upstream` never answer. */
export function countingUpstream (): { calls: number, execute: (s: Statement) => Promise<NeutralResult> } {
  const upstream = {
    calls: 0,
    async execute (statement: Statement): Promise<NeutralResult> {
      upstream.calls++
      if (statement.sql.includes('fail_upstream')) throw new ERR_UPSTREAM_FAILED('wh', 'the warehouse said no')
      // A statement the warehouse is still running: the gateway can be killed meanwhile.
      if (statement.sql.includes('stall_upstream')) await new Promise(() => {})
      return {
        schema: { columns: [{ name: 'ID', type: 'NUMBER' }, { name: 'EMAIL', type: 'TEXT' }] },
        upstreamId: `q-${upstream.calls}`,
        pages: (async function * () {
          yield { rows: [[1, 'a@example.com'], [2, 'b@example.com']] }
          yield { rows: [[3, 'c@example.com']] }
        })()
      }
    }
  }
  return upstream
}

/** Wraps a store so a test can take it "down": every call fails as an unreachable store would. */
export function switchableStore (inner: Store): Store & { down: boolean } {
  const fail = (): never => { throw new ERR_STORE_UNAVAILABLE('test: store is down') }
  const wrapper = {
    down: false,
    kind: inner.kind,
    async query<T> (sql: string, params?: unknown[]) { if (wrapper.down) fail(); return await inner.query<T>(sql, params) },
    async exec (script: string) { if (wrapper.down) fail(); await inner.exec(script) },
    async transaction<T> (fn: Parameters<Store['transaction']>[0]) { if (wrapper.down) fail(); return await inner.transaction(fn) as T },
    async withAdvisoryLock<T> (key: bigint | number, fn: () => Promise<T>) { return await inner.withAdvisoryLock(key, fn) },
    async ping () { if (wrapper.down) fail(); await inner.ping() },
    async close () { await inner.close() }
  }
  return wrapper as Store & { down: boolean }
}

export interface HarnessOptions {
  store: Store
  identity: IdentityConfig
  recording?: Record<string, unknown>
  /** sluice.yaml connections (their recording settings apply); the route names one in `connection`. */
  connections?: Record<string, unknown>
  /** Instead of verifying real tokens (the benchmark measures recording, not JWT checks). */
  verifier?: TokenVerifier
  /** The decide and hold stages, the approvals service and extra group→role mappings (approvals suites). */
  decide?: DecideStage
  hold?: HoldStage
  approvals?: ApprovalService
  groupRoles?: Record<string, string[]>
  /** Routes to add before the server is ready. */
  routes?: (app: FastifyInstance, upstream: ReturnType<typeof countingUpstream>) => void
}

export interface Harness {
  app: FastifyInstance
  recording: Recording
  upstream: ReturnType<typeof countingUpstream>
}

export async function startHarness (options: HarnessOptions): Promise<Harness> {
  const config = validateConfig({
    log: { level: 'silent' },
    identity: { ...options.identity, groupRoles: { analysts: ['agent'], security: ['auditor'], ...options.groupRoles }, clientRoles: { 'ci-bot': ['agent'] } },
    recording: { retention: { intervalSeconds: 0 }, ...options.recording },
    ...(options.connections !== undefined && { connections: options.connections })
  })
  const recording = new Recording(options.store, config.recording)
  const analyzer = await createSqlAnalyzer()
  const pipeline = new Pipeline({
    analyze: analyzeStage(analyzer),
    decide: options.decide ?? decideForTests,
    hold: options.hold ?? refuseApprovals,
    mask: maskEmail,
    record: recordStage(recording)
  }, { captureBudget: captureBudgets(config.recording.resultCaptureBytes, config.connections) })
  const app = await buildServer({ config, store: options.store, verifier: options.verifier ?? createTokenVerifier(config.identity!), pipeline, recording, logger: false, ...(options.approvals !== undefined && { approvals: options.approvals }) })
  const upstream = countingUpstream()

  app.post('/test/sql', { config: { frontEnd: 'test', authenticate: true } }, async function testSql (request) {
    const body = request.body as { sql: string, params?: unknown[], connection?: string }
    const connection = body.connection ?? 'wh'
    request.connectionName = connection
    const statement: Statement = {
      requestId: request.id,
      frontEnd: 'test',
      principal: request.principal!,
      connection: { name: connection, kind: 'snowflake', defaults: { database: 'analytics', schema: 'public' } },
      sql: body.sql,
      params: body.params,
      client: { sourceIp: request.ip, userAgent: request.headers['user-agent'] }
    }
    const admission = await app.pipeline.admit(statement, request.roundTrip)
    const result = await upstream.execute(statement)
    const released = app.pipeline.release(statement, admission, result, request.roundTrip)
    const rows: unknown[][] = []
    for await (const page of released.pages) rows.push(...page.rows)
    return { columns: released.schema.columns.map((c) => c.name), rows }
  })
  options.routes?.(app, upstream)
  await app.ready()
  return { app, recording, upstream }
}
