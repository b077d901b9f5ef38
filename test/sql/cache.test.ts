import { describe, expect, it } from 'vitest'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { CACHED_UP_TO } from '../../src/sql/analysis-key.js'

const defaults = { database: 'analytics', schema: 'public' }

describe('sql analyzer cache', () => {
  it('returns the same frozen analysis for the same dialect, defaults and text', async () => {
    const analyzer = await createSqlAnalyzer()
    const first = analyzer.analyze('SELECT * FROM orders', 'postgres', defaults)
    const second = analyzer.analyze('SELECT * FROM orders', 'postgres', defaults)
    expect(second).toBe(first)
    expect(Object.isFrozen(first)).toBe(true)
    expect(Object.isFrozen(first.statements)).toBe(true)
    const stmt = first.statements[0]
    expect(stmt).toBeDefined()
    expect(Object.isFrozen(stmt)).toBe(true)
    expect(Object.isFrozen(stmt?.tablesRead)).toBe(true)
    expect(() => { (stmt?.tablesRead as string[]).push('x') }).toThrow(TypeError)
  })

  it('keys on dialect and defaults as well as text', async () => {
    const analyzer = await createSqlAnalyzer()
    const pg = analyzer.analyze('SELECT * FROM orders', 'postgres', defaults)
    const other = analyzer.analyze('SELECT * FROM orders', 'postgres', { database: 'other', schema: 'public' })
    const sf = analyzer.analyze('SELECT * FROM orders', 'snowflake', defaults)
    expect(pg.statements[0]?.tablesRead).toEqual(['analytics.public.orders'])
    expect(other.statements[0]?.tablesRead).toEqual(['other.public.orders'])
    expect(sf).not.toBe(pg)
    expect(sf.dialect).toBe('snowflake')
  })

  it('evicts the least recently used entry when full', async () => {
    const analyzer = await createSqlAnalyzer({ cacheSize: 2 })
    const a = analyzer.analyze('SELECT 1', 'postgres')
    const b = analyzer.analyze('SELECT 2', 'postgres')
    expect(analyzer.analyze('SELECT 1', 'postgres')).toBe(a) // a is now the most recent
    analyzer.analyze('SELECT 3', 'postgres') // evicts b
    expect(analyzer.analyze('SELECT 1', 'postgres')).toBe(a)
    const b2 = analyzer.analyze('SELECT 2', 'postgres')
    expect(b2).not.toBe(b)
    expect(b2).toEqual(b)
  })

  it('with cacheSize 0 still answers, freshly each time', async () => {
    const analyzer = await createSqlAnalyzer({ cacheSize: 0 })
    const a = analyzer.analyze('DELETE FROM t', 'snowflake', defaults)
    const b = analyzer.analyze('DELETE FROM t', 'snowflake', defaults)
    expect(b).not.toBe(a)
    expect(b).toEqual(a)
    expect(Object.isFrozen(b)).toBe(true)
  })

  it('caches parse failures too, frozen, as unknown', async () => {
    const analyzer = await createSqlAnalyzer()
    const a = analyzer.analyze('garbage text', 'snowflake')
    expect(analyzer.analyze('garbage text', 'snowflake')).toBe(a)
    expect(a.statements).toHaveLength(1)
    expect(a.statements[0]?.kind).toBe('unknown')
    expect(a.statements[0]?.parseError).toMatch(/garbage/)
  })

  it('keeps statements up to the cache size limit and never one over it (their trees are many times their text)', async () => {
    const analyzer = await createSqlAnalyzer()
    // `SELECT 1 /* … */` padded to an exact length in characters.
    const sized = (length: number): string => { const head = 'SELECT 1 /* '; return head + 'x'.repeat(length - head.length - 3) + ' */' }
    const atLimit = sized(CACHED_UP_TO)
    const overLimit = sized(CACHED_UP_TO + 1)
    expect([atLimit.length, overLimit.length]).toEqual([CACHED_UP_TO, CACHED_UP_TO + 1])
    const kept = analyzer.analyze(atLimit, 'snowflake')
    expect(analyzer.analyze(atLimit, 'snowflake')).toBe(kept)
    const fresh = analyzer.analyze(overLimit, 'snowflake')
    const again = analyzer.analyze(overLimit, 'snowflake')
    expect(again).not.toBe(fresh)
    expect(again).toEqual(fresh)
    expect(again.statements[0]?.kind).toBe('select')
  })
})
