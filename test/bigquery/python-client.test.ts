// google-cloud-bigquery (Python, from the test venv) through Sluice against bqemulator: the
// README's Python settings, run scenario by scenario by python_client.py in one interpreter
// (importing the client takes seconds), outcomes asserted here.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANARY, CUSTOMERS, SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startSluice, type Sluice } from './harness.js'
import { startStubUpstream, type StubUpstream } from './stub-upstream.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PYTHON = `${ROOT}.venv/bin/python`
const SCRIPT = fileURLToPath(new URL('./python_client.py', import.meta.url))
const STUB_PROJECT = 'stub-project'

type Outcome = { ok: any } | { error: string, code: number | null, message: string }
let results: Record<string, Outcome>
let emulator: BqEmulator
let stub: StubUpstream
let sluice: Sluice

async function runPython (env: Record<string, string>): Promise<Record<string, Outcome>> {
  return await new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT], { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`python_client.py failed: ${err.message}\n${stderr}`))
        return
      }
      resolve(JSON.parse(stdout) as Record<string, Outcome>)
    })
  })
}

function ok (name: string): any {
  const outcome = results[name]
  if (outcome === undefined || !('ok' in outcome)) throw new Error(`${name}: ${JSON.stringify(outcome)}`)
  return outcome.ok
}

function failed (name: string): { error: string, code: number | null, message: string } {
  const outcome = results[name]
  if (outcome === undefined || 'ok' in outcome) throw new Error(`${name} did not fail: ${JSON.stringify(outcome)}`)
  return outcome
}

beforeAll(async () => {
  if (!existsSync(PYTHON)) throw new Error('the Python venv is missing: run test/support/setup-python.sh')
  emulator = await startBqEmulator()
  stub = await startStubUpstream(STUB_PROJECT, { pendingPolls: 2 })
  sluice = await startSluice({
    connections: {
      'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true },
      'bq-slow': { kind: 'bigquery', url: stub.url, project: STUB_PROJECT }
    }
  })
  results = await runPython({
    SLUICE_URL: sluice.url,
    BQ_PROJECT: SEED_PROJECT,
    BQ_DATASET: SEED_DATASET,
    BQ_STUB_PROJECT: STUB_PROJECT,
    ALICE_TOKEN: await sluice.token('alice'),
    BOB_TOKEN: await sluice.token('bob')
  })
}, 180_000)

afterAll(async () => {
  await sluice?.close()
  await stub?.close()
  await emulator?.close()
})

describe('google-cloud-bigquery (Python) through Sluice', () => {
  it('runs a query and returns typed rows', () => {
    const rows = ok('query')
    expect(rows).toHaveLength(CUSTOMERS.length)
    expect(rows[0]).toMatchObject({ id: 1, email: CUSTOMERS[0]?.email, active: true, balance: '10.500000000' })
    expect(rows[0].last_seen).toBe('2024-01-01 10:00:00.123456+00:00')
    expect(rows[2].last_seen).toBeNull()
  })

  it('decodes RECORD, REPEATED and repeated RECORD values', () => {
    const [first, second] = ok('nested')
    expect(first.address).toEqual({ city: 'London', ssn: `ssn-${CANARY}` })
    expect(first.phones).toHaveLength(2)
    expect(first.cards[0]).toMatchObject({ number: '4111111111111111', expires: '2027-01-01' })
    expect(second).toMatchObject({ id: 2, address: null, phones: [], cards: [] })
  })

  it('pages results (query_and_wait, result(page_size))', () => {
    expect(ok('query_and_wait')).toEqual([1, 2, 3, 4, 5])
    expect(ok('paged')).toEqual({ pages: 3, ids: [1, 2, 3, 4, 5] })
  })

  it('lists rows, datasets and tables', () => {
    expect(ok('list_rows')).toEqual([1, 2, 3, 4, 5])
    expect(ok('datasets')).toEqual([SEED_DATASET])
    expect(ok('tables')).toEqual(['customers', 'profiles'])
  })

  it('polls a query that is not complete yet (jobComplete:false)', () => {
    expect(ok('polling')).toEqual(['slow@example.com', 'slower@example.com'])
  })

  it('raises Forbidden with the rule for a denied statement', () => {
    expect(failed('denied')).toMatchObject({ error: 'Forbidden', code: 403, message: expect.stringContaining('denied by rule no-delete') })
  })

  it('refuses a bad token', () => {
    const outcome = failed('bad_token')
    // google-auth answers a 401 by trying to refresh a token it cannot refresh.
    expect(outcome.error).toMatch(/Unauthorized|RefreshError/)
  })

  it('raises NotFound for another principal\'s job id', () => {
    expect(failed('foreign_job')).toMatchObject({ error: 'NotFound', code: 404 })
  })

  it.each(['extract', 'copy', 'load_uri', 'load_file', 'export_data', 'destination'])('refuses %s with Forbidden', (name) => {
    expect(failed(name)).toMatchObject({ error: 'Forbidden', code: 403, message: expect.stringMatching(/refused/) })
  })
})
