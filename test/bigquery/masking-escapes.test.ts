// The masking escape hatches black-box testing found, closed at their mechanism and checked
// through @google-cloud/bigquery (and raw jobs.query) against bqemulator with the gateway's own
// stages: format-keeping masks on computed values (a generated family of rearranging
// functions, each first shown to reveal the value on the emulator directly); serialised rows and
// structures (TO_JSON_STRING(t), SELECT t, STRUCT, arrays, ARRAY_AGG(STRUCT)) masked field by
// field and still valid; a UNION of stars keeping uncovered columns; INFORMATION_SCHEMA.JOBS and
// anonymous datasets refused before anything runs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { canaryLeak, plainEmailParts, revealedPart } from '../support/canary.js'
import { api, startSluice, type Sluice } from './harness.js'

const T = `${SEED_PROJECT}.${SEED_DATASET}`
const P = `/bigquery/v2/projects/${SEED_PROJECT}`

const POLICY = `
version: 1
rules:
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: email-domain
    columns: ['${T}.customers.email']
    function: email
  - id: ssn-last4
    columns: ['${T}.customers.ssn']
    function: partial
    keep: { last: 4 }
`

const HIDDEN = CUSTOMERS.flatMap((c) => [`${c.email.split('@')[0] as string}@`, c.ssn.slice(0, 6)])
const HIDDEN_CHARS = CUSTOMERS.flatMap((c) => [...plainEmailParts(c.email), c.ssn.replace(/\D/g, '').slice(0, 6)])

/** A hidden part in any encoding, or its letters and digits with the separators changed or gone. */
function revealed (text: string): string | undefined {
  return revealedPart(text, HIDDEN, HIDDEN_CHARS)
}

function expectHidden (what: string, value: unknown, forms = false): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  const leak = forms ? canaryLeak(text, HIDDEN) : revealed(text)
  expect(leak, `${what} leaked ${leak ?? ''}: ${text.slice(0, 300)}`).toBeUndefined()
}

let emulator: BqEmulator
let sluice: Sluice
let dir: string
let token: string
let bq: BigQuery

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bq-escapes-'))
  await writeFile(join(dir, 'masking.yaml'), POLICY)
  emulator = await startBqEmulator()
  sluice = await startSluice({
    connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
    policiesDirectory: dir
  })
  token = await sluice.token('alice')
  const authClient = new OAuth2Client()
  authClient.setCredentials({ access_token: token })
  bq = new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
}, 120_000)

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

async function values (sql: string): Promise<unknown[]> {
  const [rows] = await bq.query({ query: sql })
  return rows.map((r: Record<string, unknown>) => Object.values(r)[0])
}

const FROM = `FROM ${SEED_DATASET}.customers t ORDER BY id`

const REARRANGED = [
  'REVERSE(email)', 'SUBSTR(email, 1, 8)', 'LEFT(email, 6)', 'UPPER(email)', "CONCAT(email, '')",
  "CONCAT(SPLIT(email, '@')[SAFE_OFFSET(1)], '@', SPLIT(email, '@')[SAFE_OFFSET(0)])",
  'REVERSE(ssn)', 'RIGHT(ssn, 8)', "REPLACE(ssn, '-', '')", "TRANSLATE(ssn, '-', '_')", "REGEXP_REPLACE(ssn, '-', '+')",
  "LPAD(ssn, 20, '#')", 'TO_JSON_STRING(ssn)', "ARRAY_TO_STRING([ssn, ssn], ',')", "ssn || ''",
  'TO_BASE64(CAST(ssn AS BYTES))', 'TO_HEX(CAST(ssn AS BYTES))'
]

