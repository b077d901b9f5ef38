// Every Snowflake result path must hand rows to the client only through the pipeline's release
// (which masks): inline rows from an Arrow upstream, inline JSON rowsets, upstream chunks,
// Sluice-served chunks, async results, multi-statement children, the Python client, and SQL API
// partitions (sync and async). Seeded canaries (emails, SSNs, phones, card numbers) sit in the
// columns a masking rule names; no response may contain one.
//
// The same checks run twice:
// - with a test-local stand-in masking stage, proving each path goes through release;
// - with the gateway's configured stages (real analyzer, policy and mask stage) and a masking
//   policy: what a deployment does. Any canary that leaks fails them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getEvent, searchEvents } from '../../src/recording/search.js'
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { connectSdk, destroySdk, runSdk, streamAll } from '../support/snowflake-node-client.js'
import { maskColumns, startSnowflakeGateway, type SnowflakeGateway, type SnowflakeGatewayOptions } from '../support/snowflake-gateway.js'
import { runPython } from '../support/snowflake-python.js'
import { canaryLeak } from '../support/canary.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const CANARIES = CUSTOMERS.flatMap((c) => [c.email, c.ssn, c.phone, c.card])
const PII_SELECT = `SELECT ID, EMAIL, SSN, PHONE, CARD_NUMBER FROM ${SEED_DATABASE}.${SEED_SCHEMA}.CUSTOMERS ORDER BY ID`
const ROWTYPE = ['ID', 'EMAIL', 'SSN', 'PHONE', 'CARD_NUMBER'].map((name) => ({ name, type: name === 'ID' ? 'fixed' : 'text', database: SEED_DATABASE, schema: SEED_SCHEMA, table: 'CUSTOMERS' }))
const ROWS = CUSTOMERS.map((c) => [String(c.id), c.email, c.ssn, c.phone, c.card])

const POLICY = `version: 1
rules:
  - id: agents-read
    effect: allow
    match:
      roles: [agent]
      kinds: [select]
masking:
  - id: mask-pii
    columns: ['*.*.customers.email', '*.*.customers.ssn', '*.*.customers.phone', '*.*.customers.card_number']
    function: redact
    exemptRoles: [data-steward]
`

/** Fails when any canary shows up in `text` in any form (case, reversed, hex, base64). */
function expectNoCanary (text: string, what = 'the response'): void {
  const leak = canaryLeak(text, CANARIES)
  expect(leak, `${what} leaked ${leak ?? ''}: ${text.slice(0, 400)}`).toBeUndefined()
}

interface Env { fakesnow: Fakesnow, stub: UpstreamStub, gw: SnowflakeGateway, dir: string }

async function setUp (stages: SnowflakeGatewayOptions['stages']): Promise<Env> {
  const fakesnow = await startFakesnow()
  const stub = await startUpstreamStub()
  // Stands in for Snowflake's inline JSON rowset plus result chunks in cloud storage (qrmk).
  stub.statements.set(PII_SELECT, {
    rowtype: ROWTYPE,
    rowset: ROWS.slice(0, 1),
    chunks: [{ body: ROWS.slice(1).map((r) => JSON.stringify(r)).join(','), rowCount: 2 }]
  })
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sf-policies-'))
  await writeFile(join(dir, 'masking.yaml'), POLICY)
  const gw = await startSnowflakeGateway({
    connections: {
      fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA },
      chunky: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, partitionRows: 1 },
      stubbed: { kind: 'snowflake', url: stub.url, account: 'acme', user: 'svc', password: 'pw' }
    },
    stages,
    policiesDirectory: dir
  })
  return { fakesnow, stub, gw, dir }
}

async function tearDown (env: Env | undefined): Promise<void> {
  await env?.gw.close()
  await env?.stub.close()
  await env?.fakesnow.close()
  if (env !== undefined) await rm(env.dir, { recursive: true, force: true })
}

