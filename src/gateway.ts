// The composition root: turns a validated configuration into a listening gateway.
// Kept apart from the CLI so tests can start and stop the real thing in-process.
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { gatewaySecrets } from './config/secrets.js'
import type { SluiceConfig } from './config/types.js'
import { ERR_CONFIG_INVALID } from './errors.js'
import { startPostgresListener, type PostgresListener } from './frontends/postgres/server.js'
import { createTokenVerifier } from './identity/verifier.js'
import { Pipeline } from './pipeline.js'
import { composeApprovals, createStages, recordStage, type ComposedStages } from './pipeline/compose.js'
import { describeOnlyHold, refuseApprovals } from './pipeline/stages.js'
import { maskedColumnsFor } from './masking/summary.js'
import { Recording } from './recording/recorder.js'
import { recordNotified } from './recording/round-trips.js'
import { loggerOptions } from './logging.js'
import { buildServer } from './server.js'
import { captureBudgets } from './recording/capture.js'
import { migrate } from './store/migrate.js'
import { openStore } from './store/open.js'
import type { Store } from './store/store.js'

export interface Gateway {
  app: FastifyInstance
  /** The address the server listens on (port resolved when configured as 0). */
  url: string
  /** The PostgreSQL wire-protocol listener, when listen.postgres is configured. */
  postgres?: PostgresListener
  close: () => Promise<void>
}

const SHARED_SECRET_REQUIRED = '/secrets/key: required with a Postgres store (store.url / DATABASE_URL): every gateway on one store must share the key behind chunk tokens and masking, or a request answered by another replica fails and masks differ. Set secrets.key (32 characters or more; e.g. secrets: { key: ${env:SLUICE_SECRETS_KEY} }) to the same value on every replica'

export async function startGateway (config: SluiceConfig): Promise<Gateway> {
  const logger = pino(loggerOptions(config.log.level))
  const secrets = gatewaySecrets(config.secrets?.key)
  // Several gateways on one Postgres must accept each other's chunk tokens and mask alike:
  // per-process random secrets are for the embedded store, which one process owns.
  if (config.store.url !== undefined && !secrets.shared) throw new ERR_CONFIG_INVALID(SHARED_SECRET_REQUIRED)
  // Policies and the analyzer first: a broken policy file fails the start before the store opens.
  const stages: ComposedStages = await createStages(config, logger, secrets)
  let store: Store
  try {
    store = await openStore(config.store, logger)
  } catch (err) {
    await stages.close()
    throw err
  }
  let app: FastifyInstance | undefined
  try {
    if (config.store.migrateOnStart) await migrate(store, { log: logger })
    const verifier = config.identity === undefined ? null : createTokenVerifier(config.identity)
    // Built here rather than in the plugin so admission can ask it whether the store writes.
    const recording = new Recording(store, config.recording, logger)
    // An approver sees which masking rules guard the tables a held statement touches.
    const approvals = composeApprovals(config, store, logger, {
      maskedColumns: (statement, admission) => maskedColumnsFor(stages.policies.policySet.masking, statement.principal.roles, statement.connection.name,
        [...new Set(admission.analysis.statements.flatMap((s) => [...s.tablesRead, ...s.tablesWritten]))])
    })
    const pipeline = new Pipeline({ ...stages.stages, hold: approvals.hold, record: recordStage(recording, config.recording.admissionCheck) },
      { captureBudget: captureBudgets(config.recording.resultCaptureBytes, config.connections) })
    // Decides without holding or recording, for what the PostgreSQL front end must check before
    // it may even describe a statement upstream (src/frontends/postgres/session.ts).
    const preflight = new Pipeline({ ...stages.stages, hold: describeOnlyHold })
    app = await buildServer({ config, store, verifier, pipeline, logger, recording, approvals: approvals.service, policies: () => stages.policies.policySet })
    app.addHook('onClose', async function closeStages () { await approvals.close(); await stages.close() })
    // The trail's "notified" step: each notification delivered (or given up on) is an event.
    approvals.onNotified((n) => {
      recordNotified(recording, n).catch((err: unknown) => { app?.log.warn({ err: (err as Error).message, approval: n.approvalId }, 'approvals: could not record a notification') })
    })
    approvals.start()
    warnUnknownWebhooks(app, config, stages)

    announce(app, config, pipeline, store.kind)
    if (!secrets.shared) app.log.info('secrets.key is not set: chunk tokens, the default masking salt and token key are random for this process (right for the embedded store; tokens and hashes change on restart)')
    if (approvals.hold === refuseApprovals) {
      app.log.warn('approvals are off (approvals.enabled: false): statements a policy holds for approval (require_approval) are refused')
    } else {
      app.log.info('approvals are on: Snowflake, BigQuery and MCP clients wait for a held statement in their protocols; the PostgreSQL front end refuses it with its approval id and runs it when sent again after approval')
    }
    await app.listen({ host: config.listen.host, port: config.listen.port })
    const address = app.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : config.listen.port
    const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host
    const running = app
    const wire = config.listen.postgres === undefined
      ? undefined
      : await startPostgresListener(config.listen.postgres, { config, verifier, pipeline, preflight, recording, store, log: app.log })
    return {
      app: running,
      url: `http://${host}:${port}`,
      ...(wire !== undefined && { postgres: wire }),
      close: async () => { await wire?.close(); await running.close() }
    }
  } catch (err) {
    // The store and stages belong to the app once registered; before that they are ours to close.
    if (app === undefined) {
      await stages.close()
      await store.close()
    } else {
      await app.close()
    }
    throw err
  }
}

/** Says at start what the gateway will and will not enforce — never silently. */
function announce (app: FastifyInstance, config: SluiceConfig, pipeline: Pipeline, storeKind: string): void {
  app.log.info({ store: storeKind, connections: Object.keys(config.connections) }, 'sluice starting')
  if (config.identity === undefined) {
    app.log.warn('identity is not configured: every front-end request will be refused with 401 until identity.issuer and identity.audience are set')
  }
  const passive = pipeline.notEnforcing()
  if (passive.length > 0) {
    app.log.warn({ stages: passive }, `pipeline stages not enforcing yet: ${passive.join(', ')}`)
  }
}

/** A rule naming a notification webhook sluice.yaml does not define would notify nobody: say so at start. */
function warnUnknownWebhooks (app: FastifyInstance, config: SluiceConfig, stages: ComposedStages): void {
  const defined = new Set(Object.keys(config.approvals.webhooks ?? {}))
  for (const rule of stages.policies.policySet.rules) {
    const missing = (rule.approval?.notify ?? []).filter((name) => !defined.has(name))
    if (missing.length > 0) app.log.warn({ rule: rule.id, webhooks: missing }, 'approvals: a rule names notification webhooks that approvals.webhooks does not define')
  }
}
