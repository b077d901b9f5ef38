// What an agent is told when Snowflake work is refused, through snowflake-sdk, the Python
// connector and SQL API v2 over plain HTTP against fakesnow, under the shipped default policy plus
// a rule guarding one schema by its tables. A typo is Snowflake's own syntax error (001003 /
// 42000) with the parser's position, never run and recorded as unparsed; valid SQL the parser
// lacks is the policy's; refusal texts name what was refused and what to do instead.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spySnowflakeStatements } from '../support/upstream-spy.js'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { pythonAvailable, runPython } from '../support/snowflake-python.js'

const SHIPPED = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))

// Sorted before default.yaml, so its rule comes first; it is about tables only.
const GUARD = `
version: 1
rules:
  - id: guard-hr
    effect: deny
    match: { tables: ['sluice_test.hr.**'] }
    message: HR tables are off limits.
`

/** Malformed statements an agent sends: misspelt keywords, stray and missing tokens. */
const BASES = [
  'SELECT ID, NAME FROM CUSTOMERS WHERE ID = 1',
  'SELECT COUNT(*) AS N FROM CUSTOMERS GROUP BY NAME',
  'UPDATE CUSTOMERS SET NAME = \'x\' WHERE ID = 1'
]
const TYPOS = [
  ...BASES.flatMap((sql) => [
    sql.replace(/^(SELECT|UPDATE)/, (k) => k.slice(0, -1)),
    sql.replace(/ (FROM|SET) /, (k) => k === ' FROM ' ? ' FORM ' : ' SETT '),
    `${sql} AND (`,
    `${sql} AND NAME = 'unterminated`,
    `${sql})`
  ]),
  'SELECT ID\nFROM CUSTOMERS\nWHERE'
]

let fakesnow: Fakesnow
let gw: SnowflakeGateway
let dir: string
let token: string
let sdk: SdkConnection

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-sf-refusals-'))
  await copyFile(SHIPPED, join(dir, 'default.yaml'))
  await writeFile(join(dir, '00-guard.yaml'), GUARD)
  fakesnow = await startFakesnow()
  gw = await startSnowflakeGateway({
    // No schema on the connection: a client that names none leaves it unknown to Sluice.
    connections: { 'snowflake-prod': { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE } },
    stages: 'configured',
    policiesDirectory: dir
  })
  token = await gw.token('agent-refusals')
  sdk = await connectSdk({ accessUrl: gw.url, token, database: SEED_DATABASE, schema: SEED_SCHEMA })
}, 600_000)

