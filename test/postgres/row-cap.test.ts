// limits.maxRows with maxRowsAction: refuse through the PostgreSQL listener: a result longer
// than the cap is refused before any DataRow reaches the client (as the Snowflake and BigQuery
// front ends refuse it from the upstream's count), on the Simple Query path, the extended
// path, and a portal read with an Execute row limit; a result at the cap is served whole.
// What the client received is read back message by message from its socket.
import pg from 'pg'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWireGateway, tappedClient, type WireGateway } from './harness.js'

const CAP = 10

const CAP_POLICY = `
version: 1
rules:
  - id: agents-capped
    effect: allow
    match: { roles: [agent], kinds: [select] }
    limits: { maxRows: ${CAP}, maxRowsAction: refuse }
masking: []
`

const TRUNCATE_POLICY = CAP_POLICY.replace('maxRowsAction: refuse', 'maxRowsAction: truncate')

let w: WireGateway
let cut: WireGateway
beforeAll(async () => {
  w = await startWireGateway(CAP_POLICY)
  cut = await startWireGateway(TRUNCATE_POLICY)
}, 120_000)
afterAll(async () => {
  await w?.close()
  await cut?.close()
})


describe('maxRowsAction: refuse on the PostgreSQL listener', () => {
  for (const [path, run] of [
    ['simple query', (c: pg.Client) => c.query('select n from numbers')],
    ['extended query', (c: pg.Client) => c.query('select n from numbers where n > $1', [0])]
  ] as const) {
    it(`refuses a longer result before any DataRow (${path}), and the session stays usable`, async () => {
      const { client, since } = await tappedClient(w)
      try {
        const received = since()
        const err = await run(client).catch((e: unknown) => e) as pg.DatabaseError
        expect(err.code).toBe('42501')
        expect(err.message).toContain(`more than ${CAP} rows`)
        expect(err.message).toContain('agents-capped')
        const types = received()
        expect(types).toContain('E')
        expect(types).not.toContain('D')
        // At the cap exactly, the whole result is served.
        const ok = await client.query('select n from numbers where n <= $1 order by n', [CAP])
        expect(ok.rows).toHaveLength(CAP)
        expect((await client.query(`select n from numbers where n <= ${CAP}`)).rows).toHaveLength(CAP)
      } finally { await client.end() }
    })
  }

  it('refuses a portal read in row-limited Executes before its first batch', async () => {
    const sql = postgres({ host: '127.0.0.1', port: w.port, database: 'app-db', username: 'agent', password: await w.token(), max: 1, fetch_types: false, onnotice: () => {} })
    try {
      let batches = 0
      const err = await (async () => {
        for await (const batch of sql`select n from numbers`.cursor(3)) batches += batch.length > 0 ? 1 : 0
      })().catch((e: unknown) => e) as { code?: string, message?: string }
      expect(err.code).toBe('42501')
      expect(err.message).toContain(`more than ${CAP} rows`)
      expect(batches).toBe(0)
      // The same portal read at the cap is served in its batches.
      let rows = 0
      for await (const batch of sql`select n from numbers where n <= ${CAP}`.cursor(3)) rows += batch.length
      expect(rows).toBe(CAP)
    } finally { await sql.end({ timeout: 5 }) }
  })

  it('records the refusal, and no rows as returned', async () => {
    const events = await w.events`
      select error_code, rows_returned from session_events
      where front_end = 'postgres-wire' and outcome <> 'admitted' and error_code = 'SLUICE_ROWS_LIMIT'`
    expect(events.length).toBeGreaterThanOrEqual(3)
    for (const e of events) expect(e.rows_returned === null || Number(e.rows_returned) === 0).toBe(true)
  })
})

describe('maxRowsAction: truncate on the PostgreSQL listener', () => {
  for (const [path, text, values] of [['simple query', 'select n from numbers order by n', undefined], ['extended query', 'select n from numbers where n > $1 order by n', [0]]] as const) {
    it(`serves the first ${CAP} rows and says the result was cut (${path})`, async () => {
      const client = new pg.Client({ host: '127.0.0.1', port: cut.port, database: 'app-db', user: 'agent', password: await cut.token() })
      const notices: string[] = []
      client.on('notice', (n) => notices.push(n.message ?? ''))
      await client.connect()
      try {
        const r = await client.query(text, values as unknown[] | undefined)
        expect(r.rows.map((row) => row.n)).toEqual(Array.from({ length: CAP }, (_, i) => i + 1))
        expect(notices.join('\n')).toContain(`limited to its first ${CAP} rows by rule agents-capped`)
      } finally { await client.end() }
    })
  }

  it('records the cut in the trail, counting only the rows the client was sent', async () => {
    const events = await cut.events`
      select reason, rows_returned from session_events
      where front_end = 'postgres-wire' and outcome = 'ok' and rule_id = 'agents-capped'`
    expect(events.length).toBeGreaterThanOrEqual(2)
    for (const e of events) {
      expect(e.reason).toContain(`result limited to ${CAP} rows by rule agents-capped (limits.maxRows)`)
      expect(Number(e.rows_returned)).toBe(CAP)
    }
  })
})
