// A Sluice listening on loopback with Snowflake connections, a real OIDC provider and a
// throwaway Postgres database as the store (PGlite takes seconds to boot; these suites start
// several gateways): what the Snowflake front-end tests drive with real clients.
import type { SpanExporter } from '@opentelemetry/sdk-trace'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { Pipeline } from '../../src/pipeline.js'
import { analyzeStage, composeApprovals, createStages, type ComposedApprovals } from '../../src/pipeline/compose.js'
import type { ApprovalHoldOptions } from '../../src/pipeline/hold.js'
import type { ApprovalService } from '../../src/approvals/service.js'
import { captureBudgets } from '../../src/recording/capture.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import {
  passThroughDecide, passThroughMask, refuseApprovals,
  type DecideStage, type MaskStage, type PipelineStages
} from '../../src/pipeline/stages.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import type { Store } from '../../src/store/store.js'
import { startTestIdp, type TestIdp } from './oidc-provider.js'
import { postgresEngine } from './stores.js'

export interface SnowflakeGateway {
  app: FastifyInstance
  url: string
  port: number
  idp: TestIdp
  store: Store
  /** The approvals service (store-backed) when `approvals` was given. */
  approvals?: ApprovalService
  /** A fresh human token; `groups` default to ai-agents (role agent), stewards add data-steward. */
  token: (subject?: string, groups?: string[]) => Promise<string>
  close: () => Promise<void>
}

export interface SnowflakeGatewayOptions {
  /** connections section of sluice.yaml. */
  connections: Record<string, Record<string, unknown>>
  /**
   * Test-local stages over the stand-ins, or the gateway's own composition (real stages). The
   * stand-ins are the pass-throughs but for analysis, which is the real parser's: it is what
   * splits a multi-statement request into the statements that run.
   */
  stages?: Partial<PipelineStages> | 'configured'
  /** policies.directory, for `stages: 'configured'`. */
  policiesDirectory?: string
  /** More of the policies section (maxStatementBytes, parser budget). */
  policies?: Record<string, unknown>
  /** A log level while debugging a test; silent by default. */
  logLevel?: string
  /** Another gateway's store and IdP, to run a second replica beside it (not closed by this one). */
  store?: Store
  idp?: TestIdp
  /** Extra identity.groupRoles entries (e.g. `{ security: ['auditor'] }`). */
  groupRoles?: Record<string, string[]>
  /** secrets.key: replicas of one deployment share it (chunk tokens, masking). */
  secretsKey?: string
  /** The tracing section of sluice.yaml, and where its spans go (the SDK's in-memory exporter). */
  tracing?: Record<string, unknown>
  traceExporter?: SpanExporter
  /** A logger to read the gateway's log lines from (instead of `logLevel`). */
  logger?: FastifyBaseLogger
  /**
   * The approvals section (enabled: true is implied): held statements wait in the store, as
   * src/gateway.ts composes them (the preview is the statement's estimate); `hold` replaces
   * the hold stage's options.
   */
  approvals?: Record<string, unknown>
  hold?: ApprovalHoldOptions
}

/** A decide stage that denies one statement keyword (e.g. DELETE), as a policy rule would. */
export function denyKeyword (keyword: string, ruleId = 'agents-read-only'): DecideStage {
  return {
    name: 'decide',
    enforcing: true,
    decide (statement) {
      const first = /^\s*([A-Za-z]+)/.exec(statement.sql)?.[1]?.toUpperCase()
      if (first === keyword.toUpperCase()) {
        const detail = `${keyword.toUpperCase()} is not allowed for role agent on connection ${statement.connection.name}`
        return { effect: 'deny', ruleId, reason: `denied by rule ${ruleId}: ${detail}`, detail, limits: {} }
      }
      return { effect: 'allow', ruleId: 'allow-rest', reason: 'allowed', limits: {} }
    }
  }
}

/** A stand-in masking stage naming columns by name, for the pending masking tests. */
export function maskColumns (names: string[], rule = 'mask-pii'): MaskStage {
  const wanted = new Set(names.map((n) => n.toUpperCase()))
  return {
    name: 'mask',
    enforcing: true,
    plan (_statement, _admission, schema) {
      return { columns: schema.columns.flatMap((c, index) => wanted.has(c.name.toUpperCase()) ? [{ index, rule }] : []) }
    },
    mask (plan, page) {
      const masked = new Set(plan.columns.map((c) => c.index))
      return { rows: page.rows.map((row) => row.map((v, i) => (masked.has(i) && v !== null ? '****' : v))) }
    }
  }
}

export async function startSnowflakeGateway (options: SnowflakeGatewayOptions): Promise<SnowflakeGateway> {
  const idp = options.idp ?? await startTestIdp()
  const config = validateConfig({
    listen: { port: 0 },
    log: { level: 'silent' },
    store: { url: 'postgres://127.0.0.1/unused' },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], stewards: ['agent', 'data-steward'], ...options.groupRoles } },
    connections: options.connections,
    policies: { directory: options.policiesDirectory ?? 'policies', watch: false, ...options.policies },
    ...(options.secretsKey === undefined ? {} : { secrets: { key: options.secretsKey } }),
    ...(options.tracing === undefined ? {} : { tracing: options.tracing }),
    ...(options.approvals === undefined ? {} : { approvals: { enabled: true, ...options.approvals } })
  })
  const engine = options.store === undefined ? postgresEngine({ poolSize: 4 }) : undefined
  // A borrowed store stays open when this gateway closes: its owner closes it.
  const store: Store = options.store === undefined ? await engine!.open() : { ...options.store, close: async () => {} }
  await migrate(store)
  const composed = options.stages === 'configured' ? await createStages(config) : undefined
  const approvals: ComposedApprovals | undefined = options.approvals === undefined ? undefined : composeApprovals(config, store, undefined, options.hold ?? { preview: async (statement) => await statement.estimate?.() })
  const stages = composed?.stages ?? {
    analyze: analyzeStage(await createSqlAnalyzer()),
    decide: passThroughDecide,
    hold: refuseApprovals,
    mask: passThroughMask,
    ...(options.stages === 'configured' ? {} : options.stages)
  }
  const pipeline = new Pipeline({ ...stages, ...(approvals !== undefined && { hold: approvals.hold }) },
    { captureBudget: captureBudgets(config.recording.resultCaptureBytes, config.connections) })
  const app = await buildServer({ config, store, verifier: createTokenVerifier(config.identity!), pipeline,
    ...(approvals !== undefined && { approvals: approvals.service }),
    logger: options.logger ?? (options.logLevel === undefined ? false : pino({ level: options.logLevel })),
    ...(options.traceExporter !== undefined && { traceExporter: options.traceExporter })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    port,
    idp,
    store,
    ...(approvals !== undefined && { approvals: approvals.service }),
    token: async (subject = 'alice', groups = ['ai-agents']) => await idp.userToken({ subject, groups }),
    close: async () => {
      await app.close()
      await approvals?.close()
      if (options.idp === undefined) await idp.close()
      await engine?.cleanup()
      await composed?.close()
    }
  }
}
