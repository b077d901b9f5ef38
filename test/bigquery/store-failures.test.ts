// The BigQuery front end when the store that holds job bindings fails: before the upstream is
// called (jobs.insert binds the id first) the answer is 503 backendError, which clients retry,
// and nothing ran; after the upstream ran the statement (jobs.query binds the id the upstream
// chose) it is 400 failedPrecondition, which no client retries, since the statement ran.
import { describe, expect, it } from 'vitest'
import { ERR_STORE_UNAVAILABLE } from '../../src/errors.js'
import { Pipeline } from '../../src/pipeline.js'
import { passThroughAnalyze, passThroughMask, refuseApprovals } from '../../src/pipeline/stages.js'
import type { BigQueryJobStore } from '../../src/state/bigquery-jobs.js'
import { bigquerySettings } from '../../src/warehouses/bigquery/connections.js'
import { BigQueryService, type CallContext } from '../../src/warehouses/bigquery/service.js'
import type { BigQueryUpstream } from '../../src/warehouses/bigquery/upstream.js'
import { readRowsAnswer } from '../../src/warehouses/bigquery/upstream-rows.js'
import { alice } from '../recording/helpers.js'
import { allowAll } from './harness.js'

const down = async (): Promise<never> => { throw new ERR_STORE_UNAVAILABLE('connection refused') }
const failingStore: BigQueryJobStore = {
  bind: down, find: down, findMany: down, setDestination: down, resultTable: down, rememberPageStart: down, pageStart: down, purgeExpired: down
}

function service (): { svc: BigQueryService, calls: string[] } {
  const settings = bigquerySettings('bq', { kind: 'bigquery', default: true, project: 'proj-one', url: 'http://127.0.0.1:9' })
  const calls: string[] = []
  const jobReference = { projectId: 'proj-one', jobId: 'upstream_job', location: 'US' }
  const upstream = {
    settings,
    project: 'proj-one',
    async queryPage () {
      calls.push('query')
      const answer = { jobReference, jobComplete: true, schema: { fields: [] }, rows: [], totalRows: '0' }
      return readRowsAnswer(Buffer.from(JSON.stringify(answer)), (what) => new Error(what))
    },
    async insertJob () { calls.push('insert'); return { jobReference, status: { state: 'DONE' } } },
    async queryResultsPage () { calls.push('results'); return { jobReference, jobComplete: true } }
  } as unknown as BigQueryUpstream
  const pipeline = new Pipeline({ analyze: passThroughAnalyze, decide: allowAll, hold: refuseApprovals, mask: passThroughMask })
  return { svc: new BigQueryService({ pipeline, connections: [settings], upstreams: new Map([['bq', upstream]]), jobs: failingStore }), calls }
}

const ctx = (): CallContext => ({ principal: alice, requestId: 'req-1', client: {}, trip: {}, onConnection: () => {} })

describe('BigQuery job bindings on a failing store', () => {
  it('refuses jobs.insert as retryable before the upstream sees the job', async () => {
    const { svc, calls } = service()
    const err = await svc.insertJob(ctx(), 'proj-one', { configuration: { query: { query: 'SELECT 1', useLegacySql: false } } }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
    expect(calls).toEqual([])
    expect(svc.failure(err, 'req-1', undefined).rendered).toMatchObject({ statusCode: 503, body: { error: { errors: [{ reason: 'backendError' }] } } })
  })

  it('says a jobs.query that ran but could not be bound ran, in a shape no client retries', async () => {
    const { svc, calls } = service()
    const trip = ctx().trip
    const err = await svc.query({ ...ctx(), trip }, 'proj-one', { query: 'UPDATE t SET a = 1 WHERE TRUE' }).catch((e: unknown) => e)
    expect(calls).toEqual(['query'])
    expect(err).toMatchObject({ code: 'SLUICE_RESULT_UNRECORDED', statusCode: 400 })
    const { rendered } = svc.failure(err, 'req-1', trip)
    expect(rendered).toMatchObject({ statusCode: 400, body: { error: { errors: [{ reason: 'failedPrecondition' }] } } })
    expect(rendered.body.error.message).toMatch(/the statement ran, but its result is withheld/)
    expect(trip.errorCode).toBe('SLUICE_RESULT_UNRECORDED')
  })

  it('answers a results page it cannot place as retryable, without reading upstream', async () => {
    const { svc, calls } = service()
    const err = await svc.getQueryResults(ctx(), 'proj-one', 'upstream_job', {}).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'SLUICE_STORE_UNAVAILABLE' })
    expect(calls).toEqual([])
  })
})
