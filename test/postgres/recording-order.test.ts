// Record, then release, on the PostgreSQL listener: an answer is complete for the client at its
// CommandComplete, so that message leaves only after the round trip's completed event is
// committed; when it cannot be committed the client gets 58000 (SLUICE_RESULT_UNRECORDED) in its
// place and never sees the statement complete. Rows streamed ahead of it are covered by the
// admitted event, committed before the upstream ran anything. The store is made to refuse the
// completed events of marked statements (a trigger), on every path that answers a statement:
// a Query with rows, a Query without, several statements in one Query, an Execute with rows,
// an Execute without, and a portal read in row-limited Executes.
import pg from 'pg'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWireGateway, tappedClient, type WireGateway } from './harness.js'

const MARK = 'unrecordable_7d1f'

let w: WireGateway
beforeAll(async () => {
  w = await startWireGateway()
  await w.events.unsafe(`
    create function refuse_marked_completion() returns trigger language plpgsql as $$
    begin
      if new.phase = 'completed' and new.sql_text like '%${MARK}%' then raise exception 'completion refused by the test'; end if;
      return new;
    end $$;
    create trigger refuse_marked_completion before insert on session_events for each row execute function refuse_marked_completion();`)
}, 120_000)
afterAll(async () => { await w?.close() })


const PATHS: Array<[string, (c: pg.Client) => Promise<unknown>]> = [
  ['Query with rows', (c) => c.query(`select n, '${MARK}' as m from numbers where n <= 3`)],
  ['Query without rows', (c) => c.query(`insert into probe select 1 where '${MARK}' = ''`)],
  ['several statements in one Query', (c) => c.query(`select 1 as one; select n, '${MARK}' as m from numbers where n <= 2`)],
  ['Execute with rows', (c) => c.query(`select n, '${MARK}' as m from numbers where n <= $1`, [3])],
  ['Execute without rows', (c) => c.query(`insert into probe select $1 where '${MARK}' = ''`, [1])]
]

describe('the completed event is committed before CommandComplete', () => {
  for (const [name, run] of PATHS) {
    it(`${name}: 58000 in place of CommandComplete when the completion cannot be recorded`, async () => {
      const { client, since } = await tappedClient(w)
      try {
        const received = since()
        const err = await run(client).catch((e: unknown) => e) as pg.DatabaseError
        expect(err.code).toBe('58000')
        expect(err.detail).toContain('SLUICE_RESULT_UNRECORDED')
        const types = received()
        // Several statements: the first one's answer is whole before the second runs.
        const completes = types.filter((t) => t === 'C').length
        expect(completes).toBe(name.startsWith('several') ? 1 : 0)
        expect(types.at(-1)).toBe('Z')
        // The same session goes on, and an unmarked statement completes.
        expect((await client.query('select 1 as one')).rows).toEqual([{ one: 1 }])
      } finally { await client.end() }
    })
  }

  it('a portal read in row-limited Executes: no CommandComplete for the last batch', async () => {
    const sql = postgres({ host: '127.0.0.1', port: w.port, database: 'app-db', username: 'agent', password: await w.token(), max: 1, fetch_types: false, onnotice: () => {} })
    try {
      let rows = 0
      const err = await (async () => {
        for await (const batch of sql.unsafe(`select n, '${MARK}' as m from numbers where n <= 7`).cursor(3)) rows += batch.length
      })().catch((e: unknown) => e) as { code?: string }
      expect(err.code).toBe('58000')
      expect(rows).toBeLessThan(7)
    } finally { await sql.end({ timeout: 5 }) }
  })

  it('every marked statement stands in the trail as admitted, none as completed', async () => {
    const events = await w.events`select phase from session_events where sql_text like ${'%' + MARK + '%'}`
    expect(events.filter((e) => e.phase === 'admitted').length).toBeGreaterThanOrEqual(PATHS.length + 1)
    expect(events.filter((e) => e.phase === 'completed')).toHaveLength(0)
  })
})
