// Suspended portals live as long as PostgreSQL keeps them: a named portal read with Execute row
// limits survives other statements run meanwhile (another Parse / Bind / Execute on the unnamed
// statement, a Simple Query inside a transaction block, another suspended portal), and is gone
// when its transaction ends (Sync outside a block, COMMIT). Each scenario is sent as raw
// protocol messages over a node-postgres connection, once straight to the machine's PostgreSQL
// and once through Sluice, and the two message sequences must be the same.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_SUSPENDED_PORTALS } from '../../src/frontends/postgres/session.js'
import { startWireGateway, type WireGateway } from './harness.js'

let w: WireGateway
beforeAll(async () => { w = await startWireGateway() }, 120_000)
afterAll(async () => { await w?.close() })

interface Con {
  parse: (m: { name?: string, text: string, types?: number[] }) => void
  bind: (m: { portal?: string, statement?: string, values?: unknown[] }) => void
  execute: (m: { portal?: string, rows?: number }) => void
  close: (m: { type: 'P' | 'S', name?: string }) => void
  query: (text: string) => void
  sync: () => void
  flush: () => void
  on: (event: string, fn: (msg: Record<string, unknown>) => void) => void
  removeAllListeners: (event: string) => void
}

type Step = (c: Con) => void
/** A scenario: groups of messages, each group answered by one ReadyForQuery. */
type Scenario = Step[]

const CLIENT_EVENTS = ['rowDescription', 'dataRow', 'portalSuspended', 'emptyQuery', 'commandComplete', 'parseComplete',
  'readyForQuery', 'errorMessage', 'copyInResponse', 'copyData', 'notice', 'noData']

/** Runs the scenario on a fresh connection; the messages received, as comparable lines. */
async function run (config: pg.ClientConfig, scenario: Scenario): Promise<string[]> {
  const client = new pg.Client(config)
  client.on('error', () => {})
  await client.connect()
  const con = (client as unknown as { connection: Con }).connection
  // The client's own handlers would take these messages as answers to queries it never sent.
  for (const event of CLIENT_EVENTS) con.removeAllListeners(event)
  const seen: string[] = []
  let ready: (() => void) | undefined
  con.on('message', (m) => {
    switch (m.name) {
      case 'dataRow': seen.push(`D ${JSON.stringify(m.fields)}`); break
      case 'commandComplete': seen.push(`C ${String(m.text)}`); break
      case 'portalSuspended': seen.push('s'); break
      case 'error': seen.push(`E ${String(m.code)}`); break
      case 'readyForQuery': seen.push(`Z ${String(m.status)}`); ready?.(); break
      case 'rowDescription': seen.push(`T ${(m.fields as Array<{ name: string }>).map((f) => f.name).join(',')}`); break
      case 'parseComplete': seen.push('1'); break
      case 'bindComplete': seen.push('2'); break
      case 'closeComplete': seen.push('3'); break
      case 'noData': seen.push('n'); break
      case 'notice': case 'parameterStatus': break
      default: seen.push(String(m.name))
    }
  })
  try {
    for (const step of scenario) {
      const answered = new Promise<void>((resolve) => { ready = resolve })
      step(con)
      await answered
    }
  } finally {
    await client.end().catch(() => {})
  }
  return seen
}

const numbers = (upTo: number): string => `select n from numbers where n <= ${upTo} order by n`

