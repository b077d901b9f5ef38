// policies.maxStatementBytes counts UTF-8 bytes, whatever characters the statement is made of:
// for every encoding width (1-byte ASCII, 2-byte Latin, 3-byte BMP, 4-byte astral characters as
// surrogate pairs, and mixtures), a statement of exactly the limit is analysed and one byte over
// it is refused as SLUICE_STATEMENT_TOO_LARGE, naming both sizes. The configured value, not the
// default, is the one the composed pipeline applies.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { analyzeStage, createStages, type ComposedStages } from '../../src/pipeline/compose.js'
import type { AnalyzeStage } from '../../src/pipeline/stages.js'
import type { Statement } from '../../src/pipeline/types.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'

const statementOf = (sql: string): Statement => ({
  requestId: 'size', frontEnd: 'test', sql, client: {},
  principal: { subject: 'alice', type: 'human', groups: [], roles: ['agent'] } as unknown as Statement['principal'],
  connection: { name: 'pg', kind: 'postgres', defaults: {} }
})

/** `SELECT '<fill>'` of exactly `bytes` UTF-8 bytes, the literal made of `unit` repeated (ASCII padding where it does not divide). */
function sized (bytes: number, unit: string): string {
  const head = "SELECT '"
  const tail = "'"
  const room = bytes - head.length - tail.length
  const width = Buffer.byteLength(unit, 'utf8')
  const fill = unit.repeat(Math.floor(room / width)) + 'x'.repeat(room % width)
  const sql = head + fill + tail
  expect(Buffer.byteLength(sql, 'utf8')).toBe(bytes)
  return sql
}

const UNITS = { ascii: 'a', latin: 'é', bmp: '€', astral: '😀', mixed: 'aé€😀' }
const LIMITS = [64, 1000, 4096]

async function outcome (stage: AnalyzeStage, sql: string): Promise<string> {
  try {
    await stage.analyze(statementOf(sql))
    return 'analysed'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

describe('policies.maxStatementBytes counts UTF-8 bytes', () => {
  let analyzer: Awaited<ReturnType<typeof createSqlAnalyzer>>
  beforeAll(async () => { analyzer = await createSqlAnalyzer() })

  for (const limit of LIMITS) {
    for (const [name, unit] of Object.entries(UNITS)) {
      it(`${name} text at ${limit} bytes: the limit analysed, one byte more refused`, async () => {
        const stage = analyzeStage(analyzer, { maxStatementBytes: limit })
        expect(await outcome(stage, sized(limit, unit))).toBe('analysed')
        const over = sized(limit + 1, unit)
        expect(await outcome(stage, over)).toBe('SLUICE_STATEMENT_TOO_LARGE')
        // Thrown before any parse, synchronously or not: either way the caller's await sees it.
        await expect(Promise.resolve().then(async () => await stage.analyze(statementOf(over)))).rejects.toThrow(`the statement is ${limit + 1} bytes, more than the ${limit} bytes Sluice accepts`)
      })
    }
  }
})

describe('the configured policies.maxStatementBytes is the one applied', () => {
  let dir: string
  let composed: ComposedStages
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-size-'))
    await writeFile(join(dir, 'policy.yaml'), 'version: 1\nrules: []\n')
    composed = await createStages(validateConfig({
      log: { level: 'silent' },
      policies: { directory: dir, watch: false, maxStatementBytes: 2048, parser: { workers: 1 } },
      connections: { pg: { kind: 'postgres', url: 'postgres://127.0.0.1:5432/test' } }
    }))
  })
  afterAll(async () => {
    await composed?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses 2,049 bytes and analyses 2,048, where the default would take both', async () => {
    expect(await outcome(composed.stages.analyze, sized(2048, '€'))).toBe('analysed')
    expect(await outcome(composed.stages.analyze, sized(2049, '€'))).toBe('SLUICE_STATEMENT_TOO_LARGE')
  })
})