describe('format-keeping masks never apply to computed values (@google-cloud/bigquery)', () => {
  it.each(REARRANGED)('%s gets a keep-nothing mask', async (expr) => {
    const sql = `SELECT ${expr} AS v ${FROM}`
    const direct = await emulator.api('POST', `projects/${SEED_PROJECT}/queries`, { query: sql, useLegacySql: false })
    expect(revealed(JSON.stringify(direct.json.rows)), 'the expression reveals the value when run directly').toBeDefined()
    const got = await values(sql)
    expect(got).toHaveLength(CUSTOMERS.length)
    expectHidden(expr, got)
    expect(new Set(got)).toEqual(new Set(['****']))
    const raw = await api(sluice, token, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
    expect(raw.status).toBe(200)
    expectHidden(`jobs.query ${expr}`, raw.json)
  })

  it('the value itself and a text cast keep the format mask', async () => {
    expect(await values(`SELECT email ${FROM}`)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(await values(`SELECT CAST(email AS STRING) AS e ${FROM}`)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(await values(`SELECT ssn ${FROM}`)).toEqual(CUSTOMERS.map((c) => `*******${c.ssn.slice(-4)}`))
  })
})

describe('serialised rows and structures are masked field by field and stay valid', () => {
  it('TO_JSON_STRING(t): valid JSON, each field by its own rule, id untouched', async () => {
    const texts = await values(`SELECT TO_JSON_STRING(t) AS j ${FROM}`) as string[]
    expectHidden('TO_JSON_STRING(t)', texts, true)
    const rows = texts.map((t) => JSON.parse(t) as Record<string, unknown>)
    expect(rows.map((r) => r.id)).toEqual(CUSTOMERS.map((c) => c.id))
    expect(rows.map((r) => r.email)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(rows.map((r) => r.ssn)).toEqual(CUSTOMERS.map((c) => `*******${c.ssn.slice(-4)}`))
    expect(rows.map((r) => r.name)).toEqual(CUSTOMERS.map((c) => c.name))
  })

  it('SELECT t: the row as a STRUCT, masked field by field', async () => {
    const rows = await values(`SELECT t ${FROM}`) as Array<Record<string, unknown>>
    expectHidden('SELECT t', rows, true)
    expect(rows.map((r) => r.id)).toEqual(CUSTOMERS.map((c) => c.id))
    expect(rows.map((r) => r.email)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
  })

  it('STRUCT, arrays, ARRAY_AGG(STRUCT) and TO_JSON_STRING(STRUCT)', async () => {
    const structs = await values(`SELECT STRUCT(email AS e, ssn, name) AS s ${FROM}`)
    expect(structs).toEqual(CUSTOMERS.map((c) => ({ e: 'XXXXX@example.com', ssn: `*******${c.ssn.slice(-4)}`, name: c.name })))
    const arrays = await values(`SELECT [email, ssn] AS a ${FROM}`)
    expect(arrays).toEqual(CUSTOMERS.map((c) => ['XXXXX@example.com', `*******${c.ssn.slice(-4)}`]))
    const [agg] = await values(`SELECT ARRAY_AGG(STRUCT(email, ssn) ORDER BY id) AS a FROM ${SEED_DATASET}.customers`)
    expectHidden('ARRAY_AGG(STRUCT)', agg)
    // bqemulator names the fields element1, element2 (BigQuery: email, ssn): compared by position.
    expect((agg as Array<Record<string, unknown>>).map((o) => Object.values(o))).toEqual(CUSTOMERS.map((c) => ['XXXXX@example.com', `*******${c.ssn.slice(-4)}`]))
    const texts = await values(`SELECT TO_JSON_STRING(STRUCT(email AS e, ssn AS s)) AS j ${FROM}`) as string[]
    expect(texts.map((t) => JSON.parse(t))).toEqual(CUSTOMERS.map((c) => ({ e: 'XXXXX@example.com', s: `*******${c.ssn.slice(-4)}` })))
  })

  it('STRING_AGG serialises values into one text: masked whole', async () => {
    const [agg] = await values(`SELECT STRING_AGG(ssn, ',') AS a FROM ${SEED_DATASET}.customers`)
    expect(agg).toBe('****')
  })
})

describe('columns no rule covers stay in clear', () => {
  it('SELECT * … UNION ALL SELECT * over one table keeps id', async () => {
    const [rows] = await bq.query({ query: `SELECT * FROM ${SEED_DATASET}.customers UNION ALL SELECT * FROM ${SEED_DATASET}.customers` })
    expect(rows.map((r: { id: number }) => r.id).sort()).toEqual([...CUSTOMERS, ...CUSTOMERS].map((c) => c.id).sort())
    expect(new Set(rows.map((r: { email: string }) => r.email))).toEqual(new Set(['XXXXX@example.com']))
    expectHidden('UNION ALL of stars', rows, true)
  })
})

describe('reads of other callers\' results and SQL are refused before anything runs', () => {
  it.each([
    'SELECT query FROM `region-us`.INFORMATION_SCHEMA.JOBS',
    `SELECT query FROM \`${SEED_PROJECT}\`.\`region-us\`.INFORMATION_SCHEMA.JOBS_BY_USER`,
    'SELECT query FROM region-us.INFORMATION_SCHEMA.JOBS_BY_PROJECT',
    `SELECT * FROM \`${SEED_PROJECT}._0a1b2c3d4e5f.anon_result\``,
    `SELECT * FROM ${SEED_PROJECT}._0a1b2c3d4e5f.anon_result`
  ])('%s', async (sql) => {
    const res = await api(sluice, token, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
    expect(res.status).toBe(403)
    expect(res.json.error.message).toMatch(/^denied by rule result-reread: /)
    await expect(bq.query({ query: sql })).rejects.toThrow(/result-reread/)
  })
})
