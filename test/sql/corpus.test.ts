// The measured corpus: every statement's kind and tables, as the analyzer must report them.
// Statements the parser cannot read are recorded in the corpus with a `gap`: for those the
// analyzer must fail closed (`unknown` with a parseError), never guess.
import { beforeAll, describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { SqlAnalyzer } from '../../src/sql/types.js'
import { analyzerExpectation, DIALECTS, loadCorpus } from './corpus.js'

let analyzer: SqlAnalyzer
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheSize: 0 })
})

const label = (sql: string): string => {
  const oneLine = sql.replace(/\s+/g, ' ').trim()
  return oneLine.length > 90 ? `${oneLine.slice(0, 87)}...` : oneLine
}

describe('sql corpus', () => {
  it('holds at least 200 statements across the three dialects', () => {
    const total = DIALECTS.reduce((n, d) => n + loadCorpus(d).reduce((m, c) => m + c.expect.length, 0), 0)
    expect(total).toBeGreaterThanOrEqual(200)
  })

  for (const dialect of DIALECTS) {
    describe(dialect, () => {
      for (const c of loadCorpus(dialect)) {
        it(label(c.sql), () => {
          const analysis = analyzer.analyze(c.sql, dialect, c.defaults)
          expect(analysis.dialect).toBe(dialect)
          expect(analysis.statements.map((s) => s.kind)).toEqual(c.expect.map((e) => analyzerExpectation(e).kind))
          c.expect.forEach((raw, i) => {
            const e = analyzerExpectation(raw)
            const got = analysis.statements[i]
            if (got === undefined) throw new Error(`statement ${i} missing`)
            if (e.kind === 'unknown') {
              // Fail closed: an unreadable statement says why.
              expect(got.parseError, `statement ${i} parseError`).toBeTypeOf('string')
              // A gap is SQL the warehouse runs: the policy decides it, it is never called a typo.
              if (raw.gap !== undefined) expect(got.unparsed, `statement ${i} answered as a syntax error`).toBeUndefined()
              return
            }
            expect(got.parseError, `statement ${i} parseError`).toBeUndefined()
            expect(got.tablesRead, `statement ${i} tablesRead`).toEqual(e.read)
            expect(got.tablesWritten, `statement ${i} tablesWritten`).toEqual(e.written)
            if (e.functions !== undefined) expect(got.functions, `statement ${i} functions`).toEqual(e.functions)
            if (e.limit !== undefined) expect(got.hasLimit, `statement ${i} hasLimit`).toBe(e.limit)
          })
        })
      }
    })
  }
})
