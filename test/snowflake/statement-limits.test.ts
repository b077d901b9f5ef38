// No statement can stall the gateway, through snowflake-sdk and SQL API v2 over plain HTTP against
// fakesnow under the shipped default policy: a statement over policies.maxStatementBytes is
// refused unparsed, nesting past the parser's limit as too complex (Snowflake 001003 with SQL
// states 54000 / 54001), recorded, never sent upstream; a statement over the parser's deadline
// gets its thread replaced and the next statement runs; /healthz answers while one is parsed.
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spySnowflakeStatements } from '../support/upstream-spy.js'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'

const SHIPPED = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))
const MiB = 1024 * 1024

let fakesnow: Fakesnow
let gw: SnowflakeGateway
let dir: string
let token: string
let sdk: SdkConnection

function inList (bytes: number, head = 'SELECT ID FROM CUSTOMERS WHERE ID IN ('): string {
  const values: string[] = []
  let size = head.length + 1
  for (let k = 0; size < bytes; k++) { values.push(String(k)); size += String(k).length + 2 }
  return `${head}${values.join(', ')})`
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-sf-limits-'))
  await copyFile(SHIPPED, join(dir, 'default.yaml'))
  fakesnow = await startFakesnow()
  gw = await startSnowflakeGateway({
    connections: { 'snowflake-prod': { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE, schema: SEED_SCHEMA } },
    stages: 'configured',
    policiesDirectory: dir,
    // One thread, so the budget test below is sure to hit the thread it then reuses.
    policies: { parser: { workers: 1, timeoutMs: 5000 } }
  })
  token = await gw.token('agent-limits')
  sdk = await connectSdk({ accessUrl: gw.url, token, database: SEED_DATABASE, schema: SEED_SCHEMA })
}, 600_000)

afterAll(async () => {
  if (sdk !== undefined) await destroySdk(sdk)
  await gw?.close()
  await fakesnow?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

let upstream: string[] = []
beforeEach(() => { upstream = spySnowflakeStatements(200) })

async function eventsFor (sql: string) {
  return await gw.store.query<{ outcome: string, error_code: string | null }>('select outcome, error_code from session_events where sql_text = $1', [sql])
}

type SdkError = Error & { code?: string, sqlState?: string }

describe('statement limits through snowflake-sdk', () => {
  it('refuses a statement over 1 MiB as too large, recorded, never run', async () => {
    const sql = inList(MiB + 16)
    const err = await runSdk(sdk, sql).then(() => undefined, (e: SdkError) => e)
    expect(err).toMatchObject({ code: '001003', sqlState: '54000' })
    expect(err?.message).toMatch(/the statement is \d+ bytes, more than the 1048576 bytes Sluice accepts \(policies\.maxStatementBytes\)/)
    expect(upstream).toEqual([])
    expect((await eventsFor(sql)).map((e) => e.error_code)).toContain('SLUICE_STATEMENT_TOO_LARGE')
  })

  it('refuses nesting deeper than the parser allows as too complex, recorded, never run', async () => {
    const sql = `SELECT ID FROM CUSTOMERS WHERE ID = ${'('.repeat(300)}1${')'.repeat(300)}`
    const err = await runSdk(sdk, sql).then(() => undefined, (e: SdkError) => e)
    expect(err).toMatchObject({ code: '001003', sqlState: '54001' })
    expect(err?.message).toContain('too complex for Sluice to analyse (nesting deeper than the parser allows)')
    expect(upstream).toEqual([])
    expect((await eventsFor(sql)).map((e) => e.error_code)).toContain('SLUICE_STATEMENT_TOO_COMPLEX')
  })

  it('keeps answering /healthz while a large statement is parsed, and runs the next statement', async () => {
    // A DELETE the shipped policy does not let an agent run: decided right after the analysis.
    const sql = inList(MiB - 1024, 'DELETE FROM CUSTOMERS WHERE ID IN (')
    let settled = false
    const outcome = runSdk(sdk, sql).then(() => undefined, (e: SdkError) => e).finally(() => { settled = true })
    let answeredMeanwhile = 0
    while (!settled) {
      const res = await request(`${gw.url}/healthz`)
      await res.body.text()
      if (res.statusCode === 200 && !settled) answeredMeanwhile++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const err = await outcome
    expect(err?.code).not.toBe('000603') // an internal error or a store outage would be 000603
    // Parsed on the event loop, the loop above would get one answer in, after the parse.
    expect(answeredMeanwhile).toBeGreaterThanOrEqual(5)
    expect(upstream).toEqual([])
    const { rows } = await runSdk(sdk, 'SELECT ID FROM CUSTOMERS WHERE ID = 1')
    expect(rows).toEqual([{ ID: 1 }])
  })
})

describe('statement limits through SQL API v2', () => {
  it('refuses a statement over 1 MiB as too large with a 400 and the code, recorded, never run', async () => {
    const statement = inList(MiB + 16)
    const res = await request(`${gw.url}/api/v2/statements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ statement, database: SEED_DATABASE, schema: SEED_SCHEMA })
    })
    const body = await res.body.json() as { code?: string, message?: string }
    expect(res.statusCode).toBe(400)
    expect(body.code).toBe('001003')
    expect(body.message).toContain('policies.maxStatementBytes')
    expect(upstream).toEqual([])
    expect((await eventsFor(statement)).map((e) => e.error_code)).toContain('SLUICE_STATEMENT_TOO_LARGE')
  })
})
