// snowflake-sdk (Node) → Sluice (connector protocol front end) → fakesnow. The agent's script
// changes only accessUrl, authenticator OAUTH and token; Sluice logs in upstream itself.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { connectSdk, destroySdk, runSdk, streamAll, type SdkConnection } from '../support/snowflake-node-client.js'
import { denyKeyword, startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'

describe('snowflake-sdk through Sluice against fakesnow', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let conn: SdkConnection

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: {
        // Two connections: the default one, and one a client selects by account name.
        fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', partitionRows: 2 },
        other: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice2', password: 'other-secret', database: SEED_DATABASE, schema: SEED_SCHEMA },
        large: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice', password: 'pw', partitionRows: 1000 },
        // No opt-out: fakesnow refuses USE SECONDARY ROLES NONE, so logins here fail closed.
        strict: { kind: 'snowflake', url: fakesnow.url, user: 'sluice', password: 'pw' }
      },
      stages: { decide: denyKeyword('DELETE') }
    })
    conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), database: SEED_DATABASE, schema: SEED_SCHEMA })
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    if (conn !== undefined) await destroySdk(conn)
    await gw?.close()
    await fakesnow?.close()
  })

  it('runs a SELECT and returns typed rows (inline rows plus Sluice-served chunks)', async () => {
    const { rows, statement } = await runSdk(conn, 'SELECT ID, EMAIL, SSN, BALANCE, ACTIVE FROM CUSTOMERS ORDER BY ID')
    expect(rows).toEqual(CUSTOMERS.map((c) => ({ ID: c.id, EMAIL: c.email, SSN: c.ssn, BALANCE: Number(c.balance), ACTIVE: c.id % 2 === 1 })))
    expect(statement.getQueryId()).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('reads a larger result: gzip-compressed inline rows and Sluice-served chunks', async () => {
    const large = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), account: 'large' })
    try {
      const { rows } = await runSdk(large, 'SELECT SEQ4() AS N, \'row-\' || SEQ4() AS S FROM TABLE(GENERATOR(ROWCOUNT => 3000)) ORDER BY N')
      expect(rows).toHaveLength(3000)
      expect(rows[2999]).toEqual({ N: 2999, S: 'row-2999' })
    } finally {
      await destroySdk(large)
    }
  })

  it('binds positional parameters', async () => {
    const { rows } = await runSdk(conn, 'SELECT EMAIL FROM CUSTOMERS WHERE ID = ?', { binds: [2] })
    expect(rows).toEqual([{ EMAIL: 'alan@example.com' }])
  })

  it('runs DML and reports the rows it changed', async () => {
    const { statement } = await runSdk(conn, 'UPDATE ORDERS SET AMOUNT = 9 WHERE ID = 1')
    expect(statement.getNumUpdatedRows()).toBe(1)
  })

  it('passes a SQL error through with its Snowflake code and SQL state', async () => {
    await expect(runSdk(conn, 'SELECT * FROM NO_SUCH_TABLE')).rejects.toMatchObject({ code: '002003', sqlState: '42S02' })
  })

  it('refuses several statements unless MULTI_STATEMENT_COUNT allows them', async () => {
    await expect(runSdk(conn, 'SELECT 1 AS A; SELECT 2 AS B')).rejects.toMatchObject({ code: '000008' })
  })

  it('runs a multi-statement request and serves each result by its own query id', async () => {
    // snowflake-sdk calls `complete` once per statement, fetching each child via /queries/{id}/result.
    const results: unknown[] = []
    const ids: string[] = []
    await new Promise<void>((resolve, reject) => {
      conn.execute({
        sqlText: 'SELECT 1 AS A; SELECT EMAIL FROM CUSTOMERS WHERE ID = 3',
        parameters: { MULTI_STATEMENT_COUNT: 2 },
        complete: (err, statement, rows) => {
          if (err !== undefined && err !== null) { reject(err); return }
          results.push(rows)
          ids.push(statement.getQueryId())
          // hasNext/NextResult exist at run time on multi-statement results; the typings omit them.
          const multi = statement as unknown as { hasNext: () => boolean, NextResult: () => void }
          if (multi.hasNext()) multi.NextResult()
          else resolve()
        }
      })
    })
    expect(results).toEqual([[{ A: 1 }], [{ EMAIL: 'grace@example.com' }]])
    expect(new Set(ids).size).toBe(2)
  })

  it('runs a query asynchronously and fetches its result by query id', async () => {
    const { statement } = await runSdk(conn, 'SELECT COUNT(*) AS N FROM CUSTOMERS', { asyncExec: true })
    const queryId = statement.getQueryId()
    const fetched = await conn.getResultsFromQueryId({ queryId })
    expect(await streamAll(fetched)).toEqual([{ N: 3 }])
  })

  it('renders a policy denial in the connector error shape, naming the rule', async () => {
    const err = await runSdk(conn, 'DELETE FROM CUSTOMERS WHERE ID = 1').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: '003001', sqlState: '42501' })
    expect((err as Error).message).toBe('denied by rule agents-read-only: DELETE is not allowed for role agent on connection fake')
    const { rows } = await runSdk(conn, 'SELECT COUNT(*) AS N FROM CUSTOMERS')
    expect(rows).toEqual([{ N: 3 }])
  })

  it('refuses PUT/GET file transfers with a clear error', async () => {
    const err = await runSdk(conn, "PUT file:///tmp/data.csv @~/staged").catch((e: unknown) => e)
    expect(String((err as Error).message)).toMatch(/PUT and GET file transfers are not available through Sluice/)
  })

  it('renews an expired Sluice session token with the master token, unnoticed by the script', async () => {
    await gw.store.query("update connector_sessions set token_expires_at = now() - interval '1 second'")
    const { rows } = await runSdk(conn, 'SELECT 1 AS ONE')
    expect(rows).toEqual([{ ONE: 1 }])
  })

  it('refuses a login with a bad token (390303) and records it', async () => {
    const err = await connectSdk({ accessUrl: gw.url, token: 'not-a-jwt' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: '390303' })
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    expect(events.some((e) => e.outcome === 'unauthenticated' && e.frontEnd === 'snowflake-connector')).toBe(true)
  })

  it('never confirms a query id to another principal', async () => {
    const { statement } = await runSdk(conn, 'SELECT 42 AS X')
    const queryId = statement.getQueryId()
    const bob = await connectSdk({ accessUrl: gw.url, token: await gw.token('bob'), database: SEED_DATABASE, schema: SEED_SCHEMA })
    try {
      await expect(bob.getResultsFromQueryId({ queryId })).rejects.toMatchObject({ code: '000709' })
      await expect(bob.getQueryStatus(queryId)).rejects.toMatchObject({ code: '000709' })
      // The same answer as for an id that never existed.
      await expect(bob.getQueryStatus('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: '000709' })
    } finally {
      await destroySdk(bob)
    }
  })

  it('selects a connection by the account name in the login request', async () => {
    const other = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), account: 'OTHER' })
    try {
      const { rows } = await runSdk(other, 'SELECT COUNT(*) AS N FROM CUSTOMERS')
      expect(rows).toEqual([{ N: 3 }])
      const events = await gw.app.recorder.listEvents({ limit: 1000 })
      expect(events.some((e) => e.connection === 'other' && e.sqlText === 'SELECT COUNT(*) AS N FROM CUSTOMERS')).toBe(true)
    } finally {
      await destroySdk(other)
    }
  })

  it('passes allowed statement parameters to fakesnow and refuses others before they leave Sluice', async () => {
    const { rows } = await runSdk(conn, 'SELECT COUNT(*) AS N FROM CUSTOMERS', { parameters: { TIMEZONE: 'UTC', QUERY_TAG: 'sdk-test' } })
    expect(rows).toEqual([{ N: 3 }])
    const err = await runSdk(conn, 'SELECT COUNT(*) AS N FROM CUSTOMERS', { parameters: { USE_CACHED_RESULT: false } }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: '000002', sqlState: '0A000' })
    expect((err as Error).message).toMatch(/^statement parameter USE_CACHED_RESULT is not accepted through Sluice; allowed: MULTI_STATEMENT_COUNT, TIMEZONE, QUERY_TAG, /)
  })

  it('fails a login closed when the warehouse refuses USE SECONDARY ROLES NONE (fakesnow), naming the connection', async () => {
    const err = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), account: 'strict' }).catch((e: unknown) => e)
    expect((err as Error).message).toMatch(/^connection strict: USE SECONDARY ROLES NONE failed on a new upstream session, so the session was not used/)
  })

  it('refuses a login asking for a role the connection does not allow', async () => {
    const err = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice'), role: 'ACCOUNTADMIN' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: '390189' })
    expect((err as Error).message).toBe('role ACCOUNTADMIN is not allowed on connection fake; allowed: only the default')
  })

  it('records every round trip as a session event with the principal', async () => {
    const events = await gw.app.recorder.listEvents({ limit: 1000 })
    const mine = events.filter((e) => e.frontEnd === 'snowflake-connector' && e.principalSubject === 'alice')
    expect(mine.some((e) => e.route === '/session/v1/login-request')).toBe(true)
    expect(mine.some((e) => e.sqlText === 'SELECT EMAIL FROM CUSTOMERS WHERE ID = ?' && e.outcome === 'ok')).toBe(true)
    expect(mine.some((e) => e.outcome === 'denied' && e.ruleId === 'agents-read-only')).toBe(true)
    expect(mine.some((e) => e.route === '/sluice/snowflake/chunks/:id/:n')).toBe(true)
    // The masked rows as released are captured with the event that ran the statement, and an
    // async result's capture with the fetch that served it.
    expect(mine.find((e) => e.sqlText === 'SELECT EMAIL FROM CUSTOMERS WHERE ID = ?' && e.route === '/queries/v1/query-request' && e.outcome !== 'admitted')?.resultCapture).not.toBeNull()
    expect(mine.some((e) => e.route === '/queries/:id/result' && e.sqlText === 'SELECT COUNT(*) AS N FROM CUSTOMERS' && e.resultCapture !== null)).toBe(true)
  })

  it('answers an unknown session token with 390104 in the connector shape', async () => {
    const res = await request(`${gw.url}/queries/v1/query-request`, {
      method: 'POST',
      headers: { authorization: 'Snowflake Token="forged"', 'content-type': 'application/json' },
      body: JSON.stringify({ sqlText: 'SELECT 1' })
    })
    expect(await res.body.json()).toMatchObject({ success: false, code: '390104' })
  })
})
