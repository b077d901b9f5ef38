// The rule's limits on the query tool are the pipeline's (src/pipeline/run.ts), as on every wire
// front end: a statement past its statementTimeoutSeconds is stopped upstream and answered as a
// timeout, and a result past maxRows is cut and announced (truncate) or refused whole (refuse),
// each recorded in the trail. Real PostgreSQL upstream, official MCP client.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMcpGateway, type McpGateway } from './harness.js'

const RULES = `  - id: pg-slow-limit
    effect: allow
    match: { roles: [agent], kinds: [select], connections: [pg], tables: ['*.*.series_slow'] }
    limits: { statementTimeoutSeconds: 1 }
  - id: pg-cut
    effect: allow
    match: { roles: [agent], kinds: [select], connections: [pg], tables: ['*.*.series_cut'] }
    limits: { maxRows: 3 }
  - id: pg-refuse
    effect: allow
    match: { roles: [agent], kinds: [select], connections: [pg], tables: ['*.*.series_refused'] }
    limits: { maxRows: 3, maxRowsAction: refuse }
`

type Result = Awaited<ReturnType<Client['callTool']>>
const textOf = (r: Result): string => (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n')

describe('the rule\'s limits on the MCP query tool', { timeout: 180_000 }, () => {
  let env: McpGateway
  let client: Client
  let direct: postgres.Sql

  beforeAll(async () => {
    env = await startMcpGateway({ rules: RULES })
    client = await env.connect(await env.agentToken())
    direct = postgres(env.upstream.url, { max: 1, onnotice: () => {} })
    await direct`create or replace view series_cut as select g as n from generate_series(1, 10) g`
    await direct`create or replace view series_slow as select count(*) as n from generate_series(1, 100000000000) as g`
    await direct`create or replace view series_refused as select g as n from generate_series(1, 10) g`
  }, 120_000)
  afterAll(async () => {
    await direct?.end({ timeout: 5 })
    await env?.close()
  })

  it('stops a statement past its timeout upstream and answers the timeout, recorded', async () => {
    const sql = 'SELECT n FROM series_slow'
    const started = Date.now()
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(result.isError).toBe(true)
    expect(textOf(result)).toMatch(/timeout of 1 second\(s\)/)
    // Nothing keeps running upstream once the call was answered.
    let running = 1
    for (let i = 0; i < 50 && running > 0; i++) {
      running = (await direct`select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%series_slow%' and pid <> pg_backend_pid()`)[0]?.n as number
      if (running > 0) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(running).toBe(0)
    const events = await env.events<Array<{ phase: string, error_code: string | null }>>`
      select phase, error_code from session_events where sql_text = ${sql} order by seq`
    expect(events.map((e) => e.phase)).toEqual(['admitted', 'completed'])
    expect(events[1]?.error_code).toBe('SLUICE_STATEMENT_TIMEOUT')
  })

  it('cuts a result at maxRows, says so, and records that it was limited', async () => {
    const sql = 'SELECT n FROM series_cut ORDER BY n'
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(result.isError, textOf(result)).not.toBe(true)
    const out = result.structuredContent as { rows: unknown[][], truncated: boolean, notice?: string }
    expect(out.rows.map((r) => Number(r[0]))).toEqual([1, 2, 3])
    expect(out.truncated).toBe(true)
    expect(out.notice).toMatch(/limited to its first 3 rows by rule pg-cut/)
    const events = await env.events<Array<{ rows_returned: number | null }>>`
      select rows_returned from session_events where sql_text = ${sql} and phase = 'completed'`
    expect(events.map((e) => Number(e.rows_returned))).toEqual([3])
  })

  it('refuses a result past maxRows whole under maxRowsAction refuse, and lets one at the cap through', async () => {
    const refused = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql: 'SELECT n FROM series_refused' } })
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toMatch(/more than 3 rows/)
    expect(JSON.stringify(refused.structuredContent ?? {})).not.toMatch(/"rows"/)
    const atCap = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql: 'SELECT n FROM series_refused WHERE n <= 3' } })
    expect(atCap.isError, textOf(atCap)).not.toBe(true)
    expect((atCap.structuredContent as { rows: unknown[][] }).rows).toHaveLength(3)
  })

  it('refuses a statement over policies.maxStatementBytes as too large in a tool error, recorded, no rows', async () => {
    const list = Array.from({ length: 200_000 }, (_, i) => String(i)).join(', ')
    const sql = `SELECT n FROM series_cut WHERE n IN (${list})`
    expect(sql.length).toBeGreaterThan(1024 * 1024)
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toMatch(/more than the 1048576 bytes Sluice accepts \(policies\.maxStatementBytes\)/)
    const events = await env.events<Array<{ error_code: string | null, rows_returned: string | null }>>`select error_code, rows_returned from session_events where sql_text = ${sql}`
    expect(events.map((e) => e.error_code)).toContain('SLUICE_STATEMENT_TOO_LARGE')
    expect(events.map((e) => e.rows_returned ?? null).filter((n) => n !== null && Number(n) > 0)).toEqual([])
  })

  it('refuses nesting deeper than the parser allows as too complex in a tool error, recorded, no rows', async () => {
    const sql = `SELECT n FROM series_cut WHERE n = ${'('.repeat(300)}1${')'.repeat(300)}`
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(result.isError).toBe(true)
    expect(textOf(result)).toContain('too complex for Sluice to analyse')
    const events = await env.events<Array<{ error_code: string | null, rows_returned: string | null }>>`select error_code, rows_returned from session_events where sql_text = ${sql}`
    expect(events.map((e) => e.error_code)).toContain('SLUICE_STATEMENT_TOO_COMPLEX')
    expect(events.map((e) => e.rows_returned ?? null).filter((n) => n !== null && Number(n) > 0)).toEqual([])
  })
})
