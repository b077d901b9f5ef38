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
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { connectSdk, destroySdk, runSdk, streamAll } from '../support/snowflake-node-client.js'
import { maskColumns, startSnowflakeGateway, type SnowflakeGateway, type SnowflakeGatewayOptions } from '../support/snowflake-gateway.js'
import { runPython } from '../support/snowflake-python.js'
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
`

function expectNoCanary (text: string): void {
  for (const canary of CANARIES) expect(text).not.toContain(canary)
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
      fake: { kind: 'snowflake', url: fakesnow.url, default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA },
      chunky: { kind: 'snowflake', url: fakesnow.url, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, partitionRows: 1 },
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
})
