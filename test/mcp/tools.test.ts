// The MCP endpoint through the official TypeScript client (Streamable HTTP, a bearer token from
// the test IdP): initialize, the tool list with schemas and hints, and every tool against
// fakesnow, bqemulator and PostgreSQL through the real pipeline — masking (no canary in any
// byte of any tool result), a denied statement as an isError result naming its rule, and every
// call in the audit trail with its MCP session, clientInfo and the statements it caused.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyStore } from '../../src/recording/audit.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { canaryLeak } from '../support/canary.js'
import { completedEvent, startRunawayQuery, stoppedUpstream } from './cancelled-calls.js'
import { CANARIES, SEED_PROJECT, startMcpGateway, type McpGateway } from './harness.js'

interface Kind { connection: string, kind: string, schema: string, table: string, pii: string, bad: string, probe?: string }

const KINDS: Kind[] = [
  { connection: 'snow', kind: 'snowflake', schema: 'PUBLIC', table: 'CUSTOMERS', pii: 'SELECT ID, NAME, EMAIL, SSN FROM CUSTOMERS ORDER BY ID', bad: 'SELECT NO_SUCH_COLUMN FROM CUSTOMERS' },
  { connection: 'bq', kind: 'bigquery', schema: 'crm', table: 'customers', pii: 'SELECT id, name, email, ssn FROM crm.customers ORDER BY id', bad: 'SELECT no_such_column FROM crm.customers' },
  { connection: 'pg', kind: 'postgres', schema: 'public', table: 'customers', pii: 'select id, name, email, ssn from customers order by id', bad: 'select no_such_column from customers', probe: 'probe' }
]

type Result = Awaited<ReturnType<Client['callTool']>>

function expectNoCanary (result: unknown): void {
  const text = JSON.stringify(result)
  const leak = canaryLeak(text, CANARIES)
  expect(leak, `tool result leaked ${leak ?? ''}: ${text.slice(0, 300)}`).toBeUndefined()
}

function textOf (result: Result): string {
  return (result.content as Array<{ type: string, text?: string }>).map((c) => c.text ?? '').join('\n')
}

