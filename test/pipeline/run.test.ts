// The run of an admitted statement (src/pipeline/run.ts): the rule's timeout and row cap as
// every front end gets them, on a plain pipeline stand-in that releases pages as they are.
import { describe, expect, it } from 'vitest'
import { StatementRun, type RunPipeline } from '../../src/pipeline/run.js'
import type { RoundTrip } from '../../src/pipeline.js'
import type { Admission, NeutralResult, ResultPage, Statement } from '../../src/pipeline/types.js'

const statement = {
  requestId: 'r1', frontEnd: 'test', sql: 'SELECT * FROM t', client: {},
  principal: { subject: 'a', type: 'machine', groups: [], roles: [] },
  connection: { name: 'wh', kind: 'snowflake', defaults: {} }
} as unknown as Statement

const released: string[] = []
const pipeline: RunPipeline = {
  release: (_s, _a, result) => result,
  releaseError: (_s, _a, message) => { released.push(message); return `[released] ${message}` }
}

function admission (limits: Admission['decision']['limits']): Admission {
  return {
    analysis: { dialect: 'snowflake', statements: [{ kind: 'select', text: 'SELECT * FROM t', tablesRead: [], tablesWritten: [], functions: [], hasLimit: false }] },
    decision: { effect: 'allow', ruleId: 'rule-1', reason: 'allowed', limits }
  }
}

function result (pageSizes: number[]): NeutralResult {
  let n = 0
  async function * pages (): AsyncIterable<ResultPage> {
    for (const size of pageSizes) yield { rows: Array.from({ length: size }, () => [n++]) }
  }
  return { schema: { columns: [{ name: 'N', type: 'FIXED' }] }, pages: pages() }
}

async function drain (res: NeutralResult): Promise<number[]> {
  const out: number[] = []
  for await (const page of res.pages) for (const row of page.rows) out.push(row[0] as number)
  return out
}

describe('the rule\'s timeout, kept by the run', () => {
  it('has no deadline and no signal when the rule sets no timeout and the client none', () => {
    const run = new StatementRun(pipeline, statement, admission({}), {})
    expect(run.timeoutSeconds).toBeUndefined()
    expect(run.remainingMs()).toBeUndefined()
    expect(run.signal).toBeUndefined()
    expect(run.expired()).toBe(false)
  })

  it('counts from when the statement started, for a later request that carries it on', () => {
    const run = new StatementRun(pipeline, statement, admission({ statementTimeoutSeconds: 60 }), {}, { startedAt: Date.now() - 45_000 })
    const left = run.remainingMs() as number
    expect(left).toBeGreaterThan(10_000)
    expect(left).toBeLessThanOrEqual(15_000)
    run.close()
  })

  it('has run out at once for a statement started longer ago than its timeout', async () => {
    const run = new StatementRun(pipeline, statement, admission({ statementTimeoutSeconds: 1 }), {}, { startedAt: Date.now() - 5_000 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(run.remainingMs()).toBe(0)
    expect(run.expired()).toBe(true)
    expect(run.signal?.aborted).toBe(true)
  })

  it('aborts the upstream call when it runs out and answers the timeout, naming the connection', async () => {
    const run = new StatementRun(pipeline, statement, admission({ statementTimeoutSeconds: 1 }), {})
    const stalled = run.upstream(async (signal) => await new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => { reject(new Error('aborted upstream')) })
    }))
    await expect(stalled).rejects.toMatchObject({ code: 'SLUICE_STATEMENT_TIMEOUT' })
    await expect(stalled).rejects.toThrow(/timeout of 1 second\(s\).*connection wh/)
  })

  it('tells a client\'s cancel from the timeout: the client\'s is the call\'s own failure', async () => {
    const client = new AbortController()
    const run = new StatementRun(pipeline, statement, admission({ statementTimeoutSeconds: 60 }), {}, { signal: client.signal })
    const call = run.upstream(async (signal) => await new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => { reject(new Error('cancelled by the client')) })
    }), (err) => new Error(`wrapped: ${(err as Error).message}`))
    client.abort()
    await expect(call).rejects.toThrow('wrapped: cancelled by the client')
    expect(run.expired()).toBe(false)
    run.close()
  })

  it('cancels a statement still running when the timeout runs out, and not one that ended', async () => {
    const run = new StatementRun(pipeline, statement, admission({ statementTimeoutSeconds: 1 }), {})
    const cancelled: string[] = []
    run.onExpiry(new Promise(() => {}), () => { cancelled.push('running') })
    run.onExpiry(Promise.resolve(), () => { cancelled.push('ended') })
    await new Promise((resolve) => setTimeout(resolve, 1_300))
    expect(cancelled).toEqual(['running'])
  })
})