afterAll(async () => {
  if (sdk !== undefined) await destroySdk(sdk)
  await gw?.close()
  await fakesnow?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

// Every statement Sluice sends upstream, to prove that refused ones never got there.
let upstream: string[] = []
beforeEach(() => { upstream = spySnowflakeStatements() })

async function sqlApi (statement: string, parameters: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${gw.url}/api/v2/statements`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ statement, database: SEED_DATABASE, schema: SEED_SCHEMA, parameters })
  })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

async function eventsFor (sql: string) {
  return await gw.store.query<{ rule_id: string | null, decision: string | null, outcome: string, error_code: string | null, analysis: { statements: Array<{ unparsed?: { line: number, column: number } }> } | null }>(
    'select rule_id, decision, outcome, error_code, analysis from session_events where sql_text = $1', [sql])
}

const SYNTAX = /^Sluice could not parse this statement; it was not run: syntax error at line \d+, column \d+ \(.+\)\. Correct the statement and send it again/

describe('a statement the parser cannot read', () => {
  it('(the upstream spy sees what does run)', async () => {
    await runSdk(sdk, 'SELECT ID FROM CUSTOMERS WHERE ID = 1')
    expect(upstream).toContain('SELECT ID FROM CUSTOMERS WHERE ID = 1')
  })

  it('is Snowflake\'s syntax error through snowflake-sdk, never run, recorded as unparsed', async () => {
    for (const sql of TYPOS) {
      const err = await runSdk(sdk, sql).then(() => undefined, (e: Error & { code?: string, sqlState?: string }) => e)
      expect(err, sql).toBeDefined()
      expect(err?.code, sql).toBe('001003')
      expect(err?.sqlState, sql).toBe('42000')
      expect(err?.message, sql).toMatch(SYNTAX)
      expect(err?.message, sql).not.toMatch(/denied by rule|guard-hr|deny-unknown/)
      const [event] = await eventsFor(sql)
      expect(event, sql).toMatchObject({ rule_id: 'unparsed', decision: 'deny', outcome: 'denied', error_code: 'SLUICE_SQL_SYNTAX' })
      expect(event?.analysis?.statements[0]?.unparsed, sql).toEqual({ message: expect.any(String), line: expect.any(Number), column: expect.any(Number) })
    }
    expect(upstream).toEqual([])
  })

  it('points at where the parser stopped, on later lines too', async () => {
    const err = await runSdk(sdk, 'SELECT ID\nFROM CUSTOMERS\nWHERE').then(() => undefined, (e: Error) => e)
    expect(err?.message).toContain('syntax error at line 3, column 6 (Expected: an expression, found: EOF)')
    const second = await runSdk(sdk, 'SELECT 1; SELEC 2', { parameters: { MULTI_STATEMENT_COUNT: 2 } }).then(() => undefined, (e: Error) => e)
    expect(second?.message).toContain('syntax error at line 1, column 11 (Expected: an SQL statement, found: SELEC)')
    expect(upstream).toEqual([])
  })

  it('is the SQL API\'s 422 QueryFailureStatus with 001003 / 42000', async () => {
    for (const sql of TYPOS.slice(0, 5)) {
      const res = await sqlApi(sql)
      expect(res.status, sql).toBe(422)
      expect(res.body, sql).toMatchObject({ code: '001003', sqlState: '42000', statementHandle: expect.any(String) })
      expect(String(res.body.message), sql).toMatch(SYNTAX)
      expect((await eventsFor(sql)).some((e) => e.rule_id === 'unparsed' && e.error_code === 'SLUICE_SQL_SYNTAX'), sql).toBe(true)
    }
    expect(upstream).toEqual([])
  })

  it.skipIf(!pythonAvailable())('is a ProgrammingError 1003 / 42000 in the Python connector', async () => {
    const out = await runPython('test/snowflake/python/refusals_client.py', { port: gw.port, token, database: SEED_DATABASE, schema: SEED_SCHEMA, statements: TYPOS.slice(0, 5) }) as unknown as Array<Record<string, unknown>>
    expect(out).toHaveLength(5)
    for (const [i, r] of out.entries()) {
      expect(r, TYPOS[i]).toMatchObject({ type: 'ProgrammingError', errno: 1003, sqlstate: '42000' })
      // The connector puts the code in front of the server's message: "001003 (42000): …".
      expect(String(r.msg).replace(/^001003 \(42000\): /, ''), TYPOS[i]).toMatch(SYNTAX)
    }
    expect(upstream).toEqual([])
  }, 120_000)
})

describe('valid SQL the parser lacks, and unknown statements', () => {
  it('is decided by the rule about unknown statements, not by a rule about tables, naming what Sluice cannot read', async () => {
    for (const [sql, construct] of [['UNDROP TABLE CUSTOMERS', 'UNDROP'], ['ALTER WAREHOUSE WH SUSPEND', 'ALTER WAREHOUSE'], ['CREATE OR REPLACE TASK T WAREHOUSE = WH AS SELECT 1', 'CREATE TASK']]) {
      const err = await runSdk(sdk, sql as string).then(() => undefined, (e: Error & { code?: string, sqlState?: string }) => e)
      expect(err, sql).toMatchObject({ code: '003001', sqlState: '42501' })
      expect(err?.message, sql).toMatch(new RegExp(`^denied by rule deny-unknown: a statement Sluice could not analyse \\(Sluice's SQL parser does not read ${construct as string}\\)`))
      expect((await eventsFor(sql as string))[0]).toMatchObject({ rule_id: 'deny-unknown' })
    }
    expect(upstream).toEqual([])
  })
})

describe('temporary tables', () => {
  it('are named as such in the DDL denial, with what to do instead', async () => {
    const err = await runSdk(sdk, 'CREATE TEMPORARY TABLE SCRATCH (A INT)').then(() => undefined, (e: Error) => e)
    expect(err?.message).toMatch(/^denied by rule deny-ddl-dcl: DDL \(CREATE TEMPORARY TABLE\) on sluice_test\.public\.scratch is not allowed for role agent/)
    expect(err?.message).toContain('use a CTE (WITH …) or a subquery instead of a temporary table')
    expect(upstream).toEqual([])
  })

  it('say so when the session\'s schema is unknown, instead of naming database.table as schema.table', async () => {
    const noSchema = await connectSdk({ accessUrl: gw.url, token, database: SEED_DATABASE })
    try {
      const err = await runSdk(noSchema, 'CREATE TEMPORARY TABLE SCRATCH (A INT)').then(() => undefined, (e: Error) => e)
      expect(err?.message).toContain('DDL (CREATE TEMPORARY TABLE) on sluice_test.?.scratch (not fully qualified: the session\'s current database or schema is not known to Sluice; name it as database.schema.table)')
    } finally {
      await destroySdk(noSchema)
    }
    expect(upstream).toEqual([])
  })

  it('are refused by SQL API v2 with what to do instead', async () => {
    const res = await sqlApi('CREATE TEMPORARY TABLE SCRATCH (A INT)')
    expect(res.status).toBe(422)
    expect(res.body).toMatchObject({ code: '000002', sqlState: '0A000' })
    expect(String(res.body.message)).toBe('not supported through this endpoint: CREATE TEMPORARY TABLE is not supported by SQL API v2: a temporary object lives as long as its session, and SQL API requests do not share one; ' +
      'use a CTE (WITH …) or a subquery in the same statement instead, or a connector (snowflake-sdk, the Python connector), whose session keeps it')
    const begin = await sqlApi('BEGIN')
    expect(String(begin.body.message)).toMatch(/BEGIN is not supported by SQL API v2: each request commits on its own; send each change as one statement, or use a connector/)
    expect(upstream).toEqual([])
  })
})
