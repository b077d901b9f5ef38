// A Sluice with every HTTP front end on one listening server (Snowflake connector and SQL API
// against the loopback connector stub, BigQuery against a tiny recording stub), a real OIDC
// provider, PGlite in memory, and the production logger options writing into an array: what
// the identity and protocol-input regression tests drive over real sockets. Node's HTTP parser
// (header limits) only runs on a real socket, never under inject().
import { createServer, type Server } from 'node:http'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { validateConfig } from '../../src/config/load.js'
import { createTokenVerifier } from '../../src/identity/verifier.js'
import { loggerOptions } from '../../src/logging.js'
import { Pipeline } from '../../src/pipeline.js'
import { passThroughAnalyze, passThroughDecide, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import { buildServer } from '../../src/server.js'
import { migrate } from '../../src/store/migrate.js'
import { MEMORY, openPgliteStore } from '../../src/store/pglite.js'
import { startTestIdp, type TestIdp } from './oidc-provider.js'
import { startUpstreamStub, type UpstreamStub } from './snowflake-upstream-stub.js'

export const BQ_PROJECT = 'input-project'

/** BigQuery jobs.query answered at once (JOB_CREATION_OPTIONAL shape), raw request bodies kept. */
export interface BigQueryRecorder {
  url: string
  /** Raw bytes of every request body the stub received. */
  bodies: Buffer[]
  close: () => Promise<void>
}

async function startBigQueryRecorder (): Promise<BigQueryRecorder> {
  const bodies: Buffer[] = []
  let next = 0
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks))
      if (req.method === 'POST' && req.url?.startsWith(`/bigquery/v2/projects/${BQ_PROJECT}/queries`) === true) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
          kind: 'bigquery#queryResponse',
          queryId: `recq_${++next}`,
          jobComplete: true,
          schema: { fields: [{ name: 'x', type: 'STRING', mode: 'NULLABLE' }] },
          rows: [{ f: [{ v: 'ok' }] }],
          totalRows: '1'
        }))
        return
      }
      res.writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 404, message: 'not in the recorder', errors: [{ reason: 'notFound', message: 'no route' }], status: 'NOT_FOUND' } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

export interface InputGateway {
  app: FastifyInstance
  url: string
  idp: TestIdp
  snowflake: UpstreamStub
  bigquery: BigQueryRecorder
  /** Every log line the gateway wrote (JSON text), at info level and above. */
  logs: string[]
  /** A fresh human token (groups ai-agents → role agent). */
  token: (subject?: string) => Promise<string>
  close: () => Promise<void>
}

export interface InputGatewayOptions {
  /** Overrides of the identity section (requireAccessTokenType, clientRoles, maxTokenBytes, …). */
  identity?: Record<string, unknown>
  /** Overrides of the listen section (maxHeaderBytes, …). */
  listen?: Record<string, unknown>
}

export async function startInputGateway (options: InputGatewayOptions = {}): Promise<InputGateway> {
  const idp = await startTestIdp()
  const snowflake = await startUpstreamStub()
  const bigquery = await startBigQueryRecorder()
  const config = validateConfig({
    listen: { host: '127.0.0.1', port: 0, ...options.listen },
    log: { level: 'info' },
    identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] }, ...options.identity },
    connections: {
      sf: { kind: 'snowflake', url: snowflake.url, default: true, account: 'acme', user: 'svc', password: 'upstream-secret' },
      bq: { kind: 'bigquery', url: bigquery.url, project: BQ_PROJECT, default: true }
    },
    policies: { directory: './policies', watch: false }
  })
  const logs: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { logs.push(String(chunk)); done() } })
  // The gateway's own logger options, as startGateway builds them: the serializers under test.
  const logger = pino(loggerOptions(config.log.level), stream)
  const store = await openPgliteStore({ dataDir: MEMORY })
  await migrate(store)
  const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: passThroughDecide, hold: refuseApprovals, mask: passThroughMask })
  const app = await buildServer({ config, store, verifier: createTokenVerifier(config.identity!), pipeline, logger })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    idp,
    snowflake,
    bigquery,
    logs,
    token: async (subject = 'alice') => await idp.userToken({ subject, groups: ['ai-agents'] }),
    close: async () => {
      await app.close() // closes the store too
      await snowflake.close()
      await bigquery.close()
      await idp.close()
    }
  }
}
