// The BigQuery REST v2 front end: `/bigquery/v2/projects/{projectId}/…` for
// @google-cloud/bigquery, google-cloud-bigquery and the bq CLI, plus the discovery document.
// Thin wiring: every route authenticates the caller's OIDC bearer token, is recorded as a
// session event, and hands a CallContext to the protocol logic in src/warehouses/bigquery.
// Errors leave in Google's JSON error shape; paths not listed here are refused, not proxied.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERR_AUTH_MISSING, ERR_BIGQUERY_REFUSED, ERR_BIGQUERY_UNSUPPORTED } from '../src/errors.js'
import { LOAD_INSTEAD } from '../src/warehouses/bigquery/requests.js'
import { bigqueryConnections } from '../src/warehouses/bigquery/connections.js'
import { answerBytes } from '../src/warehouses/bigquery/encoded-rows.js'
import { discoveryDocument } from '../src/warehouses/bigquery/discovery.js'
import { googleErrorBody, rewriteSluiceBody } from '../src/warehouses/bigquery/google-errors.js'
import { cancelJob, getDataset, getJob, getTable, listDatasets, listJobs, listTableData, listTables } from '../src/warehouses/bigquery/reads.js'
import { StoreBigQueryJobs } from '../src/state/bigquery-jobs.js'
import { BigQueryService, type CallContext } from '../src/warehouses/bigquery/service.js'
import type { BigQueryUpstream } from '../src/warehouses/bigquery/upstream.js'

declare module 'fastify' {
  interface FastifyInstance {
    bigquery: BigQueryService
  }
}

export interface BigQueryPluginOptions {
  /** Upstream clients by connection name (tests inject stubs); built from config when absent. */
  upstreams?: Map<string, BigQueryUpstream>
}

type Params = Record<string, string>
type Query = Record<string, string | undefined>
const ROUTE = { config: { authenticate: true, frontEnd: 'bigquery', recordingFailure: bigqueryRecordingFailure } } as const

/**
 * A round trip that could not be recorded, in Google's error shape. Store down: 503
 * backendError, which the clients retry (nothing ran). A statement that ran: 400
 * failedPrecondition, which none of them retries, so it is not run twice.
 */
export function bigqueryRecordingFailure (err: Error & { code: string }): { statusCode: number, contentType: string, body: string } {
  const ran = err.code === 'SLUICE_RESULT_UNRECORDED'
  const status = ran ? 400 : 503
  return {
    statusCode: status,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify(googleErrorBody(status, err.message, err.code, ran ? 'failedPrecondition' : 'backendError'))
  }
}

