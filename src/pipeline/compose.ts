// Chooses each pipeline stage's implementation from configuration: the real SQL analyzer,
// the policy engine over the policies directory (hot-reloaded), approvals refused until the
// approvals capability exists, and masking from the policy set's masking rules (lineage, value
// detectors, inference resistance).
import type { GatewaySecrets } from '../config/secrets.js'
import type { SluiceConfig } from '../config/types.js'
import type { PolicyLogger } from '../policy/watch.js'
import { PolicyStore } from '../policy/watch.js'
import { createSqlAnalyzer } from '../sql/analyzer.js'
import type { Dialect, SqlAnalyzer } from '../sql/types.js'
import type { PolicyEngine } from '../policy/types.js'
import { createMaskStage } from '../masking/stage.js'
import { refuseApprovals, type AnalyzeStage, type DecideStage, type PipelineStages, type RecordStage } from './stages.js'

export interface ComposedStages {
  stages: PipelineStages
  policies: PolicyStore
  /** Stops what the stages started (the policy file watcher). */
  close: () => Promise<void>
}

const DIALECTS: Record<string, Dialect> = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' }

export function analyzeStage (analyzer: SqlAnalyzer): AnalyzeStage {
  return {
    name: 'analyze',
    enforcing: true,
    analyze (statement) {
      const dialect = DIALECTS[statement.connection.kind] ?? 'postgres'
      return analyzer.analyze(statement.sql, dialect, statement.connection.defaults)
    }
  }
}

export function decideStage (engine: PolicyEngine): DecideStage {
  return {
    name: 'decide',
    enforcing: true,
    decide (statement, analysis) {
      const { principal, connection } = statement
      return engine.decide({
        principal: { subject: principal.subject, type: principal.type, groups: principal.groups, roles: principal.roles, clientId: principal.clientId },
        connection: { name: connection.name, kind: connection.kind },
        analysis,
        now: new Date()
      })
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
  const analyzer = await createSqlAnalyzer()
  const policies = await PolicyStore.open(config.policies.directory, { watch: config.policies.watch, logger })
  return {
    stages: {
      analyze: analyzeStage(analyzer),
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
    close: async () => { policies.close() }
  }
}
