// The lineage corpus (test/sql/lineage/*.yaml): per dialect, queries over a fixed catalogue with
// masking rules, and the result columns each query must return masked — or the inference rule
// that must deny it. Runs the real lineage, planner and inference check (not a re-implementation).
//
// File format: `schemas` lists the tables whose columns are known (others have an unknown schema,
// like a warehouse table Sluice has no catalogue for); `masking` is a policy file's masking
// section; each case gives `sql` and either `cols` — the result column names the warehouse
// returns, in order, a trailing `*` marking a column that must be masked — or `deny: <rule id>`.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, test } from 'vitest'
import { parse, stringify } from 'yaml'
import { inferenceViolation } from '../../src/masking/inference.js'
import { guardRule, planColumns } from '../../src/masking/planner.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import type { CompiledMaskingRule } from '../../src/policy/model.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { lineageOf } from '../../src/sql/lineage.js'
import type { Dialect, QualifyDefaults, SqlAnalyzer } from '../../src/sql/types.js'

interface LineageCase { sql: string, cols?: string[], deny?: string, note?: string }
interface LineageCorpus {
  dialect: Dialect
  defaults: QualifyDefaults
  schemas: Record<string, string[]>
  masking: unknown[]
  cases: LineageCase[]
}

function load (dialect: Dialect): LineageCorpus {
  const file = fileURLToPath(new URL(`./lineage/${dialect}.yaml`, import.meta.url))
  return parse(readFileSync(file, 'utf8')) as LineageCorpus
}

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer({ cacheSize: 0 }) })

/** What Sluice decides for one case: masked column names, or the denying rule. */
function decide (corpus: LineageCorpus, rules: CompiledMaskingRule[], c: LineageCase): { cols?: string[], deny?: string } {
  const analysis = analyzer.analyze(c.sql, corpus.dialect, corpus.defaults)
  const s = analysis.statements[0]
  if (s === undefined || s.kind === 'unknown') throw new Error(`not analysed: ${s?.parseError ?? 'no statement'}`)
  const traced = lineageOf(c.sql, { dialect: corpus.dialect, defaults: corpus.defaults, schemaOf: (t) => corpus.schemas[t] })
  const lineage = traced[0]
  if (lineage === undefined) throw new Error('no lineage')
  const guard = guardRule([...s.tablesRead, ...s.tablesWritten], rules)
  const violation = guard === undefined ? undefined : inferenceViolation(lineage.uses, rules, guard.rule)
  if (violation !== undefined) return { deny: violation.rule }
  const names = (c.cols ?? []).map((n) => n.replace(/\*$/, ''))
  // Snowflake reports unquoted names in upper case, as the rowtype does.
  const result = corpus.dialect === 'snowflake' ? names.map((n) => (n === n.toLowerCase() ? n.toUpperCase() : n)) : names
  const plan = planColumns({ lineage, tablesRead: s.tablesRead, rules, schema: { columns: result.map((name) => ({ name, type: 'TEXT' })) }, unresolved: 'mask' })
  const masked = new Set(plan.columns.map((p) => p.index))
  return { cols: names.map((n, i) => (masked.has(i) ? `${n}*` : n)) }
}

for (const dialect of ['snowflake', 'bigquery', 'postgres'] as const) {
  describe(`lineage corpus: ${dialect}`, () => {
    const corpus = load(dialect)
    const rules = parsePolicySet([{ name: `${dialect}.yaml`, text: stringify({ version: 1, masking: corpus.masking }) }]).masking

    test('has at least 100 cases', () => {
      expect(corpus.cases.length).toBeGreaterThanOrEqual(100)
    })

    test.each(corpus.cases.map((c, i) => [i + 1, c.sql, c] as const))('#%i %s', (_n, _sql, c) => {
      const got = decide(corpus, rules, c)
      if (c.deny !== undefined) expect(got).toEqual({ deny: c.deny })
      else expect(got).toEqual({ cols: c.cols })
    })
  })
}
