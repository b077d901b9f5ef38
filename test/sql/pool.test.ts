// The parser pool: statements are analysed on worker threads, each within a budget; a thread
// over budget is terminated and replaced, and the statement after it is analysed as usual.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createPooledAnalyzer, type AsyncSqlAnalyzer } from '../../src/sql/pooled-analyzer.js'
import { treeOf } from '../../src/sql/ast.js'
import { attachedTextFacts, textFactsOf } from '../../src/recording/text-facts.js'

// ~1 MB: takes the parser seconds, far past a 250 ms deadline.
const HUGE_IN_LIST = `SELECT id FROM s.t WHERE id IN (${Array.from({ length: 150_000 }, (_, k) => String(k)).join(', ')})`

let analyzer: AsyncSqlAnalyzer | undefined
afterEach(async () => { await analyzer?.close(); analyzer = undefined })

describe('parser pool', () => {
  it('analyses on a worker thread and keeps the parse tree for lineage', async () => {
    analyzer = createPooledAnalyzer({ workers: 1 })
    const analysis = await analyzer.analyze('SELECT a FROM t WHERE b = 1', 'snowflake', { database: 'DB', schema: 'S' })
    expect(analysis.statements).toMatchObject([{ kind: 'select', tablesRead: ['db.s.t'] }])
    expect(Object.isFrozen(analysis.statements[0])).toBe(true)
    expect(Object.keys(treeOf(analysis.statements[0]!) ?? {})).toEqual(['Query'])
    // Cached: the same frozen object again.
    expect(await analyzer.analyze('SELECT a FROM t WHERE b = 1', 'snowflake', { database: 'DB', schema: 'S' })).toBe(analysis)
  })

  it('computes the text facts the trail keeps on the thread, for exactly the text analysed', async () => {
    analyzer = createPooledAnalyzer({ workers: 1 })
    const sql = "SELECT name FROM s.customers WHERE email = 'a@b.c' AND id IN (1, 2, 3)"
    const analysis = await analyzer.analyze(sql, 'snowflake')
    expect(attachedTextFacts(analysis, sql)).toMatchObject(textFactsOf(sql))
    expect(attachedTextFacts(analysis, `${sql} `)).toBeUndefined()
  })

  it('terminates a thread past its deadline, refuses that statement, and analyses the next one on a fresh thread', async () => {
    analyzer = createPooledAnalyzer({ workers: 1, timeoutMs: 250 })
    await analyzer.analyze('SELECT 1', 'snowflake') // the thread is up
    await expect(analyzer.analyze(HUGE_IN_LIST, 'snowflake')).rejects.toMatchObject({
      code: 'SLUICE_STATEMENT_TOO_COMPLEX',
      statusCode: 400,
      message: expect.stringContaining('parsing took longer than 250 ms')
    })
    expect(analyzer.pool.replaced).toBe(1)
    const next = await analyzer.analyze('SELECT a FROM s.t2', 'bigquery', { database: 'p' })
    expect(next.statements).toMatchObject([{ kind: 'select', tablesRead: ['p.s.t2'] }])
  })

  it('statements queued behind one over budget are analysed, not refused', async () => {
    analyzer = createPooledAnalyzer({ workers: 1, timeoutMs: 250 })
    const slow = analyzer.analyze(HUGE_IN_LIST, 'postgres')
    const queued = analyzer.analyze('DELETE FROM t WHERE a = 1', 'postgres')
    await expect(slow).rejects.toMatchObject({ code: 'SLUICE_STATEMENT_TOO_COMPLEX' })
    expect((await queued).statements).toMatchObject([{ kind: 'delete' }])
  })

  it('runs one thread while idle, starts another while statements wait, and stops it after its idle time', async () => {
    analyzer = createPooledAnalyzer({ workers: 2, idleMs: 300, cacheSize: 0 })
    expect(analyzer.pool.threads).toBe(1)
    await analyzer.analyze('SELECT 1', 'snowflake') // the warm thread is up
    const both = await Promise.all([
      analyzer.analyze('SELECT a FROM s.t1', 'snowflake', { database: 'd' }),
      analyzer.analyze('SELECT b FROM s.t2', 'snowflake', { database: 'd' })
    ])
    expect(both.map((a) => a.statements[0]!.tablesRead)).toEqual([['d.s.t1'], ['d.s.t2']])
    expect(analyzer.pool.threads).toBe(2)
    await vi.waitFor(() => { expect(analyzer!.pool.threads).toBe(1) }, { timeout: 10_000, interval: 50 })
    expect((await analyzer.analyze('SELECT c FROM s.t3', 'snowflake', { database: 'd' })).statements[0]!.tablesRead).toEqual(['d.s.t3'])
  })

  it('starts a spare thread beside a long statement, so a short one sent meanwhile does not wait for it', async () => {
    analyzer = createPooledAnalyzer({ workers: 2, timeoutMs: 60_000, cacheSize: 0 })
    await analyzer.analyze('SELECT 1', 'snowflake')
    expect(analyzer.pool.threads).toBe(1)
    const long = analyzer.analyze(HUGE_IN_LIST, 'snowflake', { database: 'd' })
    expect(analyzer.pool.threads).toBe(2)
    const short = await analyzer.analyze('SELECT a FROM s.t2', 'snowflake', { database: 'd' })
    expect(short.statements[0]!.tablesRead).toEqual(['d.s.t2'])
    expect((await long).statements[0]!.tablesRead).toEqual(['d.s.t'])
  }, 120_000)

  it('replaces a thread that a huge statement left with a large WebAssembly memory, after it answered', async () => {
    analyzer = createPooledAnalyzer({ workers: 1, timeoutMs: 60_000, cacheSize: 0 })
    await analyzer.analyze('SELECT 1', 'snowflake')
    expect(analyzer.pool.recycled).toBe(0)
    const huge = await analyzer.analyze(HUGE_IN_LIST, 'snowflake', { database: 'd' })
    expect(huge.statements[0]!.tablesRead).toEqual(['d.s.t'])
    expect(analyzer.pool.recycled).toBe(1)
    expect(analyzer.pool.replaced).toBe(0)
    expect((await analyzer.analyze('SELECT a FROM s.t2', 'snowflake', { database: 'd' })).statements[0]!.tablesRead).toEqual(['d.s.t2'])
    expect(analyzer.pool.recycled).toBe(1)
  }, 120_000)
})
