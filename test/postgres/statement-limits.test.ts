// Statement limits through the PostgreSQL front end (node-postgres, simple and extended
// protocol): a statement over policies.maxStatementBytes, or nested deeper than the parser
// allows, is refused with the SQLSTATE the listener maps it to, recorded, never run upstream,
// and the connection stays usable for the next statement.
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agentClient, startWireGateway, type WireGateway } from './harness.js'

const MiB = 1024 * 1024

/** `INSERT INTO probe SELECT n FROM numbers WHERE n IN (1, 2, …)` of at least `bytes` bytes. */
function inList (bytes: number): string {
  const head = 'INSERT INTO probe SELECT n FROM numbers WHERE n IN ('
  const parts: string[] = []
  let size = head.length + 1
  for (let i = 1; size < bytes; i++) {
    const item = String(i)
    parts.push(item)
    size += item.length + 2
  }
  return `${head}${parts.join(', ')})`
}

type PgError = Error & { code?: string }

describe('statement limits through the PostgreSQL front end', { timeout: 120_000 }, () => {
  let w: WireGateway
  let client: pg.Client

  beforeAll(async () => {
    w = await startWireGateway()
    client = await agentClient(w)
  })
  afterAll(async () => {
    await client?.end()
    await w?.close()
  })

  async function recorded (sql: string): Promise<Array<string | null>> {
    const rows = await w.events<Array<{ error_code: string | null }>>`select error_code from session_events where sql_text = ${sql}`
    return rows.map((r) => r.error_code)
  }

  // Each refused statement is an INSERT the policy allows: had it run, probe would have rows.
  async function probeRows (): Promise<number> {
    const rows = await w.direct<Array<{ n: number }>>`select count(*)::int as n from probe`
    return rows[0]?.n ?? -1
  }

  it('runs the same INSERT when it is small and flat (the probe the refusals are checked by)', async () => {
    await client.query('INSERT INTO probe SELECT n FROM numbers WHERE n IN (1, 2)')
    expect(await probeRows()).toBe(2)
    await w.direct`delete from probe`
  })

  for (const mode of ['simple', 'extended'] as const) {
    it(`refuses a statement over 1 MiB as too large (54000), recorded, never run (${mode} protocol)`, async () => {
      const sql = inList(MiB + 16) + (mode === 'simple' ? '' : ' AND n > $1')
      const err = await (mode === 'simple' ? client.query(sql) : client.query(sql, [0])).then(() => undefined, (e: PgError) => e)
      expect(err?.code).toBe('54000')
      expect(err?.message).toMatch(/more than the 1048576 bytes Sluice accepts \(policies\.maxStatementBytes\)/)
      expect(await recorded(sql)).toContain('SLUICE_STATEMENT_TOO_LARGE')
      expect(await probeRows()).toBe(0)
      expect((await client.query('SELECT count(*)::int AS n FROM numbers')).rows).toEqual([{ n: 5000 }])
    })

    it(`refuses nesting deeper than the parser allows as too complex (54001), recorded, never run (${mode} protocol)`, async () => {
      const sql = `INSERT INTO probe SELECT n FROM numbers WHERE n = ${'('.repeat(300)}1${')'.repeat(300)}` + (mode === 'simple' ? '' : ' AND n > $1')
      const err = await (mode === 'simple' ? client.query(sql) : client.query(sql, [0])).then(() => undefined, (e: PgError) => e)
      expect(err?.code).toBe('54001')
      expect(err?.message).toContain('too complex for Sluice to analyse')
      expect(await recorded(sql)).toContain('SLUICE_STATEMENT_TOO_COMPLEX')
      expect(await probeRows()).toBe(0)
      expect((await client.query('SELECT n FROM numbers WHERE n = 7')).rows).toEqual([{ n: 7 }])
    })
  }
})
