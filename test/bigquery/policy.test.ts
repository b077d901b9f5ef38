// The BigQuery front end under the shipped default policy (policies/default.yaml) with the real
// SQL analyzer: what an agent meets out of the box. Reads pass; DDL is denied; writes and data
// transfers (extract jobs, EXPORT DATA) wait for an approval, which is refused until approvals
// exist, so they are refused by default with the rule that holds them.
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'
import { api, startSluice, type Sluice } from './harness.js'

const SHIPPED_POLICIES = fileURLToPath(new URL('../../policies', import.meta.url))
const P = `/bigquery/v2/projects/${SEED_PROJECT}`
let emulator: BqEmulator
let sluice: Sluice
let agent: string

beforeAll(async () => {
  emulator = await startBqEmulator()
  sluice = await startSluice({
    connections: { 'bq-test': { kind: 'bigquery', url: emulator.url, project: SEED_PROJECT, default: true } },
    policiesDirectory: SHIPPED_POLICIES
  })
  agent = await sluice.token('agent-1') // group ai-agents → role agent
})

afterAll(async () => {
  await sluice?.close()
  await emulator?.close()
})

describe('BigQuery under the shipped default policy', () => {
  it('lets an agent read', async () => {
    const res = await api(sluice, agent, 'POST', `${P}/queries`, { query: `SELECT id, name FROM ${SEED_DATASET}.customers ORDER BY id`, useLegacySql: false })
    expect(res.status).toBe(200)
    expect(res.json.rows).toHaveLength(5)
    const table = await api(sluice, agent, 'GET', `${P}/datasets/${SEED_DATASET}/tables/customers/data`)
    expect(table.status).toBe(200)
  })

  it('denies DDL with the rule id', async () => {
    const res = await api(sluice, agent, 'POST', `${P}/queries`, { query: `DROP TABLE ${SEED_DATASET}.customers`, useLegacySql: false })
    expect(res.status).toBe(403)
    expect(res.json.error.message).toMatch(/^denied by rule deny-ddl-dcl/)
  })

  it('holds writes for approval, which is refused until approvals exist', async () => {
    const res = await api(sluice, agent, 'POST', `${P}/queries`, { query: `DELETE FROM ${SEED_DATASET}.customers WHERE id = 1`, useLegacySql: false })
    expect(res.status).toBe(403)
    expect(res.json.error.message).toMatch(/^approval required by rule agents-writes-need-approval/)
  })

  it('refuses an extract job and EXPORT DATA by default, naming the rule that holds them', async () => {
    const extract = await api(sluice, agent, 'POST', `${P}/jobs`, {
      configuration: { extract: { sourceTable: { projectId: SEED_PROJECT, datasetId: SEED_DATASET, tableId: 'customers' }, destinationUris: ['gs://bucket/out.csv'] } }
    })
    expect(extract.status).toBe(403)
    expect(extract.json.error.message).toMatch(/extract jobs are refused by default.*(approval required|denied) by rule/)
    const exportData = await api(sluice, agent, 'POST', `${P}/queries`, { query: `EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT * FROM ${SEED_DATASET}.customers`, useLegacySql: false })
    expect(exportData.status).toBe(403)
    expect(exportData.json.error.message).toMatch(/EXPORT DATA is refused by default.*(approval required|denied) by rule/)
  })
})