function resultPathChecks (env: () => Env): void {
  const token = async (): Promise<string> => await env().gw.token('alice')

  it('connector: inline rows from an Arrow upstream (snowflake-sdk)', async () => {
    const conn = await connectSdk({ accessUrl: env().gw.url, token: await token() })
    try {
      const { rows } = await runSdk(conn, PII_SELECT)
      expect(rows).toHaveLength(3)
      expectNoCanary(JSON.stringify(rows))
    } finally { await destroySdk(conn) }
  })

  it('connector: Sluice-served result chunks', async () => {
    const conn = await connectSdk({ accessUrl: env().gw.url, token: await token(), account: 'chunky' })
    try {
      const { rows } = await runSdk(conn, PII_SELECT)
      expect(rows).toHaveLength(3)
      expectNoCanary(JSON.stringify(rows))
    } finally { await destroySdk(conn) }
  })

  it('connector: upstream JSON rowset and upstream cloud-storage chunks', async () => {
    const conn = await connectSdk({ accessUrl: env().gw.url, token: await token(), account: 'stubbed' })
    try {
      const { rows } = await runSdk(conn, PII_SELECT)
      expect(rows).toHaveLength(3)
      expectNoCanary(JSON.stringify(rows))
    } finally { await destroySdk(conn) }
  })

  it('connector: async results and multi-statement children', async () => {
    const conn = await connectSdk({ accessUrl: env().gw.url, token: await token() })
    try {
      const { statement } = await runSdk(conn, PII_SELECT, { asyncExec: true })
      const fetched = await conn.getResultsFromQueryId({ queryId: statement.getQueryId() })
      const asyncRows = await streamAll(fetched)
      expect(asyncRows).toHaveLength(3)
      expectNoCanary(JSON.stringify(asyncRows))
      const { rows } = await runSdk(conn, `${PII_SELECT}; SELECT 1`, { parameters: { MULTI_STATEMENT_COUNT: 2 } })
      expect(rows).toHaveLength(3)
      expectNoCanary(JSON.stringify(rows))
    } finally { await destroySdk(conn) }
  })

  it('connector: the Python client', async () => {
    const out = await runPython('test/snowflake/python/masking_client.py', { port: env().gw.port, token: await token(), sql: PII_SELECT })
    expect((out.rows as unknown[]).length).toBe(3)
    expectNoCanary(JSON.stringify(out))
  })

  it('SQL API: every partition, sync and async', async () => {
    const headers = { authorization: `Bearer ${await token()}`, 'content-type': 'application/json', 'user-agent': 'masking-test/1.0' }
    const submit = await request(`${env().gw.url}/snowflake/chunky/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: PII_SELECT }) })
    const first = await submit.body.text()
    expectNoCanary(first)
    const handle = String((JSON.parse(first) as { statementHandle: string }).statementHandle)
    for (let partition = 1; partition < 3; partition++) {
      const res = await request(`${env().gw.url}/api/v2/statements/${handle}?partition=${partition}`, { headers })
      expect(res.statusCode).toBe(200)
      expectNoCanary(await res.body.text())
    }
    const queued = await request(`${env().gw.url}/api/v2/statements?async=true`, { method: 'POST', headers, body: JSON.stringify({ statement: PII_SELECT }) })
    const url = String((await queued.body.json() as { statementStatusUrl: string }).statementStatusUrl)
    let status = 202
    let text = ''
    while (status === 202) {
      const res = await request(`${env().gw.url}${url}`, { headers })
      status = res.statusCode
      text = await res.body.text()
    }
    expect(status).toBe(200)
    expectNoCanary(text)
  })
}

describe('every Snowflake result path passes through the pipeline mask stage (stand-in stage)', () => {
  let env: Env | undefined
  beforeAll(async () => { env = await setUp({ mask: maskColumns(['EMAIL', 'SSN', 'PHONE', 'CARD_NUMBER']) }) }, 600_000)
  afterAll(async () => { await tearDown(env) })
  resultPathChecks(() => env as Env)
})

describe('masking policy keeps canaries out of every Snowflake result path (configured stages)', () => {
  let env: Env | undefined
  beforeAll(async () => { env = await setUp('configured') }, 600_000)
  afterAll(async () => { await tearDown(env) })
  resultPathChecks(() => env as Env)

  it('shows an exempt role the values in clear', async () => {
    const conn = await connectSdk({ accessUrl: (env as Env).gw.url, token: await (env as Env).gw.token('steward', ['stewards']) })
    try {
      const { rows } = await runSdk(conn, PII_SELECT)
      expect(rows.map((r) => r.EMAIL)).toEqual(CUSTOMERS.map((c) => c.email))
      expect(rows.map((r) => r.SSN)).toEqual(CUSTOMERS.map((c) => c.ssn))
    } finally { await destroySdk(conn) }
  })
  errorChecks(() => env as Env)
})

/** The error paths check the same forms as the result paths. */
function expectNoCanaryForms (what: string, text: string): void {
  expectNoCanary(text, what)
}

// fakesnow (DuckDB) quotes the value that broke a cast, as Snowflake does ("Numeric value '…'
// is not recognized"): CAST(EMAIL AS INT) fails with code 100035 (22007) and
// "Could not convert string 'ada@example.com' to INT64". ERROR() is not a Snowflake function
// (fakesnow answers it with an unhandled-exception 500 quoting only the SQL text).
function errorChecks (env: () => Env): void {
  const CAST = 'SELECT CAST(EMAIL AS INT) FROM CUSTOMERS'
  const WITHHELD = /^statement failed on connection fake: the warehouse reported error 100035 \(22007\); its message was withheld because the statement reads sluice_test\.public\.customers, which has masking rule mask-pii/

  async function recorded (requestId: string): Promise<{ reason: string, text: string }> {
    // The completion (or the refusal): a statement that ran has its admitted event too.
    const items = (await searchEvents(env().gw.store, { requestId })).items.filter((e) => e.phase !== 'admitted')
    expect(items).toHaveLength(1)
    const event = await getEvent(env().gw.store, items[0]!.id)
    return { reason: String(event?.reason), text: JSON.stringify(event) }
  }

  async function call (method: string, path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number, text: string, requestId: string }> {
    const res = await request(`${env().gw.url}${path}`, { method: method as 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: res.statusCode, text: await res.body.text(), requestId: String(res.headers['x-request-id']) }
  }

  it('the upstream really quotes the value (so the checks below prove something)', async () => {
    await expect(env().fakesnow.sql(CAST)).rejects.toThrow(/ada@example\.com/)
  })

  it('connector: a failed cast on a masked column keeps code and SQL state, withholds the text, sync, async and in monitoring', async () => {
    const login = await call('POST', '/session/v1/login-request', { data: { ACCOUNT_NAME: 'fake', AUTHENTICATOR: 'OAUTH', TOKEN: await env().gw.token('alice') } }, {})
    const auth = { authorization: `Snowflake Token="${String(JSON.parse(login.text).data.token)}"` }
    const sync = await call('POST', '/queries/v1/query-request', { sqlText: CAST }, auth)
    expectNoCanaryForms('connector error', sync.text)
    const body = JSON.parse(sync.text)
    expect(body).toMatchObject({ success: false, code: '100035', data: { errorCode: '100035', sqlState: '22007' } })
    expect(body.message).toMatch(WITHHELD)
    const event = await recorded(sync.requestId)
    expectNoCanaryForms('connector event', event.text)
    expect(event.reason, 'the event records the text the client got').toBe(body.message)

    const started = JSON.parse((await call('POST', '/queries/v1/query-request', { sqlText: CAST, asyncExec: true }, auth)).text)
    let polled: { status: number, text: string, requestId: string }
    do {
      polled = await call('GET', `/queries/${String(started.data.queryId)}/result`, undefined, auth)
    } while (JSON.parse(polled.text).code === '333333')
    expectNoCanaryForms('connector async result', polled.text)
    expect(JSON.parse(polled.text).message).toMatch(WITHHELD)
    expectNoCanaryForms('connector async event', (await recorded(polled.requestId)).text)
    const monitored = await call('GET', `/monitoring/queries/${String(started.data.queryId)}`, undefined, auth)
    expectNoCanaryForms('monitoring', monitored.text)
    expect(JSON.parse(monitored.text).data.queries[0]).toMatchObject({ status: 'FAILED_WITH_ERROR', errorCode: '100035' })
  })

  it('connector: snowflake-sdk sees the code, not the value', async () => {
    const conn = await connectSdk({ accessUrl: env().gw.url, token: await env().gw.token('alice') })
    try {
      const err = await runSdk(conn, CAST).then(() => undefined, (e: unknown) => e as { message: string, code: unknown, sqlState?: string })
      expect(err?.message).toMatch(/withheld/)
      expect(String(err?.code)).toBe('100035')
      expectNoCanaryForms('snowflake-sdk error', JSON.stringify({ message: err?.message, code: err?.code, sqlState: err?.sqlState }))
    } finally { await destroySdk(conn) }
  })

  it('SQL API: 422 QueryFailureStatus keeps code and SQL state, withholds the text, in the event too', async () => {
    const headers = { authorization: `Bearer ${await env().gw.token('alice')}`, 'user-agent': 'masking-test/1.0' }
    const res = await call('POST', '/api/v2/statements', { statement: CAST }, headers)
    expect(res.status).toBe(422)
    expectNoCanaryForms('SQL API error', res.text)
    const body = JSON.parse(res.text)
    expect(body).toMatchObject({ code: '100035', sqlState: '22007' })
    expect(body.message).toMatch(WITHHELD)
    const event = await recorded(res.requestId)
    expectNoCanaryForms('SQL API event', event.text)
    expect(event.reason).toBe(body.message)
    // A failing child of a multi-statement request is released under the same admission.
    const multi = await call('POST', '/api/v2/statements', { statement: `SELECT 1; ${CAST}`, parameters: { multi_statement_count: 2 } }, headers)
    expect(multi.status).toBe(422)
    expectNoCanaryForms('SQL API multi-statement error', multi.text)
    expect(JSON.parse(multi.text)).toMatchObject({ code: '100035', sqlState: '22007', message: expect.stringMatching(WITHHELD) })
  })

  it('withholds for any column of a table with masking rules; keeps other tables\' text, detector shapes redacted', async () => {
    const headers = { authorization: `Bearer ${await env().gw.token('alice')}`, 'user-agent': 'masking-test/1.0' }
    // NAME is not masked, but a value of a masked column could be quoted by the same statement.
    const name = JSON.parse((await call('POST', '/api/v2/statements', { statement: 'SELECT CAST(NAME AS INT) FROM CUSTOMERS' }, headers)).text)
    expect(name.message).toMatch(WITHHELD)
    const orders = JSON.parse((await call('POST', '/api/v2/statements', { statement: "SELECT CAST('not a number' AS INT) FROM ORDERS" }, headers)).text)
    expect(orders).toMatchObject({ code: '100035', sqlState: '22007' })
    expect(orders.message).toContain("Could not convert string 'not a number'")
    const literal = JSON.parse((await call('POST', '/api/v2/statements', { statement: "SELECT CAST('bob@example.com' AS INT)" }, headers)).text)
    expect(literal.message).toContain("'[redacted:email]'")
    expect(literal.message).not.toContain('bob@example.com')
  })
}
