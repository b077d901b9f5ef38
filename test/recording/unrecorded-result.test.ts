// The store failing between execution and release: the warehouse ran the statement, its
// completion cannot be committed, so the result is withheld with SLUICE_RESULT_UNRECORDED — in
// each protocol's own, non-retryable shape — and the admitted event stands in the trail as a
// statement without a completion. Through snowflake-sdk, SQL API v2 and @google-cloud/bigquery.
import { randomUUID } from 'node:crypto'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchEvents } from '../../src/recording/search.js'
import type { Store } from '../../src/store/store.js'
import { startSluice, type Sluice } from '../bigquery/harness.js'
import { startStubUpstream, type StubUpstream } from '../bigquery/stub-upstream.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk } from '../support/snowflake-node-client.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', nullable: false, precision: 38, scale: 0 }]

/** Makes the store refuse every batch holding a completion while `failing` is set. */
function failCompletions (store: Store): { failing: boolean } {
  const state = { failing: false }
  const query = store.query.bind(store)
  store.query = (async (sql: string, params?: unknown[]) => {
    if (state.failing && sql.includes('insert into session_events') && String(params?.[0]).includes('"completed"')) {
      throw new Error('test: the store failed on the completion write')
    }
    return await query(sql, params)
  }) as Store['query']
  return state
}

async function admittedWithoutCompletion (store: Store, sql: string): Promise<string[]> {
  return (await searchEvents(store, { incomplete: true })).items.filter((e) => e.sqlText === sql).map((e) => e.outcome)
}

describe('store failing between execution and release (Snowflake)', { timeout: 120_000 }, () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let fail: { failing: boolean }

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT 1 AS ID', { rowtype: ROWTYPE, rowset: [['1']] })
    stub.statements.set('SELECT 2 AS ID', { rowtype: ROWTYPE, rowset: [['2']] })
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } }
    })
    fail = failCompletions(gw.store)
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  it('snowflake-sdk gets a success:false error saying the statement ran and its result is withheld', async () => {
    const conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), account: 'acme' })
    try {
      const ran = stub.queryLog.filter((q) => q.sqlText === 'SELECT 1 AS ID').length
      fail.failing = true
      const err = await runSdk(conn, 'SELECT 1 AS ID').then(() => undefined, (e: unknown) => e as { message: string, code: unknown })
      fail.failing = false
      expect(err?.message).toContain('the statement ran, but its result is withheld because it could not be recorded')
      expect(String(err?.code)).toBe('000603')
      // Executed once, not retried by the driver.
      expect(stub.queryLog.filter((q) => q.sqlText === 'SELECT 1 AS ID').length).toBe(ran + 1)
      expect(await admittedWithoutCompletion(gw.store, 'SELECT 1 AS ID')).toEqual(['admitted'])
      // The store is back: the next statement is released as usual.
      expect((await runSdk(conn, 'SELECT 2 AS ID')).rows).toEqual([{ ID: 2 }])
    } finally {
      fail.failing = false
      await destroySdk(conn)
    }
  })

  it('SQL API v2 answers 422 QueryFailureStatus (not retried), with no Retry-After', async () => {
    fail.failing = true
    try {
      const res = await fetch(`${gw.url}/api/v2/statements`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ statement: 'SELECT 2 AS ID' })
      })
      expect(res.status).toBe(422)
      expect(res.headers.get('retry-after')).toBeNull()
      expect(await res.json()).toMatchObject({ code: '000603', sqlState: 'XX000', message: expect.stringContaining('the statement ran, but its result is withheld'), statementHandle: expect.any(String) })
    } finally {
      fail.failing = false
    }
    expect(await admittedWithoutCompletion(gw.store, 'SELECT 2 AS ID')).toEqual(['admitted'])
  })

  it('refuses a retry of the same requestId without running it again, saying the outcome was never stored', async () => {
    stub.statements.set('SELECT 3 AS ID', { rowtype: ROWTYPE, rowset: [['3']] })
    const requestId = randomUUID()
    const send = async (): Promise<Response> => await fetch(`${gw.url}/api/v2/statements?requestId=${requestId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await gw.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ statement: 'SELECT 3 AS ID' })
    })
    fail.failing = true
    try {
      expect((await send()).status).toBe(422)
    } finally {
      fail.failing = false
    }
    const retry = await send()
    expect(retry.status).toBe(400)
    const body = await retry.json() as { message: string }
    expect(body.message).toContain('its outcome was never stored')
    expect(body.message).not.toContain('expired')
    expect(stub.queryLog.filter((q) => q.sqlText === 'SELECT 3 AS ID').length).toBe(1)
  })
})

describe('store failing between execution and release (BigQuery)', { timeout: 120_000 }, () => {
  let stub: StubUpstream
  let sluice: Sluice
  let fail: { failing: boolean }

  beforeAll(async () => {
    stub = await startStubUpstream('stub-project', { pendingPolls: 0 })
    sluice = await startSluice({ connections: { 'bq-stub': { kind: 'bigquery', url: stub.url, project: 'stub-project', default: true } } })
    fail = failCompletions(sluice.app.store)
  })
  afterAll(async () => {
    await sluice?.close()
    await stub?.close()
  })

  it('@google-cloud/bigquery gets a 400 failedPrecondition (not retried) naming the withheld result', async () => {
    const authClient = new OAuth2Client()
    authClient.setCredentials({ access_token: await sluice.token('alice') })
    const bq = new BigQuery({ projectId: 'stub-project', apiEndpoint: sluice.url, authClient })
    fail.failing = true
    try {
      const err = await bq.query('SELECT id, email FROM t').then(() => undefined, (e: unknown) => e as { code?: number, message: string, errors?: Array<{ reason: string }> })
      expect(err?.code).toBe(400)
      expect(err?.message).toContain('the statement ran, but its result is withheld')
      expect(err?.errors?.[0]?.reason).toBe('failedPrecondition')
      // One getQueryResults: the client did not retry the withheld answer.
      expect(stub.calls.filter((c) => c.startsWith('GET /bigquery/v2/projects/stub-project/queries/')).length).toBe(1)
    } finally {
      fail.failing = false
    }
    expect(await admittedWithoutCompletion(sluice.app.store, 'SELECT id, email FROM t')).toEqual(['admitted'])
  })
})
