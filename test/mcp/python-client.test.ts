// The Python `mcp` client (the test venv's, over Streamable HTTP with a bearer token) against the
// same endpoint: initialize, list tools, and every tool on each connection kind, masked (no
// canary in any byte of its output), a denial as an isError result naming the rule.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canaryLeak } from '../support/canary.js'
import { CANARIES, startMcpGateway, type McpGateway } from './harness.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = fileURLToPath(new URL('./python_client.py', import.meta.url))

const CASES = [
  { connection: 'snow', schema: 'PUBLIC', table: 'CUSTOMERS', sql: 'SELECT ID, NAME, EMAIL, SSN FROM CUSTOMERS ORDER BY ID' },
  { connection: 'bq', schema: 'crm', table: 'customers', sql: 'SELECT id, name, email, ssn FROM crm.customers ORDER BY id' },
  { connection: 'pg', schema: 'public', table: 'customers', sql: 'select id, name, email, ssn from customers order by id' }
]

interface Called { is_error: boolean, structured: any, text: string }

describe('the Python mcp client', { timeout: 240_000 }, () => {
  let env: McpGateway
  beforeAll(async () => { env = await startMcpGateway() })
  afterAll(async () => { await env?.close() })

  it.each(CASES)('initializes, lists the tools and calls every tool on $connection', async (c) => {
    const token = await env.agentToken()
    const { stdout } = await run(`${ROOT}.venv/bin/python`, [SCRIPT, `${env.gateway.url}/mcp`, token, c.connection, c.schema, c.table, c.sql], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 })
    const leak = canaryLeak(stdout, CANARIES)
    expect(leak, `the Python client saw ${leak ?? ''}`).toBeUndefined()
    const out = JSON.parse(stdout) as { server: string, tools: string[], calls: Record<string, Called> }
    expect(out.server).toBe('sluice')
    expect(out.tools).toEqual(['approval_status', 'describe_table', 'explain', 'list_connections', 'list_schemas', 'list_tables', 'query'])
    const calls = out.calls
    expect(calls.list_connections?.structured.connections.map((x: { name: string }) => x.name)).toEqual(['snow', 'bq', 'pg'])
    expect(calls.list_schemas?.structured.schemas.map((s: string) => s.toLowerCase())).toContain(c.schema.toLowerCase())
    expect(calls.list_tables?.structured.tables.map((t: { name: string }) => t.name.toLowerCase())).toContain(c.table.toLowerCase())
    expect(calls.describe_table?.structured.columns.find((col: { name: string }) => col.name.toLowerCase() === 'email')).toMatchObject({ masked: true, maskingRule: 'mask-email' })
    expect(calls.query?.is_error, calls.query?.text).toBe(false)
    expect(calls.query?.structured.maskedColumns.map((m: { rule: string }) => m.rule).sort()).toEqual(['mask-email', 'mask-ssn'])
    expect(calls.query?.structured.rowCount).toBeGreaterThanOrEqual(2)
    expect(calls.explain?.structured).toMatchObject({ effect: 'allow', rule: 'agents-read' })
    expect(calls.denied).toMatchObject({ is_error: true })
    expect(calls.denied?.text).toMatch(/^denied by rule deny-ddl: .*\nrule: deny-ddl\n/)
    expect(calls.approval_status).toMatchObject({ is_error: true })
    expect(calls.approval_status?.text).toMatch(/not found/)
    // Its calls are recorded under its own clientInfo.
    const rows = await env.events<Array<{ n: string }>>`
      select count(*) as n from session_events where front_end = 'mcp' and user_agent = 'python-mcp-test/2.3.0' and connection = ${c.connection} and method = 'query'`
    expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(2)
  })
})
