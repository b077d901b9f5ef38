// The MCP endpoint as an OAuth resource server and across replicas: a missing, forged or
// wrong-audience token is refused with 401 and the `resource_metadata` challenge, the RFC 9728
// document names the configured issuer, a session opened on one replica is served by another
// (and by nobody else's token), and a held query is approved during the call (its result comes
// in the same call, with progress notifications while it waits) or after it (the call says it is
// held; approval_status and an identical later call pick up the decision).
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMcpGateway, type McpGateway } from './harness.js'

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } }
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

type Result = Awaited<ReturnType<Client['callTool']>>
const textOf = (r: Result): string => (r.content as Array<{ text?: string }>).map((c) => c.text ?? '').join('\n')

describe('MCP authorization, sessions across replicas, and held queries', { timeout: 240_000 }, () => {
  let env: McpGateway
  let url: string

  beforeAll(async () => {
    env = await startMcpGateway({ mcp: { approvalWaitSeconds: 60 }, replicaMcp: { approvalWaitSeconds: 1 } })
    url = env.gateway.url
  })
  afterAll(async () => { await env?.close() })

  const post = async (token: string | undefined, body: unknown = INIT, target = url, extra: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${target}/mcp`, { method: 'POST', headers: { ...HEADERS, ...extra, ...(token !== undefined && { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })

  it('serves the protected resource metadata naming the issuer, at the root and for /mcp', async () => {
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await fetch(`${url}${path}`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ resource: `${url}/mcp`, authorization_servers: [env.idp.issuer], bearer_methods_supported: ['header'], resource_name: 'Sluice' })
    }
  })

  it.each([
    ['no token', async () => undefined, /^Bearer realm="sluice", resource_metadata="([^"]+)"$/],
    ['a forged token', async () => 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl', /^Bearer realm="sluice", error="invalid_token", error_description="[^"]+", resource_metadata="([^"]+)"$/],
    ['a token for another audience', async () => await env.idp.userToken({ subject: 'alice', groups: ['ai-agents'], audience: 'some-other-api' }), /^Bearer realm="sluice", error="invalid_token", error_description="[^"]*audience[^"]*", resource_metadata="([^"]+)"$/]
  ])('refuses %s with 401 and the resource_metadata challenge', async (_what, token, challenge) => {
    for (const method of ['POST', 'GET', 'DELETE']) {
      const t = await token()
      const res = method === 'POST' ? await post(t) : await fetch(`${url}/mcp`, { method, headers: { ...(t !== undefined && { authorization: `Bearer ${t}` }) } })
      expect(res.status).toBe(401)
      const header = res.headers.get('www-authenticate') ?? ''
      expect(header).toMatch(challenge)
      expect(challenge.exec(header)?.[1]).toBe(`${url}/.well-known/oauth-protected-resource/mcp`)
    }
  })

  it('the official client without a valid token fails to connect', async () => {
    const client = new Client({ name: 'no-token', version: '1' })
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: 'Bearer not-a-token' } } })
    await expect(client.connect(transport)).rejects.toThrow(/SLUICE_AUTH_INVALID/)
  })

  it('a session opened on one replica is served by the other, and by no other principal', async () => {
    const token = await env.agentToken()
    const client = await env.connect(token, url, 'replica-client')
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId as string
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/)
    // Reconnecting with the session id skips initialize: the replica knows the session from the store.
    const other = new Client({ name: 'replica-client', version: '1.2.3' })
    await other.connect(new StreamableHTTPClientTransport(new URL(`${env.replica?.url ?? ''}/mcp`), { sessionId, requestInit: { headers: { authorization: `Bearer ${token}` } } }))
    const listed = await other.callTool({ name: 'list_connections', arguments: {} })
    expect((listed.structuredContent as { connections: unknown[] }).connections).toHaveLength(3)
    const [event] = await env.events<Array<{ user_agent: string, protocol_session: string }>>`
      select user_agent, analysis->'tool'->>'protocolSession' as protocol_session from session_events
      where front_end = 'mcp' and analysis->'tool'->>'protocolSession' = ${sessionId} order by seq desc limit 1`
    expect(event).toEqual({ user_agent: 'replica-client/1.2.3', protocol_session: sessionId })

    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }
    const mallory = await post(await env.agentToken('mallory'), list, env.replica?.url, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' })
    expect(mallory.status).toBe(404)
    expect(await mallory.text()).toMatch(/SLUICE_MCP_SESSION_UNKNOWN|is not known/)

    const ended = await fetch(`${url}/mcp`, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId } })
    expect(ended.status).toBe(200)
    const after = await post(token, list, env.replica?.url, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' })
    expect(after.status).toBe(404)
  })

  it('a response stream broken while its call waits is resumed on the other replica, result included', async () => {
    const token = await env.agentToken()
    const auth = { authorization: `Bearer ${token}` }
    // Protocol 2025-11-25: the stream starts with a priming event id, so even a stream broken
    // before any message can be resumed.
    const init = await post(token, { ...INIT, params: { ...INIT.params, protocolVersion: '2025-11-25' } })
    const sessionId = init.headers.get('mcp-session-id') as string
    await init.text()
    const session = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
    await (await post(token, { jsonrpc: '2.0', method: 'notifications/initialized' }, url, session)).text()
    const sql = 'SELECT ID FROM ORDERS WHERE ID = 1'
    const broken = new AbortController()
    const res = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { ...HEADERS, ...auth, ...session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'query', arguments: { connection: 'snow', sql }, _meta: { progressToken: 'p7' } } }),
      signal: broken.signal
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let seen = ''
    while (!seen.includes('notifications/progress')) seen += decoder.decode((await reader.read()).value)
    const ids = [...seen.matchAll(/^id: (\d+)$/gm)].map((m) => m[1] as string)
    expect(ids.length).toBeGreaterThanOrEqual(2)
    broken.abort()

    const id = await pendingApprovalFor(sql)
    expect((await env.admin('POST', `/approvals/${id}/approve`, { reason: 'resume test' })).status).toBe(200)
    const lastEventId = ids[ids.length - 1] as string
    // Someone else cannot resume it.
    const foreign = await fetch(`${env.replica?.url ?? ''}/mcp`, { headers: { authorization: `Bearer ${await env.agentToken('mallory')}`, accept: 'text/event-stream', 'last-event-id': lastEventId } })
    expect(foreign.status).toBe(404)
    await foreign.text()
    const resumed = await fetch(`${env.replica?.url ?? ''}/mcp`, { headers: { ...auth, ...session, accept: 'text/event-stream', 'last-event-id': lastEventId } })
    expect(resumed.status).toBe(200)
    expect(resumed.headers.get('content-type')).toMatch(/text\/event-stream/)
    const messages = (await resumed.text()).split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => JSON.parse(l.slice(6)) as { id?: number, result?: { structuredContent?: unknown, isError?: boolean } })
    const answer = messages.find((m) => m.id === 7)
    expect(answer?.result?.isError, JSON.stringify(answer)).not.toBe(true)
    expect(answer?.result?.structuredContent).toMatchObject({ approvalId: id, rows: [['1']] })
  })

  it('refuses a foreign browser Origin (DNS rebinding) and answers a malformed body as a JSON-RPC error', async () => {
    const token = await env.agentToken()
    const foreign = await post(token, INIT, url, { origin: 'http://evil.example' })
    expect(foreign.status).toBe(403)
    expect(await foreign.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/origin http:\/\/evil\.example may not call/) } })
    const own = await post(token, INIT, url, { origin: new URL(url).origin })
    expect(own.status).toBe(200)
    await own.text()
    const malformed = await fetch(`${url}/mcp`, { method: 'POST', headers: { ...HEADERS, authorization: `Bearer ${token}` }, body: '{"jsonrpc": "2.0", "id": 1, "method": ' })
    expect(malformed.status).toBe(400)
    expect(await malformed.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32700, message: expect.stringMatching(/^Parse error/) }, id: null })
  })

  it('GET /mcp is 405: notifications travel on each call\'s own response', async () => {
    const res = await fetch(`${url}/mcp`, { headers: { authorization: `Bearer ${await env.agentToken()}`, accept: 'text/event-stream' } })
    expect(res.status).toBe(405)
  })

  async function pendingApprovalFor (sql: string): Promise<string> {
    for (;;) {
      const { json } = await env.admin('GET', '/approvals?status=pending')
      const found = (json.items as Array<{ id: string, sql: string }>).find((a) => a.sql === sql)
      if (found !== undefined) return found.id
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  it('a held query approved during the call returns its result in the same call, with progress while it waits', async () => {
    const client = await env.connect(await env.agentToken())
    const sql = 'SELECT ID, AMOUNT FROM ORDERS ORDER BY ID'
    const progress: Array<{ progress: number, message?: string }> = []
    const calling = client.callTool({ name: 'query', arguments: { connection: 'snow', sql } }, undefined, {
      onprogress: (p) => { progress.push(p) },
      resetTimeoutOnProgress: true
    })
    const id = await pendingApprovalFor(sql)
    // Progress first, so the wait is shown to have been announced before the approval.
    while (progress.length === 0) await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await env.admin('POST', `/approvals/${id}/approve`, { reason: 'ticket 42' })).status).toBe(200)
    const result = await calling
    expect(result.isError, textOf(result)).not.toBe(true)
    expect(result.structuredContent).toMatchObject({ approvalId: id, rowCount: 2, rows: [['1', '5.00'], ['2', '7.50']] })
    expect(progress[0]?.message).toMatch(new RegExp(`held for approval ${id} \\(rule hold-orders\\)`))
    const [call] = await env.events<Array<{ outcome: string, approval: string, statements: number }>>`
      select outcome, analysis->'tool'->>'approvalId' as approval, jsonb_array_length(analysis->'tool'->'statementIds') as statements
      from session_events where front_end = 'mcp' and analysis->'tool'->>'approvalId' = ${id} order by seq desc limit 1`
    expect(call).toEqual({ outcome: 'ok', approval: id, statements: 1 })
  })

  it('a held query not approved in time says so; approval_status and the same query later pick up the decision', async () => {
    // The replica waits one second only.
    const client = await env.connect(await env.agentToken(), env.replica?.url)
    const sql = 'SELECT ID FROM ORDERS WHERE ID = 2'
    const held = await client.callTool({ name: 'query', arguments: { connection: 'snow', sql } })
    expect(held.isError).toBe(true)
    const match = /^held for approval ([0-9a-f-]{36}): .*call approval_status with this id, or run exactly the same query again once it is approved/.exec(textOf(held))
    expect(match, textOf(held)).not.toBeNull()
    const id = match?.[1] as string
    expect(textOf(held)).toMatch(/rule: hold-orders/)

    const pending = await client.callTool({ name: 'approval_status', arguments: { approvalId: id } })
    expect(pending.structuredContent).toMatchObject({ approvalId: id, status: 'pending', rule: 'hold-orders', sql, connection: 'snow' })
    expect((await env.admin('POST', `/approvals/${id}/approve`, { reason: 'ok' })).status).toBe(200)
    const approved = await client.callTool({ name: 'approval_status', arguments: { approvalId: id } })
    expect(approved.structuredContent).toMatchObject({ status: 'approved', decidedBy: expect.stringContaining('carol') })

    const again = await client.callTool({ name: 'query', arguments: { connection: 'snow', sql } })
    expect(again.isError, textOf(again)).not.toBe(true)
    expect(again.structuredContent).toMatchObject({ rows: [['2']], rowCount: 1 })
    expect((await client.callTool({ name: 'approval_status', arguments: { approvalId: id } })).structuredContent).toMatchObject({ status: 'executed' })

    // Someone else's approval is not theirs to read.
    const bob = await env.connect(await env.agentToken('bob'))
    const foreign = await bob.callTool({ name: 'approval_status', arguments: { approvalId: id } })
    expect(foreign.isError).toBe(true)
    expect(textOf(foreign)).toMatch(/not found/)

    const [call] = await env.events<Array<{ outcome: string }>>`
      select outcome from session_events where front_end = 'mcp' and method = 'query' and analysis->'tool'->>'approvalId' = ${id} order by seq limit 1`
    expect(call?.outcome).toBe('held')
  })
})
