// The MCP endpoint where a rule wants a justification, where policy hides whole schemas, and where
// a client's next POST reaches another replica: a client with elicitation is asked (its answer
// may arrive at either replica) and the approval keeps the answer; a client without it is told
// how to give one (the query tool's `justification` argument) and nothing is held until it does;
// list_schemas leaves out the schemas policy lets the agent read nothing in; and a cancellation
// sent to the replica that does not run the call still stops its statement upstream.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { completedEvent, startRunawayQuery, stoppedUpstream } from './cancelled-calls.js'
import { startMcpGateway, type McpGateway } from './harness.js'

const RULES = `  - id: hold-numbers-justified
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['*.public.numbers'] }
    approval: { justification: required }
  - id: hold-ledger-optional
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['*.public.ledger'] }
    approval: { justification: optional }
  - id: deny-vault
    effect: deny
    match: { tables: ['*.vault.*'] }
`

type Result = Awaited<ReturnType<Client['callTool']>>
const textOf = (r: Result): string => (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n')
const heldId = (r: Result): string | undefined => /^held for approval ([0-9a-f-]{36})/.exec(textOf(r))?.[1]

describe('MCP justifications, schemas by policy, and messages across replicas', { timeout: 240_000 }, () => {
  let env: McpGateway
  let n = 0
  /** A statement on numbers no earlier test held. */
  const numbersSql = (): string => `select n from numbers where n = ${++n}`

  beforeAll(async () => {
    env = await startMcpGateway({ rules: RULES, mcp: { approvalWaitSeconds: 1 }, replicaMcp: { approvalWaitSeconds: 1 } })
    const direct = postgres(env.upstream.url, { max: 1, onnotice: () => {} })
    await direct.unsafe('create schema vault; create table vault.keys (k text); create schema empty_one; create table ledger (n int);')
    await direct.end({ timeout: 5 })
  })
  afterAll(async () => { await env?.close() })

  /** A fetch sending the POSTs whose body contains `marker` to the replica instead. */
  const routing = (marker: string): { fetch: FetchLike, routed: () => number } => {
    let routed = 0
    return {
      fetch: async (url, init) => {
        const body = typeof init?.body === 'string' ? init.body : ''
        if (init?.method === 'POST' && body.includes(marker)) { routed++; return await fetch(`${env.replica?.url ?? ''}/mcp`, init) }
        return await fetch(url, init)
      },
      routed: () => routed
    }
  }

  const pendingFor = async (sql: string): Promise<Array<{ id: string, justification?: string }>> => {
    const { json } = await env.admin('GET', '/approvals?status=pending')
    return (json.items as Array<{ id: string, sql: string, justification?: string }>).filter((a) => a.sql === sql)
  }

  const elicitingClient = async (answer: (params: Record<string, unknown>) => Record<string, unknown>, fetch?: FetchLike): Promise<{ client: Client, asked: Array<Record<string, unknown>> }> => {
    const asked: Array<Record<string, unknown>> = []
    const client = await env.connect(await env.agentToken(), env.gateway.url, 'eliciting-client', {
      capabilities: { elicitation: {} },
      setup: (c) => { c.setRequestHandler(ElicitRequestSchema, async (request) => { asked.push(request.params as Record<string, unknown>); return answer(request.params as Record<string, unknown>) as never }) },
      ...(fetch !== undefined && { fetch })
    })
    return { client, asked }
  }

  it('asks a client with elicitation for the justification before holding, and the approval keeps it', async () => {
    const { client, asked } = await elicitingClient(() => ({ action: 'accept', content: { justification: 'ticket OPS-7: monthly numbers' } }))
    const sql = numbersSql()
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(result.isError).toBe(true)
    const id = heldId(result)
    expect(id, textOf(result)).toBeDefined()
    expect(asked).toHaveLength(1)
    expect(asked[0]?.message).toMatch(/rule hold-numbers-justified/)
    expect(asked[0]?.requestedSchema).toMatchObject({ type: 'object', properties: { justification: { type: 'string' } }, required: ['justification'] })
    const { status, json } = await env.admin('GET', `/approvals/${id ?? ''}`)
    expect(status).toBe(200)
    expect(json).toMatchObject({ id, justification: 'ticket OPS-7: monthly numbers', settings: { justification: 'required' } })
    // The same statement again waits on the same approval: nobody is asked twice.
    const again = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(heldId(again)).toBe(id)
    expect(asked).toHaveLength(1)
  })

  it('takes the elicitation answer when it reaches the other replica', async () => {
    const route = routing('"sluice-elicit-')
    const { client, asked } = await elicitingClient(() => ({ action: 'accept', content: { justification: 'answered through the replica' } }), route.fetch)
    const sql = numbersSql()
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(asked).toHaveLength(1)
    expect(route.routed()).toBe(1)
    const id = heldId(result)
    expect(id, textOf(result)).toBeDefined()
    expect((await env.admin('GET', `/approvals/${id ?? ''}`)).json.justification).toBe('answered through the replica')
  })

  it('holds nothing when the user declines to justify a statement whose rule requires it', async () => {
    const { client, asked } = await elicitingClient(() => ({ action: 'decline' }))
    const sql = numbersSql()
    const result = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(asked).toHaveLength(1)
    expect(result.isError).toBe(true)
    expect(textOf(result)).toMatch(/^approval required by rule hold-numbers-justified, which needs a justification .*the user chose decline/)
    expect(textOf(result)).toMatch(/SLUICE_MCP_JUSTIFICATION_REQUIRED/)
    expect(await pendingFor(sql)).toEqual([])
  })

  it('under an optional justification, holds what the user declines to justify, and asks a client without elicitation nothing', async () => {
    const { client, asked } = await elicitingClient(() => ({ action: 'decline' }))
    const declined = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql: 'select n from ledger where n = 1' } })
    expect(asked).toHaveLength(1)
    expect(asked[0]?.requestedSchema).not.toHaveProperty('required')
    const id = heldId(declined)
    expect(id, textOf(declined)).toBeDefined()
    const { json } = await env.admin('GET', `/approvals/${id ?? ''}`)
    expect(json.settings.justification).toBe('optional')
    expect(json).not.toHaveProperty('justification')
    const plain = await env.connect(await env.agentToken(), env.gateway.url, 'plain-client')
    expect(heldId(await plain.callTool({ name: 'query', arguments: { connection: 'pg', sql: 'select n from ledger where n = 2' } }))).toBeDefined()
  })

  it('tells a client without elicitation how to give the justification, and holds once it is given as the argument', async () => {
    const client = await env.connect(await env.agentToken(), env.gateway.url, 'plain-client')
    const sql = numbersSql()
    const refused = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql } })
    expect(refused.isError).toBe(true)
    expect(textOf(refused)).toMatch(/rule hold-numbers-justified, which needs a justification .*does not support elicitation.*`justification` argument/)
    expect(textOf(refused)).toMatch(/next: call query again .*`justification` argument/)
    expect(await pendingFor(sql)).toEqual([])
    // Refused before anything was admitted: one event, the refusal.
    const events = await env.events<Array<{ outcome: string, error_code: string, phase: string | null }>>`
      select outcome, error_code, phase from session_events where front_end = 'mcp' and sql_text = ${sql} order by seq`
    expect(events).toEqual([{ outcome: 'denied', error_code: 'SLUICE_MCP_JUSTIFICATION_REQUIRED', phase: null }])

    const held = await client.callTool({ name: 'query', arguments: { connection: 'pg', sql, justification: 'ticket OPS-8' } })
    const id = heldId(held)
    expect(id, textOf(held)).toBeDefined()
    expect(await pendingFor(sql)).toEqual([expect.objectContaining({ id, justification: 'ticket OPS-8' })])
  })

  it('list_schemas leaves out the schemas policy lets the agent read nothing in', async () => {
    const client = await env.connect(await env.agentToken())
    const result = await client.callTool({ name: 'list_schemas', arguments: { connection: 'pg' } })
    expect(result.isError, textOf(result)).not.toBe(true)
    const out = result.structuredContent as { schemas: string[], hidden?: number }
    expect(out.schemas).toContain('public')
    expect(out.schemas).not.toContain('vault')
    expect(out.schemas).not.toContain('empty_one')
    expect(out.hidden).toBeGreaterThanOrEqual(2)
    // The tables of the hidden schema are not listed either.
    const tables = await client.callTool({ name: 'list_tables', arguments: { connection: 'pg', schema: 'vault' } })
    expect((tables.structuredContent as { tables: unknown[] }).tables).toEqual([])
    await client.callTool({ name: 'describe_table', arguments: { connection: 'pg', schema: 'public', table: 'customers' } })
    // Each catalogue read is recorded as introspection: what metadata it read, and no statement.
    const reads = await env.events<Array<{ method: string, introspection: unknown, statements: number }>>`
      select method, analysis->'tool'->'introspection' as introspection, jsonb_array_length(analysis->'tool'->'statementIds') as statements
      from session_events where front_end = 'mcp' and route = 'tools/call' and method in ('list_schemas', 'list_tables', 'describe_table') order by seq`
    expect(reads).toEqual([
      { method: 'list_schemas', introspection: { reads: 'schemas' }, statements: 0 },
      { method: 'list_tables', introspection: { reads: 'tables', schema: 'vault' }, statements: 0 },
      { method: 'describe_table', introspection: { reads: 'columns', schema: 'public', table: 'customers' }, statements: 0 }
    ])
  })

  it('a cancellation reaching the replica that does not run the call stops its statement upstream', async () => {
    const route = routing('"notifications/cancelled"')
    const client = await env.connect(await env.agentToken(), env.gateway.url, 'cancel-client', { fetch: route.fetch })
    const sql = 'select count(*) as n from generate_series(1, 100000000001) as g'
    const call = await startRunawayQuery(env, client, sql)
    try {
      call.cancel.abort()
      await expect(call.calling).rejects.toThrow(/abort/i)
      for (let i = 0; route.routed() === 0; i++) {
        expect(i, 'the cancellation was never sent').toBeLessThan(600)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      // Long before the statement would finish (it counts to 10^11).
      await stoppedUpstream(call, 1200)
      expect((await completedEvent(env, sql)).outcome).toBe('error')
    } finally {
      await call.close()
    }
  })
})
