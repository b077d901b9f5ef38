// The bq CLI through Sluice against bqemulator, with the README's flags: `--api` (Sluice's
// URL; bq then fetches Sluice's discovery document), `--oauth_access_token` (the agent's OIDC
// token) and `--project_id` (bq refuses to start a job without one when no gcloud
// configuration names a project). A private CLOUDSDK_CONFIG keeps the machine's gcloud
// settings out of the test and the test's out of the machine.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CUSTOMERS, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startSluice, type Sluice } from './harness.js'

const BQ = process.env.SLUICE_BQ_CLI ?? '/usr/bin/bq'
let emulator: BqEmulator
let sluice: Sluice
let home: string
let alice: string
let bob: string

interface Run { code: number, stdout: string, stderr: string }

async function bq (token: string, ...args: string[]): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(BQ, [`--api=${sluice.url}`, `--oauth_access_token=${token}`, `--project_id=${SEED_PROJECT}`, '--format=json', '--quiet', ...args], {
      env: { ...process.env, CLOUDSDK_CONFIG: join(home, 'gcloud'), HOME: home },
      cwd: home,
      timeout: 60_000
    }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    })
  })
}

/** bq wraps its messages at the terminal width; compare them as one line. */
function output (run: Run): string {
  return `${run.stdout} ${run.stderr}`.replace(/\s+/g, ' ')
}

function json (run: Run): any {
  if (run.code !== 0) throw new Error(`bq failed (${run.code}): ${run.stdout} ${run.stderr}`)
  return JSON.parse(run.stdout)
}

describe.skipIf(!existsSync(BQ))('bq CLI through Sluice', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'sluice-bq-cli-'))
    await writeFile(join(home, 'rows.csv'), 'id,email\n9,new@example.com\n')
    emulator = await startBqEmulator()
    sluice = await startSluice({ connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } } })
    alice = await sluice.token('alice')
    bob = await sluice.token('bob')
  })

  afterAll(async () => {
    await sluice?.close()
    await emulator?.close()
    if (home !== undefined) await rm(home, { recursive: true, force: true })
  })

  it('runs a GoogleSQL query', async () => {
    const rows = json(await bq(alice, 'query', '--nouse_legacy_sql', `SELECT id, email, last_seen FROM ${SEED_DATASET}.customers ORDER BY id`))
    expect(rows).toHaveLength(CUSTOMERS.length)
    expect(rows[0]).toMatchObject({ id: '1', email: CUSTOMERS[0]?.email })
    expect(rows[0].last_seen).toMatch(/^2024-01-01 10:00:00/)
  })

  it('reads nested and repeated fields', async () => {
    const rows = json(await bq(alice, 'query', '--nouse_legacy_sql', `SELECT * FROM ${SEED_DATASET}.profiles ORDER BY id`))
    expect(rows[0].address.city).toBe('London')
    expect(rows[0].phones).toHaveLength(2)
    expect(rows[0].cards[0].number).toBe('4111111111111111')
  })

  it('pages rows with head (tabledata.list)', async () => {
    const head = json(await bq(alice, 'head', '-n', '3', `${SEED_DATASET}.customers`))
    expect(head).toHaveLength(3)
  })

  it('lists datasets and tables and shows a table', async () => {
    expect(json(await bq(alice, 'ls')).map((d: any) => d.datasetReference.datasetId)).toEqual([SEED_DATASET])
    expect(json(await bq(alice, 'ls', SEED_DATASET)).map((t: any) => t.tableReference.tableId).sort()).toEqual(['customers', 'profiles'])
    expect(json(await bq(alice, 'show', `${SEED_DATASET}.profiles`)).schema.fields.map((f: any) => f.name)).toContain('cards')
  })

  it('prints the policy denial with its rule', async () => {
    const run = await bq(alice, 'query', '--nouse_legacy_sql', `DELETE FROM ${SEED_DATASET}.customers WHERE true`)
    expect(run.code).not.toBe(0)
    expect(output(run)).toContain('denied by rule no-delete')
  })

  it('refuses legacy SQL with the flag to use', async () => {
    const run = await bq(alice, 'query', '--use_legacy_sql', 'SELECT 1')
    expect(run.code).not.toBe(0)
    expect(output(run)).toContain('--nouse_legacy_sql')
  })

  it('refuses a bad token', async () => {
    const run = await bq('not-a-valid-token', 'query', '--nouse_legacy_sql', 'SELECT 1')
    expect(run.code).not.toBe(0)
    expect(output(run)).toMatch(/token was rejected|401|Unauthorized|authError/i)
  })

  it('answers Not found for another principal\'s job id', async () => {
    const jobId = `alice_cli_${Date.now()}`
    json(await bq(alice, 'query', '--nouse_legacy_sql', `--job_id=${jobId}`, 'SELECT 1 AS x'))
    const run = await bq(bob, 'show', '-j', jobId)
    expect(run.code).not.toBe(0)
    expect(output(run)).toMatch(/Job sluice-test:alice_cli_\d+ not found/)
    // jobs.list shows each caller its own jobs only.
    const bobsJobs = await bq(bob, 'ls', '-j')
    expect(bobsJobs.code).toBe(0)
    expect(output(bobsJobs)).not.toContain(jobId)
  })

  // Each bq run starts a Python interpreter (1-2 s); the refusals are independent, so they run side by side.
  it.concurrent.each([
    ['extract', ['extract', `${SEED_DATASET}.customers`, 'gs://bucket/out.csv'], /extract jobs are refused/],
    ['copy', ['cp', '-f', `${SEED_DATASET}.customers`, `${SEED_DATASET}.copied`], /copy jobs are refused/],
    ['load from storage', ['load', '--source_format=CSV', `${SEED_DATASET}.customers`, 'gs://bucket/in.csv'], /load jobs are refused/],
    ['load of a local file', ['load', '--source_format=CSV', '--skip_leading_rows=1', `${SEED_DATASET}.customers`, 'rows.csv'], /load jobs are refused/],
    ['EXPORT DATA', ['query', '--nouse_legacy_sql', "EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1"], /EXPORT DATA is refused/],
    ['a destination table', ['query', '--nouse_legacy_sql', `--destination_table=${SEED_DATASET}.out`, 'SELECT 1'], /destinationTable on a query is refused/]
  ])('refuses %s', async (_name, args, message) => {
    const run = await bq(alice, ...args)
    expect(run.code).not.toBe(0)
    expect(output(run)).toMatch(message)
  })
})
