// What an agent is told when BigQuery work is refused, through @google-cloud/bigquery and plain
// REST against bqemulator, under the shipped default policy plus a rule guarding one dataset by
// its tables and a masking rule. A typo is BigQuery's own 400 invalidQuery with the parser's
// position, never run and recorded as unparsed; valid SQL the parser lacks is the policy's; every
// transfer refusal names what was refused, why, and what to do instead, in words that fit it.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spyBigQueryCalls } from '../support/upstream-spy.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { api, startSluice, type Sluice } from './harness.js'

const SHIPPED = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))
const T = `${SEED_PROJECT}.${SEED_DATASET}`
const P = `/bigquery/v2/projects/${SEED_PROJECT}`

// Sorted before default.yaml: its rules come first. The guard is about tables only.
const GUARD = `
version: 1
rules:
  - id: guard-hr
    effect: deny
    match: { tables: ['${SEED_PROJECT}.hr.**'] }
    message: HR tables are off limits.
masking:
  - id: mask-email
    columns: ['${T}.customers.email']
    function: redact
`

/** Malformed statements an agent sends: misspelt keywords, stray and missing tokens. */
const BASES = [
  `SELECT id, name FROM ${SEED_DATASET}.customers WHERE id = 1`,
  `SELECT COUNT(*) AS n FROM ${SEED_DATASET}.customers GROUP BY active`,
  `SELECT c.id FROM ${SEED_DATASET}.customers AS c JOIN ${SEED_DATASET}.profiles AS p ON c.id = p.id`
]
const TYPOS = BASES.flatMap((sql) => [
  sql.replace('SELECT', 'SELEC'),
  sql.replace(' FROM ', ' FORM '),
  `${sql} AND (`,
  `${sql} AND name = 'unterminated`,
  sql.replace(' FROM ', ' FROM FROM ')
])

let emulator: BqEmulator
let sluice: Sluice
let dir: string
let agent: string

function client (token: string): BigQuery {
  const authClient = new OAuth2Client()
  authClient.setCredentials({ access_token: token })
  return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bq-refusals-'))
  await copyFile(SHIPPED, join(dir, 'default.yaml'))
  await writeFile(join(dir, '00-guard.yaml'), GUARD)
  emulator = await startBqEmulator()
  sluice = await startSluice({
    connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
    policiesDirectory: dir
  })
  agent = await sluice.token('agent-refusals')
})

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

// Every call Sluice makes upstream, to prove that refused work never got there.
let upstreamQueries: string[] = []
beforeEach(() => { upstreamQueries = spyBigQueryCalls({ jobs: true }) })

async function eventFor (sql: string) {
  const events = await sluice.app.recorder.listEvents({ limit: 1000 })
  return events.find((e) => e.sqlText === sql)
}

