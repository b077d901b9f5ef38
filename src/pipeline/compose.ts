// Chooses each pipeline stage's implementation from configuration: the real SQL analyzer,
// the policy engine over the policies directory (hot-reloaded), approvals held in the store
// when approvals.enabled (refused otherwise), and masking from the policy set's masking rules
// (lineage, value detectors, inference resistance).
import type { GatewaySecrets } from '../config/secrets.js'
import type { SluiceConfig } from '../config/types.js'
import type { PolicyLogger } from '../policy/watch.js'
import { PolicyStore } from '../policy/watch.js'
import { ERR_STATEMENT_TOO_COMPLEX, ERR_STATEMENT_TOO_LARGE } from '../errors.js'
import { createPooledAnalyzer, type AsyncSqlAnalyzer } from '../sql/pooled-analyzer.js'
import type { Analysis, Dialect, SqlAnalyzer } from '../sql/types.js'
import type { DecisionInput, PolicyEngine } from '../policy/types.js'
import type { Statement } from './types.js'
import { createMaskStage } from '../masking/stage.js'
import { ApprovalWebhooks, type Notified } from '../approvals/notify.js'
import { ApprovalService } from '../approvals/service.js'
import { createParamRedactor } from '../recording/fingerprint.js'
import type { Store, StoreLog } from '../store/store.js'
import { approvalHoldStage, type ApprovalHoldOptions } from './hold.js'
import { refuseApprovals, type AnalyzeStage, type DecideStage, type HoldStage, type PipelineStages, type RecordStage } from './stages.js'

export interface ComposedStages {
  stages: PipelineStages
  policies: PolicyStore
  /** Stops what the stages started (the policy file watcher). */
  close: () => Promise<void>
}

/** policies.maxStatementBytes when a configuration built in code does not say. */
export const DEFAULT_MAX_STATEMENT_BYTES = 1024 * 1024

const DIALECTS: Record<string, Dialect> = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' }

export interface AnalyzeLimits {
  /** policies.maxStatementBytes: larger statements are refused before they are parsed. */
  maxStatementBytes?: number
}

export function analyzeStage (analyzer: SqlAnalyzer | AsyncSqlAnalyzer, limits: AnalyzeLimits = {}): AnalyzeStage {
  const max = limits.maxStatementBytes
  return {
    name: 'analyze',
    enforcing: true,
    analyze (statement) {
      const sql = statement.sql
      // Characters first: a UTF-8 byte count walks the whole text, and most statements are short.
      if (max !== undefined && sql.length * 3 > max) {
        const bytes = Buffer.byteLength(sql, 'utf8')
        if (bytes > max) throw new ERR_STATEMENT_TOO_LARGE(bytes, max)
      }
      const dialect = DIALECTS[statement.connection.kind] ?? 'postgres'
      const analysis = analyzer.analyze(sql, dialect, statement.connection.defaults)
      return analysis instanceof Promise ? analysis.then(tooDeep) : tooDeep(analysis)
    }
  }
}

/** Nesting past the parser's recursion limit is a statement too complex, not a syntax error. */
function tooDeep (analysis: Analysis): Analysis {
  const deep = analysis.statements.find((s) => s.parseError !== undefined && /recursion limit exceeded/i.test(s.parseError))
  if (deep !== undefined) throw new ERR_STATEMENT_TOO_COMPLEX('nesting deeper than the parser allows')
  return analysis
}

function policyInput (statement: Statement): Omit<DecisionInput, 'analysis' | 'estimate'> {
  const { principal, connection } = statement
  return {
    principal: { subject: principal.subject, type: principal.type, groups: principal.groups, roles: principal.roles, clientId: principal.clientId },
    connection: { name: connection.name, kind: connection.kind },
    now: new Date()
  }
}

export function decideStage (engine: PolicyEngine): DecideStage {
  return {
    name: 'decide',
    enforcing: true,
    decide (statement, analysis, estimate) {
      return engine.decide({ ...policyInput(statement), analysis, ...(estimate !== undefined && { estimate }) })
    },
    needsEstimate (statement) {
      return engine.needsEstimate?.(policyInput(statement)) ?? false
    },
    get version () { return engine.version }
  }
}

/**
 * Admission asks the recorder whether the store takes writes now (a probe shared by all
 * statements admitted meanwhile), so a store outage refuses statements before the upstream.
 */
export function recordStage (recorder: { ensureWritable: () => Promise<void> }, enforcing = true): RecordStage {
  return {
    name: 'record',
    enforcing,
    async ensureWritable () {
      if (enforcing) await recorder.ensureWritable()
    }
  }
}

export async function createStages (config: SluiceConfig, logger?: PolicyLogger, secrets?: GatewaySecrets): Promise<ComposedStages> {
  const analyzer = createPooledAnalyzer(config.policies.parser ?? {})
  const policies = await PolicyStore.open(config.policies.directory, { watch: config.policies.watch, logger })
  return {
    stages: {
      analyze: analyzeStage(analyzer, { maxStatementBytes: config.policies.maxStatementBytes ?? DEFAULT_MAX_STATEMENT_BYTES }),
      decide: decideStage(policies.engine),
      hold: refuseApprovals,
      mask: createMaskStage({
        rules: () => policies.policySet.masking,
        ...(secrets !== undefined && { secret: secrets.derive('masking') }),
        ...(config.masking !== undefined && { settings: config.masking }),
        connections: config.connections
      })
    },
    policies,
    close: async () => { policies.close(); await analyzer.close() }
  }
}

export interface ComposedApprovals {
  /** The hold stage: approvals in the store when approvals.enabled, `refuseApprovals` otherwise. */
  hold: HoldStage
  /** The service the admin API and the front ends use (there even when holding is off). */
  service: ApprovalService
  /** Starts the expiry sweep. */
  start: () => void
  /** Stops the sweep and gives queued notifications a moment to leave. */
  close: () => Promise<void>
  /** Who is told of each notification delivered (or given up on): the recording layer. */
  onNotified: (listener: (n: Notified) => void) => void
}

/**
 * The approvals wiring, built once the store is open. Off by default (approvals.enabled): until
 * the front ends wait in their protocols, a held statement is refused either way — enabled,
 * the refusal names a pending approval an approver can release.
 */
export function composeApprovals (config: SluiceConfig, store: Store, log?: StoreLog, options: ApprovalHoldOptions = {}): ComposedApprovals {
  const settings = config.approvals
  const webhooks = new ApprovalWebhooks(settings.webhooks ?? {}, { ...(settings.baseUrl !== undefined && { baseUrl: settings.baseUrl }), ...(log !== undefined && { log }) })
  const redact = createParamRedactor({ names: config.recording.redact.params, values: config.recording.redact.values })
  const service = new ApprovalService({ store, notifier: webhooks, redact })
  let timer: NodeJS.Timeout | undefined
  const interval = settings.expireIntervalSeconds ?? 60
  return {
    // The approval's preview: the warehouse's estimate, where the front end can ask for one.
    hold: settings.enabled === true ? approvalHoldStage(service, { preview: async (statement) => await statement.estimate?.(), ...options }) : refuseApprovals,
    service,
    start () {
      if (settings.enabled !== true || interval === 0 || timer !== undefined) return
      timer = setInterval(() => {
        service.expire().catch((err: unknown) => { log?.warn({ err: (err as Error).message }, 'approvals: expiry sweep failed; reads treat expired approvals as expired anyway') })
      }, interval * 1000)
      timer.unref()
    },
    async close () {
      if (timer !== undefined) clearInterval(timer)
      await webhooks.close()
    },
    onNotified (listener) {
      webhooks.onSettled(listener)
    }
  }
}