describe('the rule\'s row cap, kept by the run', () => {
  it('refuses a result whose known total is past maxRows under maxRowsAction refuse, recording nothing released', () => {
    const trip: RoundTrip = { rowsReturned: 3 }
    const run = new StatementRun(pipeline, statement, admission({ maxRows: 5, maxRowsAction: 'refuse' }), trip)
    expect(run.checkTotal(5)).toBe(false)
    expect(() => run.checkTotal(6)).toThrow(expect.objectContaining({ code: 'SLUICE_ROWS_LIMIT' }) as Error)
    expect(trip.rowsReturned).toBeUndefined()
  })

  it('says a known total runs into a truncating cap, and `limited` records and words it', () => {
    const trip: RoundTrip = {}
    const run = new StatementRun(pipeline, statement, admission({ maxRows: 5 }), trip)
    expect(run.checkTotal(9)).toBe(true)
    expect(run.limited()).toMatch(/limited to its first 5 rows by rule rule-1 \(limits.maxRows\)/)
    expect(trip.rowsLimited).toEqual({ rows: 5, by: 'maxRows', rule: 'rule-1' })
  })

  it.each([
    { pages: [3, 3, 3], cap: 5, rows: 5, limited: true },
    { pages: [5, 4], cap: 5, rows: 5, limited: true },
    { pages: [5], cap: 5, rows: 5, limited: false },
    { pages: [2, 0, 2], cap: 5, rows: 4, limited: false },
    { pages: [7], cap: 1, rows: 1, limited: true }
  ])('cuts pages $pages at $cap rows (limited: $limited) and stops the upstream when rows are left', async ({ pages, cap, rows, limited }) => {
    const trip: RoundTrip = {}
    const run = new StatementRun(pipeline, statement, admission({ maxRows: cap }), trip)
    let stopped = 0
    const got = await drain(run.capped(result(pages), () => { stopped++ }))
    expect(got).toEqual(Array.from({ length: rows }, (_, i) => i))
    expect(trip.rowsLimited !== undefined).toBe(limited)
    expect(stopped).toBe(limited ? 1 : 0)
  })

  it('refuses a cursor at its first row past the cap under maxRowsAction refuse', async () => {
    const run = new StatementRun(pipeline, statement, admission({ maxRows: 4, maxRowsAction: 'refuse' }), {})
    await expect(drain(run.capped(result([3, 3])))).rejects.toMatchObject({ code: 'SLUICE_ROWS_LIMIT' })
    const exact = new StatementRun(pipeline, statement, admission({ maxRows: 4, maxRowsAction: 'refuse' }), {})
    expect(await drain(exact.capped(result([2, 2])))).toEqual([0, 1, 2, 3])
  })

  it('leaves a result alone when the rule sets no cap', async () => {
    const run = new StatementRun(pipeline, statement, admission({}), {})
    expect(await drain(run.capped(result([4, 4])))).toHaveLength(8)
  })
})

describe('upstream error texts, released by the run', () => {
  it('passes the warehouse\'s text through the pipeline\'s release', () => {
    const run = new StatementRun(pipeline, statement, admission({}), {})
    expect(run.releaseError('bad value 123-45-6789')).toBe('[released] bad value 123-45-6789')
    expect(released).toContain('bad value 123-45-6789')
  })
})
