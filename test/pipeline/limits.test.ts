import { describe, expect, it } from 'vitest'
import { rowLimit } from '../../src/pipeline/limits.js'
import type { Admission } from '../../src/pipeline/types.js'
import type { StatementKind } from '../../src/sql/types.js'

function admission (limits: Admission['decision']['limits'], statements: Array<{ kind: StatementKind, hasLimit?: boolean }>): Admission {
  return {
    analysis: { dialect: 'snowflake', statements: statements.map((s) => ({ kind: s.kind, text: '', tablesRead: [], tablesWritten: [], functions: [], hasLimit: s.hasLimit ?? false })) },
    decision: { effect: 'allow', ruleId: 'r', reason: 'allowed', limits }
  }
}

describe('row limits from a decision', () => {
  it('caps a SELECT without a LIMIT at the autoLimit', () => {
    expect(rowLimit(admission({ autoLimit: 1000 }, [{ kind: 'select' }]))).toBe(1000)
  })

  it('leaves a SELECT with its own LIMIT to it, but still applies maxRows', () => {
    expect(rowLimit(admission({ autoLimit: 1000 }, [{ kind: 'select', hasLimit: true }]))).toBeUndefined()
    expect(rowLimit(admission({ autoLimit: 1000, maxRows: 10000 }, [{ kind: 'select', hasLimit: true }]))).toBe(10000)
  })

  it('takes the tighter of maxRows and autoLimit', () => {
    expect(rowLimit(admission({ autoLimit: 1000, maxRows: 50 }, [{ kind: 'select' }]))).toBe(50)
  })

  it('does not apply autoLimit to statements that are not SELECTs', () => {
    expect(rowLimit(admission({ autoLimit: 1000 }, [{ kind: 'show' }]))).toBeUndefined()
  })

  it('has no limit when the rule sets none', () => {
    expect(rowLimit(admission({}, [{ kind: 'select' }]))).toBeUndefined()
  })
})