function applicationOf (userAgent: string | undefined): string | undefined {
  if (userAgent === undefined) return undefined
  if (userAgent.includes('gcloud-node-bigquery')) return '@google-cloud/bigquery'
  if (userAgent.includes('google-cloud-sdk')) return 'bq'
  if (/gcloud-python|gccl\//.test(userAgent)) return 'google-cloud-bigquery'
  return undefined
}

export function contextOf (request: FastifyRequest): CallContext {
  const principal = request.principal
  if (principal === null) throw new ERR_AUTH_MISSING()
  const userAgent = request.headers['user-agent']
  return {
    principal,
    requestId: request.id,
    client: { sourceIp: request.ip, userAgent, application: applicationOf(userAgent) },
    trip: request.roundTrip,
    onConnection: (name) => { request.connectionName = name }
  }
}

/** Repeated query parameters collapse to one value (the last); selectedFields joins them. */
function queryOf (request: FastifyRequest): Query {
  const out: Query = {}
  for (const [key, value] of Object.entries(request.query as Record<string, string | string[] | undefined>)) {
    if (Array.isArray(value)) out[key] = key === 'selectedFields' ? value.join(',') : value[value.length - 1]
    else out[key] = value
  }
  return out
}

/**
 * A result page leaves as bytes: the answer as fastify would stringify it, its rows spliced in
 * as they were encoded slice by slice. An answer without rows is sent as it is.
 */
function sendAnswer (reply: FastifyReply, answer: object): unknown {
  const bytes = answerBytes(answer)
  if (bytes === undefined) return answer
  return reply.type('application/json; charset=utf-8').send(bytes)
}

export function createHandlers (svc: BigQueryService) {
  return {
    async query (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
      return sendAnswer(reply, await svc.query(contextOf(request), request.params.projectId as string, request.body))
    },
    async insertJob (request: FastifyRequest<{ Params: Params }>) {
      return await svc.insertJob(contextOf(request), request.params.projectId as string, request.body)
    },
    async getJob (request: FastifyRequest<{ Params: Params }>) {
      return await getJob(svc, contextOf(request), request.params.projectId as string, request.params.jobId as string, queryOf(request))
    },
    async cancelJob (request: FastifyRequest<{ Params: Params }>) {
      return await cancelJob(svc, contextOf(request), request.params.projectId as string, request.params.jobId as string, queryOf(request))
    },
    async listJobs (request: FastifyRequest<{ Params: Params }>) {
      return await listJobs(svc, contextOf(request), request.params.projectId as string, queryOf(request))
    },
    async getQueryResults (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
      return sendAnswer(reply, await svc.getQueryResults(contextOf(request), request.params.projectId as string, request.params.jobId as string, queryOf(request)))
    },
    async listTableData (request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
      const { projectId = '', datasetId = '', tableId = '' } = request.params
      return sendAnswer(reply, await listTableData(svc, contextOf(request), { projectId, datasetId, tableId }, queryOf(request)))
    },
    async getTable (request: FastifyRequest<{ Params: Params }>) {
      const { projectId = '', datasetId = '', tableId = '' } = request.params
      return await getTable(svc, contextOf(request), { projectId, datasetId, tableId }, queryOf(request))
    },
    async listTables (request: FastifyRequest<{ Params: Params }>) {
      return await listTables(svc, contextOf(request), request.params.projectId as string, request.params.datasetId as string, queryOf(request))
    },
    async getDataset (request: FastifyRequest<{ Params: Params }>) {
      return await getDataset(svc, contextOf(request), request.params.projectId as string, request.params.datasetId as string, queryOf(request))
    },
    async listDatasets (request: FastifyRequest<{ Params: Params }>) {
      return await listDatasets(svc, contextOf(request), request.params.projectId as string, queryOf(request))
    },
    async unsupported (request: FastifyRequest) {
      throw new ERR_BIGQUERY_UNSUPPORTED(`${request.method} ${request.url.split('?')[0] ?? ''}`)
    },
    async upload (request: FastifyRequest) {
      throw new ERR_BIGQUERY_REFUSED(`media uploads carry load jobs, and load jobs are refused: they write files into the warehouse with the gateway's credential, and no policy rule can allow one (${describeUpload(request.body)}); ${LOAD_INSTEAD}`)
    }
  }
}

/** What an upload asked for, for the refusal message (the job configuration is JSON). */
function describeUpload (body: unknown): string {
  const text = Buffer.isBuffer(body) ? body.subarray(0, 64 * 1024).toString('utf8') : ''
  const start = text.indexOf('{')
  for (let end = text.lastIndexOf('}'); start !== -1 && end > start; end = text.lastIndexOf('}', end - 1)) {
    try {
      const job = JSON.parse(text.slice(start, end + 1)) as { configuration?: Record<string, unknown> }
      return `job types: ${Object.keys(job.configuration ?? {}).join(', ') || 'none'}`
    } catch {
      // try a shorter candidate: multipart bodies carry the media after the JSON part
    }
  }
  return 'no job configuration found'
}

function createErrorHandler (svc: BigQueryService) {
  return function bigqueryError (thrown: Error, request: FastifyRequest, reply: FastifyReply) {
    const { error, rendered } = svc.failure(thrown, request.id, request.roundTrip)
    if (rendered.statusCode >= 500) request.log.error({ err: error }, 'bigquery request failed')
    return reply.code(rendered.statusCode).send(rendered.body)
  }
}

async function rewriteErrorBody (_request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  return rewriteSluiceBody(reply.statusCode, payload)
}

function restRoutes (svc: BigQueryService) {
  const h = createHandlers(svc)
  return async function bigqueryRestRoutes (app: FastifyInstance): Promise<void> {
    app.setErrorHandler(createErrorHandler(svc))
    app.addHook('onSend', rewriteErrorBody)
    const p = '/projects/:projectId'
    app.post(`${p}/queries`, ROUTE, h.query)
    app.get(`${p}/queries/:jobId`, ROUTE, h.getQueryResults)
    app.post(`${p}/jobs`, ROUTE, h.insertJob)
    app.get(`${p}/jobs`, ROUTE, h.listJobs)
    app.get(`${p}/jobs/:jobId`, ROUTE, h.getJob)
    app.post(`${p}/jobs/:jobId/cancel`, ROUTE, h.cancelJob)
    app.get(`${p}/datasets`, ROUTE, h.listDatasets)
    app.get(`${p}/datasets/:datasetId`, ROUTE, h.getDataset)
    app.get(`${p}/datasets/:datasetId/tables`, ROUTE, h.listTables)
    app.get(`${p}/datasets/:datasetId/tables/:tableId`, ROUTE, h.getTable)
    app.get(`${p}/datasets/:datasetId/tables/:tableId/data`, ROUTE, h.listTableData)
    // Everything else the API has (inserts, deletes, IAM, models, routines…) is refused.
    app.all('/*', ROUTE, h.unsupported)
  }
}

/** Media uploads (load jobs) and batch requests: read as bytes, then refused. */
function refusedRoutes (svc: BigQueryService, handler: (request: FastifyRequest) => Promise<never>) {
  return async function bigqueryRefusedRoutes (app: FastifyInstance): Promise<void> {
    app.setErrorHandler(createErrorHandler(svc))
    app.addHook('onSend', rewriteErrorBody)
    // multipart/related and multipart/mixed bodies are read only to name what they carry.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer' }, function keepBuffer (_request, body, done) { done(null, body) })
    app.all('/', ROUTE, handler)
    app.all('/*', ROUTE, handler)
  }
}

function serveDiscovery (request: FastifyRequest, reply: FastifyReply) {
  return reply.type('application/json; charset=utf-8').send(discoveryDocument(`${request.protocol}://${request.host}`))
}

async function bigqueryPlugin (fastify: FastifyInstance, opts: BigQueryPluginOptions): Promise<void> {
  const service = new BigQueryService({
    pipeline: fastify.pipeline,
    connections: bigqueryConnections(fastify.config),
    upstreams: opts.upstreams,
    jobs: new StoreBigQueryJobs(fastify.store),
    log: fastify.log,
    ...(fastify.hasDecorator('approvals') && { approvals: fastify.approvals })
  })
  fastify.decorate('bigquery', service)
  // Public: the document describes the API, holds no data, and clients fetch it before they auth.
  fastify.get('/$discovery/rest', serveDiscovery)
  fastify.get('/discovery/v1/apis/bigquery/v2/rest', serveDiscovery)
  await fastify.register(restRoutes(service), { prefix: '/bigquery/v2' })
  const h = createHandlers(service)
  await fastify.register(refusedRoutes(service, h.upload), { prefix: '/upload/bigquery/v2' })
  await fastify.register(refusedRoutes(service, h.upload), { prefix: '/resumable/upload/bigquery/v2' })
  await fastify.register(refusedRoutes(service, h.unsupported), { prefix: '/batch/bigquery/v2' })
}

export default fp(bigqueryPlugin, {
  name: 'sluice-bigquery',
  fastify: '5.x',
  dependencies: ['sluice-store', 'sluice-auth', 'sluice-recording']
})
