// No statement can stall the gateway, through @google-cloud/bigquery against bqemulator under the
// shipped default policy: one over policies.maxStatementBytes is refused unparsed, nesting past
// the parser's limit is refused as too complex — both BigQuery's 400 invalidQuery, recorded,
// never sent upstream — and /healthz answers while a large statement is parsed.
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BigQuery } from '@google-cloud/bigquery'
import { OAuth2Client } from 'google-auth-library'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spyBigQueryCalls } from '../support/upstream-spy.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { startSluice, type Sluice } from './harness.js'

const SHIPPED = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url))
const MiB = 1024 * 1024

let emulator: BqEmulator
let sluice: Sluice
let dir: string
let agent: string

function client (token: string): BigQuery {
  const authClient = new OAuth2Client()
  authClient.setCredentials({ access_token: token })
  return new BigQuery({ projectId: SEED_PROJECT, apiEndpoint: sluice.url, authClient })
}

/** `SELECT id FROM ds.customers WHERE id IN (0, 1, …)` of at least `bytes` bytes. */
function inList (bytes: number): string {
  const head = `SELECT id FROM ${SEED_DATASET}.customers WHERE id IN (`
  const values: string[] = []
  let size = head.length + 1
  for (let k = 0; size < bytes; k++) { values.push(String(k)); size += String(k).length + 2 }
  return `${head}${values.join(', ')})`
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bq-limits-'))
  await copyFile(SHIPPED, join(dir, 'default.yaml'))
  emulator = await startBqEmulator()
  sluice = await startSluice({
    connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
    policiesDirectory: dir
  })
  agent = await sluice.token('agent-limits')
}, 600_000)

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

let upstreamQueries: string[] = []
beforeEach(() => { upstreamQueries = spyBigQueryCalls({ keep: 200 }) })

async function eventFor (sql: string) {
  const events = await sluice.app.recorder.listEvents({ limit: 1000 })
  return events.find((e) => e.sqlText === sql)
}

type GoogleError = Error & { code?: number, errors?: Array<{ reason?: string }> }

describe('statement limits through @google-cloud/bigquery', () => {
  it('refuses a statement over 1 MiB as too large: 400 invalidQuery, recorded, never run', async () => {
    const sql = inList(MiB + 16)
    const err = await client(agent).query({ query: sql }).then(() => undefined, (e: GoogleError) => e)
    expect(err?.code).toBe(400)
    expect(err?.errors?.[0]?.reason).toBe('invalidQuery')
    expect(err?.message).toMatch(/^the statement is \d+ bytes, more than the 1048576 bytes Sluice accepts \(policies\.maxStatementBytes\); it was not run/)
    expect(upstreamQueries).toEqual([])
    expect(await eventFor(sql)).toMatchObject({ errorCode: 'SLUICE_STATEMENT_TOO_LARGE' })
  })

  it('refuses nesting deeper than the parser allows as too complex, recorded, never run', async () => {
    const sql = `SELECT id FROM ${SEED_DATASET}.customers WHERE id = ${'('.repeat(300)}1${')'.repeat(300)}`
    const err = await client(agent).query({ query: sql }).then(() => undefined, (e: GoogleError) => e)
    expect(err?.code).toBe(400)
    expect(err?.errors?.[0]?.reason).toBe('invalidQuery')
    expect(err?.message).toContain('the statement is too complex for Sluice to analyse (nesting deeper than the parser allows)')
    expect(upstreamQueries).toEqual([])
    expect(await eventFor(sql)).toMatchObject({ errorCode: 'SLUICE_STATEMENT_TOO_COMPLEX' })
  })

  it('keeps answering /healthz while a statement just under the cap is parsed', async () => {
    // A DELETE, which the shipped policy does not let an agent run: the emulator never has to
    // execute a million-byte IN list, and the answer comes right after the analysis.
    const sql = inList(MiB - 1024).replace(/^SELECT id FROM/, 'DELETE FROM')
    let settled = false
    const outcome = client(agent).query({ query: sql }).then(() => 'ran', (e: GoogleError) => e).finally(() => { settled = true })
    let answeredMeanwhile = 0
    while (!settled) {
      const res = await fetch(`${sluice.url}/healthz`)
      await res.text()
      if (res.status === 200 && !settled) answeredMeanwhile++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    // Analysed on a parser thread and decided by the policy (or refused as too complex), in
    // the client's protocol: never a stall, never a 503.
    const err = await outcome as GoogleError
    expect(err.code).toBeGreaterThanOrEqual(400)
    expect(err.code).toBeLessThan(500)
    // Parsed on the event loop, the loop above would get one answer in, after the parse.
    expect(answeredMeanwhile).toBeGreaterThanOrEqual(5)
    expect(upstreamQueries).toEqual([])
    expect((await eventFor(sql))?.errorCode).toMatch(/^SLUICE_(POLICY_DENIED|APPROVAL_REQUIRED|STATEMENT_TOO_COMPLEX)$/)
  })
})