const SCENARIOS: Record<string, Scenario> = {
  'another Parse / Bind / Execute on the unnamed statement between Executes of a named portal': [
    (c) => {
      c.parse({ name: 'five', text: numbers(5) })
      c.bind({ portal: 'p1', statement: 'five' })
      c.execute({ portal: 'p1', rows: 2 })
      c.parse({ text: 'select 42 as x' })
      c.bind({})
      c.execute({})
      c.execute({ portal: 'p1', rows: 2 })
      c.execute({ portal: 'p1', rows: 0 })
      // A portal read to its end answers again with no rows.
      c.execute({ portal: 'p1', rows: 0 })
      c.sync()
    },
    // Sync outside a block ended the implicit transaction: the portal is gone.
    (c) => { c.execute({ portal: 'p1', rows: 1 }); c.sync() }
  ],
  'two suspended portals read in turns': [
    (c) => {
      c.parse({ name: 'four', text: numbers(4) })
      c.bind({ portal: 'a', statement: 'four' })
      c.bind({ portal: 'b', statement: 'four' })
      c.execute({ portal: 'a', rows: 1 })
      c.execute({ portal: 'b', rows: 2 })
      c.execute({ portal: 'a', rows: 2 })
      c.execute({ portal: 'b', rows: 0 })
      c.execute({ portal: 'a', rows: 0 })
      c.sync()
    }
  ],
  'a Simple Query and a Sync inside a transaction block, then COMMIT': [
    (c) => { c.query('begin') },
    (c) => {
      c.parse({ name: 'six', text: numbers(6) })
      c.bind({ portal: 'p2', statement: 'six' })
      c.execute({ portal: 'p2', rows: 2 })
      c.sync()
    },
    (c) => { c.query('select 7 as y') },
    (c) => { c.execute({ portal: 'p2', rows: 2 }); c.sync() },
    (c) => { c.execute({ portal: 'p2', rows: 0 }); c.sync() },
    (c) => { c.query('commit') },
    // The transaction ended, and the portal with it.
    (c) => { c.execute({ portal: 'p2', rows: 1 }); c.sync() }
  ],
  'a portal closed while suspended': [
    (c) => {
      c.parse({ name: 'three', text: numbers(3) })
      c.bind({ portal: 'p3', statement: 'three' })
      c.execute({ portal: 'p3', rows: 1 })
      c.close({ type: 'P', name: 'p3' })
      c.parse({ text: 'select 1 as one' })
      c.bind({})
      c.execute({})
      c.execute({ portal: 'p3', rows: 1 })
      c.sync()
    },
    (c) => { c.query('select 2 as two') }
  ]
}

describe('suspended portals, through Sluice as on PostgreSQL', () => {
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const direct = await run({ connectionString: w.upstream.url }, scenario)
      const through = await run({ host: '127.0.0.1', port: w.port, database: 'app-db', user: 'agent', password: await w.token() }, scenario)
      expect(through).toEqual(direct)
      // Not vacuous: the portal gave rows after other work ran in between.
      expect(direct.filter((l) => l.startsWith('D ')).length).toBeGreaterThanOrEqual(3)
    })
  }

  it(`keeps at most ${MAX_SUSPENDED_PORTALS} suspended portals per session (54000 past them), and goes on after a Close`, async () => {
    const opened = Array.from({ length: MAX_SUSPENDED_PORTALS }, (_, i) => `q${i}`)
    const lines = await run({ host: '127.0.0.1', port: w.port, database: 'app-db', user: 'agent', password: await w.token() }, [
      (c) => { c.query('begin') },
      (c) => {
        c.parse({ name: 'two', text: numbers(2) })
        for (const p of [...opened, 'extra']) { c.bind({ portal: p, statement: 'two' }); c.execute({ portal: p, rows: 1 }) }
        c.sync()
      },
      (c) => { c.close({ type: 'P', name: 'q0' }); c.bind({ portal: 'after-close', statement: 'two' }); c.execute({ portal: 'after-close', rows: 1 }); c.sync() },
      (c) => { c.query('rollback') }
    ])
    const answers = lines.filter((l) => l === 's' || l.startsWith('E '))
    expect(answers).toEqual([...opened.map(() => 's'), 'E 54000', 's'])
  })

  it('records each portal read as one round trip, completed', async () => {
    const events = await w.events`
      select phase, rows_returned from session_events
      where front_end = 'postgres-wire' and sql_text = ${numbers(5)} and phase is not null`
    expect(events.filter((e) => e.phase === 'admitted')).toHaveLength(1)
    const completed = events.filter((e) => e.phase === 'completed')
    expect(completed).toHaveLength(1)
    expect(Number(completed[0]?.rows_returned)).toBe(5)
  })
})
