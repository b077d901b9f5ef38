// Loads the measured SQL corpus (test/sql/corpus/*.yaml) used by the corpus test and by the
// parser evaluation. See the header of corpus/snowflake.yaml for the file format.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import type { Dialect, QualifyDefaults, StatementKind } from '../../src/sql/types.js'

export interface ExpectedStatement {
  kind: StatementKind
  read: string[]
  written: string[]
  /** Checked only when the corpus states it. */
  functions?: string[]
  limit?: boolean
  /** The chosen parser cannot read this statement: the analyzer must say `unknown`. */
  gap?: string
}

export interface CorpusCase {
  dialect: Dialect
  defaults: QualifyDefaults
  sql: string
  expect: ExpectedStatement[]
}

export const DIALECTS: readonly Dialect[] = ['snowflake', 'bigquery', 'postgres']

interface RawExpect {
  kind: StatementKind
  read?: string[]
  written?: string[]
  functions?: string[]
  limit?: boolean
  gap?: string
}

export function loadCorpus (dialect: Dialect): CorpusCase[] {
  const file = fileURLToPath(new URL(`./corpus/${dialect}.yaml`, import.meta.url))
  const doc = parse(readFileSync(file, 'utf8')) as {
    dialect: Dialect
    defaults: QualifyDefaults
    cases: Array<{ sql: string, expect: RawExpect[] }>
  }
  if (doc.dialect !== dialect) throw new TypeError(`${file}: dialect is ${doc.dialect}, expected ${dialect}`)
  return doc.cases.map((c) => ({
    dialect,
    defaults: doc.defaults,
    sql: c.sql,
    expect: c.expect.map((e) => {
      const out: ExpectedStatement = {
        kind: e.kind,
        read: [...(e.read ?? [])].sort(),
        written: [...(e.written ?? [])].sort()
      }
      if (e.functions !== undefined) out.functions = [...e.functions].sort()
      if (e.limit !== undefined) out.limit = e.limit
      if (e.gap !== undefined) out.gap = e.gap
      return out
    })
  }))
}

/** What the analyzer must answer for a statement: `unknown` where the corpus records a gap. */
export function analyzerExpectation (e: ExpectedStatement): ExpectedStatement {
  return e.gap !== undefined ? { kind: 'unknown', read: [], written: [] } : e
}