describe('a statement the parser cannot read, through @google-cloud/bigquery', () => {
  it('(the upstream spy sees what does run)', async () => {
    const sql = `SELECT id FROM ${SEED_DATASET}.customers WHERE id = 1`
    await client(agent).query({ query: sql })
    expect(upstreamQueries.some((q) => q.includes(sql))).toBe(true)
  })

  it('is BigQuery\'s own 400 invalidQuery with the parser\'s position, never run, recorded as unparsed', async () => {
    const bq = client(agent)
    for (const sql of TYPOS) {
      const err = await bq.query({ query: sql }).then(() => undefined, (e: Error & { code?: number, errors?: Array<{ reason?: string }> }) => e)
      expect(err, sql).toBeDefined()
      expect(err?.code, sql).toBe(400)
      expect(err?.errors?.[0]?.reason, sql).toBe('invalidQuery')
      expect(err?.message, sql).toMatch(/^Sluice could not parse this statement; it was not run: syntax error at line 1, column \d+ \(.+\)\. Correct the statement and send it again/)
      expect(err?.message, sql).not.toMatch(/denied by rule|guard-hr|deny-unknown/)
      const event = await eventFor(sql)
      expect(event, sql).toMatchObject({ outcome: 'denied', ruleId: 'unparsed', errorCode: 'SLUICE_SQL_SYNTAX' })
      expect((event?.analysis as { statements: Array<{ unparsed?: { line: number } }> }).statements[0]?.unparsed?.line, sql).toBe(1)
    }
    expect(upstreamQueries).toEqual([])
  })

  it('is the same error for a query job (jobs.insert), in Google\'s error shape over plain REST', async () => {
    const sql = `SELEC id FROM ${SEED_DATASET}.customers`
    await expect(client(agent).createQueryJob({ query: sql })).rejects.toMatchObject({ code: 400, errors: [expect.objectContaining({ reason: 'invalidQuery' })] })
    const { status, json } = await api(sluice, agent, 'POST', `${P}/queries`, { query: sql, useLegacySql: false })
    expect(status).toBe(400)
    expect(json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', errors: [{ reason: 'invalidQuery' }], details: [expect.objectContaining({ reason: 'SLUICE_SQL_SYNTAX' })] })
    expect(json.error.message).toContain('syntax error at line 1, column 1 (Expected: an SQL statement, found: SELEC)')
    expect(upstreamQueries).toEqual([])
  })
})

describe('valid SQL the parser lacks', () => {
  it('is decided by the rule about unknown statements, not by a rule about tables, and says what Sluice cannot read', async () => {
    const sql = `SELECT * FROM ${SEED_DATASET}.events_* WHERE _TABLE_SUFFIX > '2024'`
    const err = await client(agent).query({ query: sql }).then(() => undefined, (e: Error & { code?: number }) => e)
    expect(err).toMatchObject({ code: 403 })
    expect(err?.message).toMatch(/^denied by rule deny-unknown: a statement Sluice could not analyse \(Sluice's SQL parser does not read wildcard tables written without backticks \(write `dataset\.events_\*`\)\)/)
    expect((await eventFor(sql))?.ruleId).toBe('deny-unknown')
    expect(upstreamQueries).toEqual([])
  })
})

describe('data transfers', () => {
  const table = (tableId: string) => ({ projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId })

  it('refuses a load job as a load, before Sluice builds any SQL for it', async () => {
    const err = await client(agent).createJob({ configuration: { load: { sourceUris: ['gs://bucket/in.csv'], destinationTable: table('customers') } } })
      .then(() => undefined, (e: Error & { code?: number }) => e)
    expect(err).toMatchObject({ code: 403 })
    expect(err?.message).toBe(`refused by Sluice: load jobs are refused: this one into ${T}.customers from gs://bucket/in.csv would write files into the warehouse with the gateway's credential, ` +
      'and no policy rule can allow it (Sluice\'s SQL parser cannot read the LOAD DATA statement a load amounts to, so its tables could not be checked); ' +
      'load the files with your own BigQuery credentials, outside Sluice, or ask a data engineer to load them')
    expect(upstreamQueries).toEqual([])
  })

  it('refuses LOAD DATA as a load, not as a parse failure, and records the statement', async () => {
    const sql = `LOAD DATA INTO ${SEED_DATASET}.customers FROM FILES (format = 'CSV', uris = ['gs://bucket/in.csv'])`
    const err = await client(agent).query({ query: sql }).then(() => undefined, (e: Error & { code?: number }) => e)
    expect(err).toMatchObject({ code: 403 })
    expect(err?.message).toMatch(/^refused by Sluice: LOAD DATA is refused: .*no policy rule can allow it.*; load the files with your own BigQuery credentials/)
    expect(err?.message).not.toMatch(/Expected|found:|could not parse/)
    expect(await eventFor(sql)).toMatchObject({ errorCode: 'SLUICE_BIGQUERY_REFUSED' })
    expect(upstreamQueries).toEqual([])
  })

  it('refuses a copy job of masked data with advice for a copy, not for a filter', async () => {
    const bq = client(agent)
    const err = await bq.dataset(SEED_DATASET).table('customers').createCopyJob(bq.dataset(SEED_DATASET).table('copied'))
      .then(() => undefined, (e: Error & { code?: number }) => e)
    expect(err).toMatchObject({ code: 403 })
    expect(err?.message).toMatch(new RegExp(`^refused by Sluice: copy jobs are refused by default: this one \\(\`${T}.customers\` to \`${T}.copied\`\\) would copy table data around masking \\(judged as INSERT INTO`))
    expect(err?.message).toContain('denied by masking rule mask-email')
    expect(err?.message).toContain('leave the column out of the write')
    expect(err?.message).toMatch(/a copy job copies every column, so to copy through Sluice run INSERT INTO … SELECT naming the columns you may copy/)
    expect(err?.message).not.toContain('without filtering')
    expect(upstreamQueries).toEqual([])
  })

  it('refuses an extract job and EXPORT DATA naming what they are, never "COPY"', async () => {
    const bq = client(agent)
    const extract = await bq.createJob({ configuration: { extract: { sourceTable: table('customers'), destinationUris: ['gs://bucket/out.csv'] } } })
      .then(() => undefined, (e: Error & { code?: number }) => e)
    expect(extract).toMatchObject({ code: 403 })
    expect(extract?.message).toMatch(new RegExp(`^refused by Sluice: extract jobs are refused by default: this one \\(\`${T}.customers\` to gs://bucket/out.csv\\) would export table data out of the warehouse, around masking \\(judged as EXPORT DATA`))
    const exported = await bq.query({ query: `EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT id, email FROM ${SEED_DATASET}.customers` })
      .then(() => undefined, (e: Error & { code?: number }) => e)
    expect(exported).toMatchObject({ code: 403 })
    expect(exported?.message).toMatch(/^refused by Sluice: EXPORT DATA is refused by default: it writes query results to storage, around masking \(/)
    for (const message of [extract?.message, exported?.message]) {
      expect(message).not.toMatch(/\bCOPY\b/)
      expect(message).toMatch(/(approval required|denied) by (masking )?rule/)
      expect(message).toContain('query the columns through Sluice instead (masked columns arrive masked)')
      expect(message?.split('query the columns through Sluice instead').length, 'the advice once').toBe(2)
    }
    expect(upstreamQueries).toEqual([])
  })
})
