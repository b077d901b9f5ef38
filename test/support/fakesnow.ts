// fakesnow (DuckDB behind Snowflake's connector protocol) on loopback, seeded with tables that
// hold the kinds of values masking must catch: emails, SSNs, phone and card numbers.
//
// Start it once per test file (`beforeAll`): it takes a second or two to boot. The binary is
// `.venv/fakesnow/bin/fakesnow` (created by setup-python.sh: fakesnow's pins cannot share a
// venv with the Python client and bqemulator), else `.venv/bin/fakesnow`, else
// SLUICE_FAKESNOW_BIN.
//
// fakesnow's parser refuses USE SECONDARY ROLES NONE (001003 syntax error), which Sluice runs on
// every new upstream session and fails closed without: connections to fakesnow opt out with
// `secondaryRoles: 'keep'`. The upstream stub (snowflake-upstream-stub.ts) proves the statement.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort, spawnChildServer } from './child-server.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export const SEED_DATABASE = 'SLUICE_TEST'
export const SEED_SCHEMA = 'PUBLIC'

/** Rows of SLUICE_TEST.PUBLIC.CUSTOMERS; the canaries a masking rule must keep from clients. */
export const CUSTOMERS = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', ssn: '123-45-6789', phone: '+1-202-555-0101', card: '4111111111111111', balance: '10.50' },
  { id: 2, name: 'Alan Turing', email: 'alan@example.com', ssn: '987-65-4321', phone: '+1-202-555-0102', card: '5500000000000004', balance: '20.25' },
  { id: 3, name: 'Grace Hopper', email: 'grace@example.com', ssn: '555-12-3456', phone: '+1-202-555-0103', card: '340000000000009', balance: '30.00' }
]

export function fakesnowBinary (): string {
  const candidates = [process.env.SLUICE_FAKESNOW_BIN, `${ROOT}.venv/fakesnow/bin/fakesnow`, `${ROOT}.venv/bin/fakesnow`]
  const binary = candidates.find((c) => c !== undefined && existsSync(c))
  if (binary === undefined) throw new Error('fakesnow is not installed: run test/support/setup-python.sh (npm test does)')
  return binary
}

export interface Fakesnow {
  url: string
  port: number
  /** Runs SQL on its own fakesnow session (database SLUICE_TEST); returns the response `data`. */
  sql: (sqlText: string) => Promise<Record<string, unknown>>
  close: () => Promise<void>
}

async function post (url: string, body: unknown, token?: string): Promise<{ status: number, json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
  if (token !== undefined) headers.authorization = `Snowflake Token="${token}"`
  const res = await request(url, { method: 'POST', headers, body: JSON.stringify(body) })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

async function login (url: string, database?: string): Promise<string> {
  const query = database === undefined ? '' : `?databaseName=${database}&schemaName=${SEED_SCHEMA}`
  const { json } = await post(`${url}/session/v1/login-request${query}`, {
    data: { ACCOUNT_NAME: 'fakesnow', LOGIN_NAME: 'seed', PASSWORD: 'seed', SESSION_PARAMETERS: {} }
  })
  const data = json.data as { token?: string } | undefined
  if (data?.token === undefined) throw new Error(`fakesnow login failed: ${JSON.stringify(json)}`)
  return data.token
}

export async function startFakesnow (options: { seed?: boolean } = {}): Promise<Fakesnow> {
  const port = await freePort()
  // fakesnow's server waits for SIGINT.
  const server = spawnChildServer('fakesnow', fakesnowBinary(), ['-s', '-p', String(port), '--host', '127.0.0.1'], { stopSignal: 'SIGINT' })
  const url = `http://127.0.0.1:${port}`
  const close = server.close

  try {
    await server.waitUntil(async () => { await login(url); return true }, 30_000)
    const seedToken = await login(url)
    let dbToken: string | undefined
    const sql = async (sqlText: string): Promise<Record<string, unknown>> => {
      dbToken ??= await login(url, SEED_DATABASE)
      const { json } = await post(`${url}/queries/v1/query-request`, { sqlText }, dbToken)
      if (json.success !== true) throw new Error(`fakesnow: ${sqlText}: ${String(json.message)}`)
      return json.data as Record<string, unknown>
    }
    if (options.seed !== false) await seed(url, seedToken, sql)
    return { url, port, sql, close }
  } catch (err) {
    await close()
    throw err
  }
}

async function seed (url: string, token: string, sql: Fakesnow['sql']): Promise<void> {
  const { json } = await post(`${url}/queries/v1/query-request`, { sqlText: `CREATE DATABASE IF NOT EXISTS ${SEED_DATABASE}` }, token)
  if (json.success !== true) throw new Error(`fakesnow seed: ${String(json.message)}`)
  await sql(`CREATE SCHEMA IF NOT EXISTS ${SEED_DATABASE}.${SEED_SCHEMA}`)
  await sql(`CREATE OR REPLACE TABLE ${SEED_DATABASE}.${SEED_SCHEMA}.CUSTOMERS (
    ID NUMBER(38,0), NAME VARCHAR, EMAIL VARCHAR, SSN VARCHAR, PHONE VARCHAR, CARD_NUMBER VARCHAR,
    BALANCE NUMBER(10,2), SIGNED_UP DATE, LAST_SEEN TIMESTAMP_NTZ, ACTIVE BOOLEAN)`)
  const values = CUSTOMERS.map(c =>
    `(${c.id}, '${c.name}', '${c.email}', '${c.ssn}', '${c.phone}', '${c.card}', ${c.balance}, '2024-01-0${c.id}', '2024-01-0${c.id} 10:00:00.123', ${c.id % 2 === 1 ? 'TRUE' : 'FALSE'})`)
  await sql(`INSERT INTO ${SEED_DATABASE}.${SEED_SCHEMA}.CUSTOMERS VALUES ${values.join(', ')}`)
  await sql(`CREATE OR REPLACE TABLE ${SEED_DATABASE}.${SEED_SCHEMA}.ORDERS (ID NUMBER(38,0), CUSTOMER_ID NUMBER(38,0), AMOUNT NUMBER(10,2))`)
  await sql(`INSERT INTO ${SEED_DATABASE}.${SEED_SCHEMA}.ORDERS VALUES (1, 1, 5.00), (2, 2, 7.50)`)
}
