// limits.statementTimeoutSeconds through the PostgreSQL listener: Sluice cancels an upstream
// statement that runs past the rule's timeout, and the client gets 57014 as from PostgreSQL's own
// statement_timeout, on the Simple Query path and the extended one; the session stays usable.
// Each statement of a Query has the whole timeout to itself, and a statement that finished in
// time leaves nothing behind that could cancel a later one.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agentClient, startWireGateway, type WireGateway } from './harness.js'

const TIMEOUT_SECONDS = 4

const TIMEOUT_POLICY = `
version: 1
rules:
  - id: agents-timed
    effect: allow
    match: { roles: [agent], kinds: [select, call] }
    limits: { statementTimeoutSeconds: ${TIMEOUT_SECONDS} }
masking: []
`

let w: WireGateway
beforeAll(async () => { w = await startWireGateway(TIMEOUT_POLICY) }, 120_000)
afterAll(async () => { await w?.close() })


const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('statementTimeoutSeconds on the PostgreSQL listener', () => {
  for (const [path, run] of [
    ['simple query', (c: pg.Client) => c.query('select pg_sleep(60)')],
    ['extended query', (c: pg.Client) => c.query('select pg_sleep($1)', [60])]
  ] as const) {
    it(`cancels a statement past the rule's timeout with 57014 (${path}), and the session stays usable`, async () => {
      const client = await agentClient(w)
      try {
        const started = Date.now()
        const err = await run(client).catch((e: unknown) => e) as pg.DatabaseError
        expect(err.code).toBe('57014')
        const took = Date.now() - started
        expect(took).toBeGreaterThanOrEqual(TIMEOUT_SECONDS * 1000 - 100)
        expect(took).toBeLessThan(TIMEOUT_SECONDS * 1000 + 10_000)
        expect((await client.query('select 2 as two')).rows).toEqual([{ two: 2 }])
      } finally { await client.end() }
    }, 30_000)
  }

  it('gives each statement of a Query the whole timeout', async () => {
    const client = await agentClient(w)
    try {
      const half = TIMEOUT_SECONDS * 0.6
      const results = await client.query(`select pg_sleep(${half}) as a; select pg_sleep(${half}) as b`) as unknown as pg.QueryResult[]
      expect(results.map((r) => Object.keys(r.rows[0] as object))).toEqual([['a'], ['b']])
    } finally { await client.end() }
  }, 30_000)

  it('does not cancel a later statement when the timeout of one that finished in time runs out', async () => {
    const client = await agentClient(w)
    try {
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }])
      await sleep(TIMEOUT_SECONDS * 500)
      // Runs across the moment the first statement's timeout would have run out.
      const r = await client.query(`select pg_sleep(${TIMEOUT_SECONDS * 0.6}) as slept`)
      expect(r.rows).toHaveLength(1)
    } finally { await client.end() }
  }, 30_000)
})
