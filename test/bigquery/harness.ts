// Sluice with its BigQuery front end on loopback, a real OIDC provider, an in-memory PGlite
// store and a pipeline whose stages the test chooses (the policy and masking stages are built
// elsewhere; until they are wired, tests decide with small stage objects of their own).
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { Pipeline } from '../../src/pipeline.js'
import { createStages } from '../../src/pipeline/compose.js'
import {
  passThroughAnalyze, passThroughMask, refuseApprovals,
  type DecideStage, type MaskStage
} from '../../src/pipeline/stages.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { gatewaySecrets } from '../../src/config/secrets.js'
import type { FastifyInstance } from 'fastify'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { captureBudgets } from '../../src/recording/capture.js'

export interface Sluice {
  url: string
  app: FastifyInstance
  idp: TestIdp
  /** A fresh human token; `groups` default to ai-agents (role agent), stewards add data-steward. */
  token: (subject?: string, groups?: string[]) => Promise<string>
  close: () => Promise<void>
}

/**
 * Allows everything but statements starting with DELETE (rule `no-delete`) and data transfers
 * (EXPORT DATA, LOAD DATA, INSERT: rule `no-transfers`, as the shipped policy holds them for
 * approval); a statement carrying the comment `-- cap:N` is allowed with maxRows N (`capped`).
 */
export const denyDeletes: DecideStage = {
  name: 'decide',
  enforcing: true,
  decide (statement) {
    if (/^\s*DELETE\b/i.test(statement.sql)) {
      return { effect: 'deny', ruleId: 'no-delete', reason: 'agents may not delete rows', limits: {} }
    }
    if (/\b(EXPORT|LOAD)\s+DATA\b|^\s*INSERT\b/i.test(statement.sql)) {
      return { effect: 'deny', ruleId: 'no-transfers', reason: 'data transfers need a human', limits: {} }
    }
    const cap = /-- cap:(\d+)/.exec(statement.sql)
    if (cap !== null) return { effect: 'allow', ruleId: 'capped', reason: 'allowed with a row limit', limits: { maxRows: Number(cap[1]) } }
    return { effect: 'allow', ruleId: 'allow-rest', reason: 'allowed in tests', limits: {} }
  }
}

/** Allows everything (an enforcing stage): what a policy that allows data transfers does. */
export const allowAll: DecideStage = {
  name: 'decide',
  enforcing: true,
  decide: () => ({ effect: 'allow', ruleId: 'allow-all', reason: 'allowed in tests', limits: {} })
}

export interface SluiceOptions {
  connections: Record<string, Record<string, unknown>>
  decide?: DecideStage
  mask?: MaskStage
  /** Use the gateway's own stages (SQL analyzer, policy engine, masking) over this directory. */
  policiesDirectory?: string
  /** More of the policies section (maxStatementBytes, parser budget). */
  policies?: Record<string, unknown>
  /** A Postgres database instead of an in-memory PGlite store (several gateways on one store). */
  databaseUrl?: string
  /** secrets.key: gateways configured with the same one mask alike. */
  secretsKey?: string
  /** An identity provider shared with other gateways (left running by close). */
  idp?: TestIdp
}

export async function startSluice (options: SluiceOptions): Promise<Sluice> {
  const idp = options.idp ?? await startTestIdp()
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'], stewards: ['agent', 'data-steward'] } },
    connections: options.connections,
    policies: { directory: options.policiesDirectory ?? './policies', watch: false, ...options.policies },
    ...(options.databaseUrl !== undefined && { store: { url: options.databaseUrl } }),
    ...(options.secretsKey !== undefined && { secrets: { key: options.secretsKey } })
  })
  const store = options.databaseUrl === undefined ? await openPgliteStore({ dataDir: MEMORY }) : openPostgresStore({ url: options.databaseUrl, poolSize: 4 })
  await migrate(store)
  const composed = options.policiesDirectory === undefined ? undefined : await createStages(config, undefined, gatewaySecrets(config.secrets?.key))
  const pipeline = new Pipeline(composed?.stages ?? {
    analyze: passThroughAnalyze,
    decide: options.decide ?? denyDeletes,
    hold: refuseApprovals,
    mask: options.mask ?? passThroughMask
  }, { captureBudget: captureBudgets(config.recording.resultCaptureBytes, config.connections) })
  const app = await buildServer({ config, store, verifier: createTokenVerifier(config.identity!), pipeline, logger: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    idp,
    token: async (subject = 'alice', groups = ['ai-agents']) => await idp.userToken({ subject, groups }),
    close: async () => {
      await app.close() // closes the store too
      await composed?.close()
      if (options.idp === undefined) await idp.close()
    }
  }
}

/** Plain HTTP against Sluice, for what the client libraries hide. */
export async function api (sluice: Sluice, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${sluice.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? {} : JSON.parse(text)
  } catch {
    json = { text }
  }
  return { status: res.status, json }
}
