// snowflake-connector-python → Sluice (connector protocol front end) → fakesnow. The script
// (test/snowflake/python/connector_client.py) uses host/port/protocol, authenticator 'oauth'
// and the agent's OIDC token; nothing else differs from connecting to Snowflake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, denyKeyword, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { runPython } from '../support/snowflake-python.js'

type Outcome = Record<string, unknown> & { error?: { type: string, errno: number | null, sqlstate: string | null, msg: string } }

describe('snowflake-connector-python through Sluice against fakesnow', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let out: Record<string, Outcome>

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: {
        fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', partitionRows: 2 },
        large: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', user: 'sluice', password: 'upstream-secret', partitionRows: 1000 }
      },
      stages: { decide: denyKeyword('DELETE') }
    })
    out = await runPython('test/snowflake/python/connector_client.py', {
      account: 'fake', port: gw.port, token: await gw.token('alice'), bobToken: await gw.token('bob')
    }) as Record<string, Outcome>
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
  })

  it('runs a SELECT (inline rows plus a Sluice-served chunk)', () => {
    expect(out.select?.rows).toEqual([
      ['1', 'ada@example.com', '123-45-6789', '10.50', '2024-01-01', 'True'],
      ['2', 'alan@example.com', '987-65-4321', '20.25', '2024-01-02', 'False'],
      ['3', 'grace@example.com', '555-12-3456', '30.00', '2024-01-03', 'True']
    ])
  })

  it('reads a larger result: gzip-compressed Arrow inline and in Sluice-served chunks', () => {
    expect(out.large).toEqual({ count: 3000, last: [2999, 'row-2999'] })
  })

  it('binds parameters and reports DML row counts', () => {
    expect(out.bind).toEqual([['alan@example.com']])
    expect(out.dml).toEqual({ rowcount: 1 })
  })

  it('passes a SQL error through as ProgrammingError with code and SQL state', () => {
    expect(out.error?.error).toMatchObject({ type: 'ProgrammingError', errno: 2003, sqlstate: '42S02' })
  })

  it('runs multi-statements, each result fetched by its own query id', () => {
    expect(out.multi).toEqual({ first: [[1]], has_next: true, second: [['grace@example.com']] })
  })

  it('runs an async query and fetches its result', () => {
    expect(out.async?.rows).toEqual([[3]])
  })

  it('renders a policy denial naming the rule', () => {
    expect(out.denied?.error?.msg).toContain('denied by rule agents-read-only: DELETE is not allowed for role agent on connection fake')
    expect(out.denied?.error?.errno).toBe(3001)
  })

  it('refuses a PUT file transfer with a clear error', () => {
    expect(out.put?.error).toMatchObject({ errno: 2, sqlstate: '0A000' })
    expect(out.put?.error?.msg).toContain('PUT and GET file transfers are not available through Sluice')
  })

  it('never serves one principal\'s query id to another', () => {
    expect(out.foreign?.error).toMatchObject({ type: 'ProgrammingError', errno: 709 })
    expect(out.foreign?.rows).toBeUndefined()
  })

  it('refuses a bad token at login', () => {
    expect(out.badToken?.error?.msg).toMatch(/390303|token was rejected/)
  })
})