describe('MCP tools through the official TypeScript client', { timeout: 240_000 }, () => {
  let env: McpGateway
  let client: Client
  const results: Result[] = []
  const call = async (name: string, args: Record<string, unknown> = {}): Promise<Result> => {
    const result = await client.callTool({ name, arguments: args })
    results.push(result)
    return result
  }

  beforeAll(async () => {
    env = await startMcpGateway()
    client = await env.connect(await env.agentToken())
  })
  afterAll(async () => { await env?.close() })

  it('initializes with Sluice as the server and lists the tools with schemas and hints', async () => {
    expect(client.getServerVersion()).toMatchObject({ name: 'sluice' })
    expect(client.getServerCapabilities()?.tools).toBeDefined()
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(['approval_status', 'describe_table', 'explain', 'list_connections', 'list_schemas', 'list_tables', 'query'])
    for (const tool of tools) {
      expect(tool.description?.length ?? 0).toBeGreaterThan(40)
      expect(tool.inputSchema.type).toBe('object')
      expect(tool.outputSchema?.type).toBe('object')
      expect(typeof tool.annotations?.readOnlyHint).toBe('boolean')
    }
    expect(tools.find((t) => t.name === 'query')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true })
    expect(tools.find((t) => t.name === 'list_tables')?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false })
  })

  it('list_connections names every connection with its kind and description', async () => {
    const result = await call('list_connections')
    expect(result.isError).not.toBe(true)
    expect(result.structuredContent).toEqual({
      connections: [
        { name: 'snow', kind: 'snowflake', description: 'CRM in Snowflake', default: false },
        { name: 'bq', kind: 'bigquery', description: 'CRM in BigQuery', default: false },
        { name: 'pg', kind: 'postgres', description: 'The application database', default: false }
      ]
    })
  })

  describe.each(KINDS)('on $kind', (k) => {
    it('list_schemas reads the warehouse catalogue', async () => {
      const result = await call('list_schemas', { connection: k.connection })
      expect(result.isError, textOf(result)).not.toBe(true)
      expect((result.structuredContent as { schemas: string[] }).schemas.map((s) => s.toLowerCase())).toContain(k.schema.toLowerCase())
    })

    it('list_tables lists what policy lets the agent read, and leaves out what it denies', async () => {
      const result = await call('list_tables', { connection: k.connection, schema: k.schema })
      expect(result.isError, textOf(result)).not.toBe(true)
      const tables = (result.structuredContent as { tables: Array<{ name: string, access: string }> }).tables
      expect(tables.map((t) => t.name.toLowerCase())).toContain(k.table.toLowerCase())
      expect(tables.find((t) => t.name.toLowerCase() === k.table.toLowerCase())?.access).toBe('allowed')
      if (k.probe !== undefined) {
        expect(tables.map((t) => t.name)).not.toContain(k.probe)
        expect((result.structuredContent as { hidden?: number }).hidden).toBeGreaterThanOrEqual(1)
      }
    })

    it('describe_table gives the columns and marks the masked ones with their rule', async () => {
      const result = await call('describe_table', { connection: k.connection, schema: k.schema, table: k.table })
      expect(result.isError, textOf(result)).not.toBe(true)
      const columns = (result.structuredContent as { columns: Array<{ name: string, masked: boolean, maskingRule?: string }> }).columns
      const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]))
      expect(byName.get('email')).toMatchObject({ masked: true, maskingRule: 'mask-email' })
      expect(byName.get('ssn')).toMatchObject({ masked: true, maskingRule: 'mask-ssn' })
      expect(byName.get('name')).toMatchObject({ masked: false })
    })

    it('query runs through the pipeline: rows with the PII masked, the masking named, the statement recorded', async () => {
      const result = await call('query', { connection: k.connection, sql: k.pii })
      expect(result.isError, textOf(result)).not.toBe(true)
      const out = result.structuredContent as { columns: Array<{ name: string }>, rows: unknown[][], rowCount: number, truncated: boolean, maskedColumns: Array<{ column: string, rule: string }>, statementId: string, requestId: string }
      expect(out.columns.map((c) => c.name.toLowerCase())).toEqual(['id', 'name', 'email', 'ssn'])
      expect(out.rowCount).toBeGreaterThanOrEqual(2)
      expect(out.truncated).toBe(false)
      expect(out.rows[0]?.[1]).toMatch(/^(Ada|Ada Lovelace)$/)
      expect(out.maskedColumns.map((m) => `${m.column.toLowerCase()}:${m.rule}`).sort()).toEqual(['email:mask-email', 'ssn:mask-ssn'])
      expectNoCanary(result)
      const rows = await env.events<Array<{ phase: string | null, method: string, sql_text: string | null, user_agent: string }>>`
        select phase, method, sql_text, user_agent from session_events where statement_id = ${out.statementId} order by seq`
      expect(rows.map((r) => r.phase)).toEqual(['admitted', 'completed'])
      expect(rows[0]).toMatchObject({ method: 'query', sql_text: k.pii, user_agent: 'mcp-test-client/1.2.3' })
    })

    it('query cuts the rows at maxRows and says how to get the rest', async () => {
      const result = await call('query', { connection: k.connection, sql: k.pii, maxRows: 1 })
      expect(result.isError, textOf(result)).not.toBe(true)
      const out = result.structuredContent as { rows: unknown[][], truncated: boolean, next?: string }
      expect(out.rows).toHaveLength(1)
      expect(out.truncated).toBe(true)
      expect(out.next).toMatch(/LIMIT 1 OFFSET 1/)
    })

    it('a denied statement is an isError result naming the rule and what to do', async () => {
      const result = await call('query', { connection: k.connection, sql: 'DROP TABLE customers' })
      expect(result.isError).toBe(true)
      expect(textOf(result)).toMatch(/^denied by rule deny-ddl: DDL \(DROP\) .* Schema changes go through migrations/)
      expect(textOf(result)).toMatch(/rule: deny-ddl/)
      expect(textOf(result)).toMatch(/next: .*explain/)
    })

    it('explain says what policy would decide, and why, without running it', async () => {
      const allowed = await call('explain', { connection: k.connection, sql: k.pii })
      expect(allowed.structuredContent).toMatchObject({ effect: 'allow', rule: 'agents-read', statementKinds: ['select'] })
      expect((allowed.structuredContent as { maskingRules: string[] }).maskingRules.join(' ')).toMatch(/mask-email/)
      const denied = await call('explain', { connection: k.connection, sql: 'DROP TABLE customers' })
      expect(denied.structuredContent).toMatchObject({ effect: 'deny', rule: 'deny-ddl' })
    })

    it('an upstream error comes back as an isError result, its text released by the pipeline', async () => {
      const result = await call('query', { connection: k.connection, sql: k.bad })
      expect(result.isError, textOf(result)).toBe(true)
      expect(textOf(result)).toMatch(/^the warehouse refused the statement on connection \w+: .*\ncode: SLUICE_MCP_UPSTREAM\nnext: fix the statement/)
    })
  })

  it('BigQuery records and arrays are masked inside their values', async () => {
    const result = await call('query', { connection: 'bq', sql: `SELECT id, address, phones, cards FROM \`${SEED_PROJECT}.crm.profiles\` ORDER BY id` })
    expect(result.isError, textOf(result)).not.toBe(true)
    expectNoCanary(result)
    expect((result.structuredContent as { rowCount: number }).rowCount).toBe(2)
  })

  it('a denied table is refused by its rule and described as not found', async () => {
    const refused = await call('query', { connection: 'pg', sql: 'select * from probe' })
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toMatch(/^denied by rule deny-probe: .*the probe table is off limits/)
    const described = await call('describe_table', { connection: 'pg', schema: 'public', table: 'probe' })
    expect(described.isError).toBe(true)
    expect(textOf(described)).toMatch(/not found/)
  })

  it('an unknown connection is a tool error pointing at list_connections; malformed arguments a protocol error', async () => {
    const unknown = await call('query', { connection: 'nope', sql: 'select 1' })
    expect(unknown.isError).toBe(true)
    expect(textOf(unknown)).toMatch(/list_connections/)
    await expect(client.callTool({ name: 'query', arguments: { connection: 'pg' } })).rejects.toThrow(/missing argument sql/)
    await expect(client.callTool({ name: 'query', arguments: { connection: 'pg', sql: 'select 1', extra: 1 } })).rejects.toThrow(/unknown argument extra/)
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/unknown tool/)
  })

  it('a call the client cancels cancels its statement upstream', async () => {
    const sql = 'select count(*) as n from generate_series(1, 100000000000) as g'
    const call = await startRunawayQuery(env, client, sql)
    try {
      call.cancel.abort()
      await expect(call.calling).rejects.toThrow(/abort/i)
      // Long before the statement would finish (it counts to 10^11).
      await stoppedUpstream(call, 600)
      // The statement's completion, then the tool call's own event (same request id).
      const event = await completedEvent(env, sql)
      expect(event.outcome).toBe('error')
      const toolEvents = async (): Promise<number> => (await env.events<Array<{ n: number }>>`select count(*)::int as n from session_events
        where request_id = ${event.request_id} and route = 'tools/call' and phase is null`)[0]?.n ?? 0
      for (let i = 0; await toolEvents() === 0; i++) {
        expect(i, 'the cancelled call has no event').toBeLessThan(300)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    } finally {
      await call.close()
    }
  })

  it('no tool result carried a canary in any byte', () => {
    expect(results.length).toBeGreaterThan(20)
    for (const r of results) expectNoCanary(r)
  })

  it('every tool call is an event with the MCP session, the clientInfo and the statements it caused', async () => {
    const calls = await env.events<Array<{ method: string, route: string, user_agent: string, session_id: string, tool: { name: string, protocolSession: string, client: { name: string, version: string }, statementIds: string[] }, request_id: string, outcome: string, rule_id: string | null }>>`
      select method, route, user_agent, session_id, analysis->'tool' as tool, request_id, outcome, rule_id
      from session_events where front_end = 'mcp' and route = 'tools/call' and phase is null and analysis ? 'tool' order by seq`
    // The results seen, the cancelled call, and the three malformed calls (protocol errors).
    expect(calls.length).toBe(results.length + 4)
    expect(calls.filter((c) => c.outcome === 'error' && c.method === 'unknown')).toHaveLength(1)
    const sessions = new Set(calls.map((c) => c.session_id))
    expect(sessions.size).toBe(1)
    for (const c of calls) {
      expect(c.user_agent).toBe('mcp-test-client/1.2.3')
      expect(c.tool.client).toEqual({ name: 'mcp-test-client', version: '1.2.3' })
      expect(c.tool.protocolSession).toMatch(/^[0-9a-f-]{36}$/)
      expect(c.tool.name).toBe(c.method === 'unknown' ? 'unknown' : c.method)
    }
    // A query call links to its statement's events: same request id, the statement id listed.
    const query = calls.find((c) => c.method === 'query' && c.outcome === 'ok')
    expect(query?.tool.statementIds).toHaveLength(1)
    const linked = await env.events<Array<{ phase: string, request_id: string, session_id: string }>>`
      select phase, request_id, session_id from session_events where statement_id = ${query?.tool.statementIds[0] ?? ''} order by seq`
    expect(linked.map((l) => l.phase)).toEqual(['admitted', 'completed'])
    expect(linked.every((l) => l.request_id === query?.request_id && l.session_id === query?.session_id)).toBe(true)
    const denied = calls.find((c) => c.method === 'query' && c.outcome === 'denied')
    expect(denied).toBeDefined()
  })

  it('the trail with the tool-call events verifies: the hash chain is intact', async () => {
    const store = openPostgresStore({ url: env.store.url, poolSize: 1 })
    try {
      const report = await verifyStore(store)
      expect(report.issues).toEqual([])
      expect(report.events).toBeGreaterThan(results.length)
    } finally {
      await store.close()
    }
  })
})
