// /metrics scraped after real traffic through the front ends (Snowflake SQL API v2 and BigQuery
// REST against their loopback stubs, the identity endpoint): counters and histograms move by
// exactly the round trips sent, and no label carries SQL, a token or a principal.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayMetrics } from '../../src/metrics/gateway-metrics.js'
import { startSluice, type Sluice } from '../bigquery/harness.js'
import { startStubUpstream, type StubUpstream } from '../bigquery/stub-upstream.js'
import { denyKeyword, maskColumns, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

type Samples = Map<string, number>

/** Prometheus text → `name{labels}` → value (labels as printed, sorted by prom-client). */
function parse (text: string): Samples {
  const samples: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

async function scrape (url: string): Promise<{ text: string, samples: Samples, contentType: string }> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  const text = await res.text()
  return { text, samples: parse(text), contentType: res.headers.get('content-type') ?? '' }
}

const value = (samples: Samples, key: string): number => samples.get(key) ?? 0

describe('/metrics after Snowflake SQL API v2 traffic', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let token: string

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT ID FROM CUSTOMERS', { rowtype: [{ name: 'ID', type: 'fixed', scale: 0, precision: 38 }], rowset: [['1'], ['2']] })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } },
      stages: { decide: denyKeyword('DELETE'), mask: maskColumns(['ID']) }
    })
    token = await gw.token('alice')
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  const post = async (statement: string, bearer = token): Promise<number> => {
    const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify({ statement }) })
    await res.body.dump()
    return res.statusCode
  }

  it('counts round trips by outcome, decisions by rule, token failures by reason, and commit latency', async () => {
    const before = (await scrape(gw.url)).samples
    expect(await post('SELECT ID FROM CUSTOMERS')).toBe(200)
    expect(await post('SELECT ID FROM CUSTOMERS')).toBe(200)
    expect(await post('DELETE FROM CUSTOMERS')).toBeGreaterThanOrEqual(400)
    expect(await post('SELECT ID FROM CUSTOMERS', 'not-a-jwt')).toBe(401)
    expect(await post('SELECT * FROM NOWHERE')).toBeGreaterThanOrEqual(400)
    const whoami = await fetch(`${gw.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
    expect(whoami.status).toBe(200)

    const { text, samples, contentType } = await scrape(gw.url)
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    const delta = (key: string): number => value(samples, key) - value(before, key)
    expect(delta('sluice_requests_total{front_end="snowflake-sqlapi",outcome="ok"}')).toBe(2)
    expect(delta('sluice_requests_total{front_end="snowflake-sqlapi",outcome="denied"}')).toBe(1)
    expect(delta('sluice_requests_total{front_end="snowflake-sqlapi",outcome="unauthenticated"}')).toBe(1)
    expect(delta('sluice_requests_total{front_end="identity",outcome="ok"}')).toBe(1)
    // The histogram saw the same round trips, each in the bucket of its own duration.
    expect(delta('sluice_request_duration_seconds_count{front_end="snowflake-sqlapi",outcome="ok"}')).toBe(2)
    expect(delta('sluice_request_duration_seconds_bucket{le="+Inf",front_end="snowflake-sqlapi",outcome="ok"}')).toBe(2)
    expect(delta('sluice_request_duration_seconds_sum{front_end="snowflake-sqlapi",outcome="ok"}')).toBeGreaterThan(0)
    // Each statement decided once: the admitted event and the completion are one decision.
    expect(delta('sluice_statement_decisions_total{front_end="snowflake-sqlapi",effect="allow",rule="allow-rest"}')).toBe(3)
    // Two rows of ID in each of the two results.
    expect(delta('sluice_masked_values_total{front_end="snowflake-sqlapi",rule="mask-pii"}')).toBe(4)
    const upstream = [...samples.keys()].filter((k) => k.startsWith('sluice_upstream_errors_total{'))
    // The stub fails a statement on an unknown table as Snowflake does (a compilation error).
    expect(upstream).toEqual(['sluice_upstream_errors_total{connection="stubbed",code="SLUICE_SNOWFLAKE_STATEMENT_FAILED"}'])
    expect(delta(upstream[0] ?? '')).toBe(1)
    expect(delta('sluice_statement_decisions_total{front_end="snowflake-sqlapi",effect="deny",rule="agents-read-only"}')).toBe(1)
    const failures = [...samples.keys()].filter((k) => k.startsWith('sluice_token_verification_failures_total{'))
    expect(failures).toEqual([expect.stringMatching(/^sluice_token_verification_failures_total\{front_end="snowflake-sqlapi",reason="SLUICE_[A-Z_]+"\}$/)])
    expect(delta(failures[0] ?? '')).toBe(1)
    // Admitted + completed for each allowed statement, one event for every other round trip.
    expect(delta('sluice_recording_commit_seconds_count{result="ok"}')).toBe(3 * 2 + 3)
    // Four requests were analysed (the 401 never reached analysis); three reached the warehouse
    // (the unknown table fails there), each observed once although two events follow each.
    expect(delta('sluice_policy_analysis_seconds_count{front_end="snowflake-sqlapi"}')).toBe(4)
    expect(delta('sluice_upstream_seconds_count{connection="stubbed"}')).toBe(3)
    expect(delta('sluice_upstream_seconds_sum{connection="stubbed"}')).toBeGreaterThan(0)
    expect(samples.has('sluice_recording_queue_depth')).toBe(true)
    // The same events, committed in batches of one or more (group commit).
    expect(delta('sluice_recording_events_committed')).toBe(3 * 2 + 3)
    expect(delta('sluice_recording_batches_committed')).toBeGreaterThanOrEqual(1)
    expect(delta('sluice_recording_batches_committed')).toBeLessThanOrEqual(3 * 2 + 3)
    expect(samples.has('nodejs_eventloop_lag_seconds')).toBe(true)
    // No SQL, token, principal or connection secret in any label or value.
    for (const secret of ['CUSTOMERS', 'NOWHERE', 'SELECT', 'DELETE', token, 'not-a-jwt', 'alice', stub.url, 'svc']) expect(text).not.toContain(secret)
  })
})

describe('/metrics after BigQuery REST traffic', { timeout: 120_000 }, () => {
  let stub: StubUpstream
  let sluice: Sluice

  beforeAll(async () => {
    stub = await startStubUpstream('stub-project', { queryIdOnly: true })
    sluice = await startSluice({ connections: { 'bq-stub': { kind: 'bigquery', url: stub.url, project: 'stub-project', default: true } } })
  })
  afterAll(async () => {
    await sluice?.close()
    await stub?.close()
  })

  it('counts the BigQuery front end\'s round trips and decisions', async () => {
    const token = await sluice.token('bob')
    const query = async (sql: string): Promise<number> => {
      const res = await fetch(`${sluice.url}/bigquery/v2/projects/stub-project/queries`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query: sql, useLegacySql: false }) })
      await res.arrayBuffer()
      return res.status
    }
    expect(await query('SELECT id FROM ds.people')).toBe(200)
    expect(await query('DELETE FROM ds.people WHERE true')).toBe(403)
    const { samples, text } = await scrape(sluice.url)
    expect(value(samples, 'sluice_requests_total{front_end="bigquery",outcome="ok"}')).toBe(1)
    expect(value(samples, 'sluice_requests_total{front_end="bigquery",outcome="denied"}')).toBe(1)
    expect(value(samples, 'sluice_statement_decisions_total{front_end="bigquery",effect="allow",rule="allow-rest"}')).toBe(1)
    expect(value(samples, 'sluice_statement_decisions_total{front_end="bigquery",effect="deny",rule="no-delete"}')).toBe(1)
    for (const secret of ['ds.people', token, 'bob']) expect(text).not.toContain(secret)
  })
})

describe('label values stay bounded', () => {
  it('folds anything outside the expected shape into "other"', async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false })
    metrics.roundTrip({ frontEnd: 'SELECT * FROM secrets', outcome: 'whatever', seconds: 0.01 })
    metrics.decision({ frontEnd: 'bigquery', effect: 'allow', ruleId: "x' OR 1=1 -- a rule id no policy file can have" })
    metrics.tokenFailure('bigquery', 'eyJhbGciOiJSUzI1NiJ9.payload.signature')
    const samples = parse(await metrics.text())
    expect(samples.get('sluice_requests_total{front_end="other",outcome="other"}')).toBe(1)
    expect(samples.get('sluice_statement_decisions_total{front_end="bigquery",effect="allow",rule="other"}')).toBe(1)
    expect(samples.get('sluice_token_verification_failures_total{front_end="bigquery",reason="other"}')).toBe(1)
  })
})

describe('gauges read at scrape time', () => {
  it('reports statements waiting for approval, and nothing when approvals are off or the store fails', async () => {
    let pending: number | undefined = 3
    let failing = false
    const metrics = new GatewayMetrics({
      defaultMetrics: false,
      approvalsPending: async () => {
        if (failing) throw new Error('store down')
        return pending
      }
    })
    expect(value(parse(await metrics.text()), 'sluice_approvals_pending')).toBe(3)
    pending = 0
    expect(value(parse(await metrics.text()), 'sluice_approvals_pending')).toBe(0)
    // A scrape never fails because the store does: the gauge keeps its last value.
    pending = 5
    failing = true
    expect(value(parse(await metrics.text()), 'sluice_approvals_pending')).toBe(0)
  })
})
