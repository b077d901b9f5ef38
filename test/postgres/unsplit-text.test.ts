// A text the parser cannot read is one statement of kind `unknown` to the policy, and runs only
// under a rule that explicitly allows `unknown`. Even then it cannot carry a second statement
// past that decision: the listener sends every statement upstream with the extended protocol
// (Parse / Bind / Execute, a simple Query included), and PostgreSQL takes one command per Parse.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agentClient, startWireGateway, type WireGateway } from './harness.js'

const POLICY = `
version: 1
rules:
  - id: agents-all
    effect: allow
    match: { roles: [agent], kinds: [select, insert, unknown] }
`

// DO blocks are PostgreSQL's own; the SQL parser does not read them.
const ONE_UNREAD = 'do $$ begin insert into probe values (7); end $$'
const UNREAD_THEN_INSERT = 'do $$ begin perform 1; end $$; insert into probe values (42)'

let w: WireGateway

beforeAll(async () => { w = await startWireGateway(POLICY) }, 120_000)
afterAll(async () => { await w?.close() })


const probe = async (): Promise<number[]> => (await w.direct<Array<{ n: number }>>`select n from probe order by n`).map((r) => r.n)

describe('a text the parser cannot split, through the PostgreSQL listener', () => {
  it('runs a single unread statement the policy allows as unknown', async () => {
    const client = await agentClient(w)
    try {
      await client.query(ONE_UNREAD)
    } finally { await client.end() }
    expect(await probe()).toEqual([7])
  })

  it('refuses one that holds a second statement, and runs neither', async () => {
    const client = await agentClient(w)
    try {
      const err = await client.query(UNREAD_THEN_INSERT).catch((e: unknown) => e) as pg.DatabaseError
      expect(err.code).toBe('42601')
      expect(err.message).toMatch(/multiple commands/)
      // The session goes on.
      expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }])
    } finally { await client.end() }
    expect(await probe()).toEqual([7])
  })
})
