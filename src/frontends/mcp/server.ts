// The MCP server of one HTTP request: the official SDK's low-level Server (protocol version
// negotiation, JSON-RPC, progress plumbing) with Sluice's tools behind tools/list and
// tools/call. Built per request over a stateless transport, so no protocol state lives in this
// process between requests: the session is the store's (sessions.ts) and any replica answers.
import { randomUUID } from 'node:crypto'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError,
  type CallToolRequest, type CallToolResult, type JSONRPCMessage, type ServerNotification, type ServerRequest
} from '@modelcontextprotocol/sdk/types.js'
import type { Principal } from '../../identity/principal.js'
import { approvalStatus, describeTable, explain, listConnections, listSchemas, listTables } from './catalog.js'
import { recordToolCall, type McpDeps, type ToolCall } from './context.js'
import { runQuery, type Answer } from './query.js'
import { errorResult } from './results.js'
import type { Elicit } from './justification.js'
import { ownerOf, type McpSession } from './sessions.js'
import { ELICITATION_ID_PREFIX, type McpSignals } from './signals.js'
import { argumentProblems, TOOLS, toolNamed } from './tools.js'

export const SERVER_INFO = { name: 'sluice', version: '0.1.0' }

const INSTRUCTIONS = 'Sluice gives you the data warehouse connections you may use, under your own identity and policy. ' +
  'Call list_connections first; explore with list_schemas, list_tables and describe_table; run SQL with query. ' +
  'A refused statement says which rule refused it and what to do; explain tells you in advance what policy would decide. ' +
  'A statement held for a human\'s approval waits in the call for a while; if it is still held, call approval_status or run the same query again later. ' +
  'A rule may want to know why a held statement should run: you are asked (elicitation), or pass it as the query tool\'s justification argument.'

export interface RequestFacts {
  principal: Principal
  session?: McpSession
  /** clientInfo of an initialize request (before the session exists). */
  client?: { name?: string, version?: string }
  sourceIp?: string
  /**
   * Watches for a `notifications/cancelled` naming this JSON-RPC request id (another POST carries
   * it, to this replica or another): its signal fires then; `stop` ends the watch once the call is done.
   */
  cancelled?: (requestId: string | number) => { signal: AbortSignal, stop: () => void }
  /** Where a client's answers to Sluice's own requests (elicitation) arrive, on any replica. */
  signals?: McpSignals
}

/** How long an elicitation waits for the person at the client to answer. */
const ELICIT_WAIT_SECONDS = 300

/**
 * The call's elicitation, when its session declared the capability (form mode): the request
 * goes out on the call's own response stream with an id of Sluice's (each POST has its own
 * server, so the SDK's per-server ids would collide), and its answer, a POST of its own, may
 * reach any replica (signals.ts).
 */
function elicitFor (server: Server, facts: RequestFacts, relatedRequestId: string | number, signal: AbortSignal): Elicit | undefined {
  const session = facts.session
  const signals = facts.signals
  const cap = session?.capabilities.elicitation
  if (session === undefined || signals === undefined || cap === null || typeof cap !== 'object') return undefined
  if (Object.keys(cap).length > 0 && !('form' in cap)) return undefined
  const target = { owner: ownerOf(facts.principal), session: session.id }
  return async (params) => {
    const id = `${ELICITATION_ID_PREFIX}${randomUUID()}`
    const answer = signals.awaitReply(target, id, { until: Date.now() + ELICIT_WAIT_SECONDS * 1000, signal })
    // `mode` exists from protocol 2025-11-25 on; earlier clients are sent the form they know.
    const form = (session.protocolVersion ?? '') >= '2025-11-25' ? { mode: 'form', ...params } : params
    await server.transport?.send({ jsonrpc: '2.0', id, method: 'elicitation/create', params: form } as JSONRPCMessage, { relatedRequestId })
    const reply = await answer
    const result = reply?.result as { action?: unknown, content?: unknown } | undefined
    if (result === undefined || (result.action !== 'accept' && result.action !== 'decline' && result.action !== 'cancel')) return undefined
    return { action: result.action, ...(result.content !== null && typeof result.content === 'object' && { content: result.content as Record<string, unknown> }) }
  }
}

export function createMcpServer (deps: McpDeps, facts: RequestFacts): Server {
  const server = new Server(SERVER_INFO, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS })
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS.map((t) => ({ ...t })) }))
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const watch = facts.cancelled?.(extra.requestId)
    try {
      return await callTool(deps, facts, server, request, extra, withCancel(extra.signal, watch?.signal))
    } finally {
      watch?.stop()
    }
  })
  return server
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

async function callTool (deps: McpDeps, facts: RequestFacts, server: Server, request: CallToolRequest, extra: Extra, signal: AbortSignal): Promise<CallToolResult> {
  const { name } = request.params
  const args = request.params.arguments ?? {}
  const token = request.params._meta?.progressToken
  const client = facts.session === undefined ? facts.client ?? {} : { ...(facts.session.clientName !== undefined && { name: facts.session.clientName }), ...(facts.session.clientVersion !== undefined && { version: facts.session.clientVersion }) }
  const elicit = elicitFor(server, facts, extra.requestId, signal)
  const call: ToolCall = {
    principal: facts.principal,
    requestId: randomUUID(),
    ...(facts.session !== undefined && { mcpSessionId: facts.session.id }),
    client,
    ...(facts.sourceIp !== undefined && { sourceIp: facts.sourceIp }),
    signal,
    ...(elicit !== undefined && { elicit }),
    statementIds: [],
    ...(token !== undefined && {
      progress: async (progress: number, total: number | undefined, message: string) => {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, ...(total !== undefined && { total }), message } })
      }
    })
  }
  const started = performance.now()
  // A malformed call is a protocol error, and in the trail like every other call.
  const malformed = toolNamed(name) === undefined
    ? `unknown tool ${name.slice(0, 100)}: tools/list names the tools Sluice serves`
    : argumentProblems(name, args) === undefined ? undefined : `invalid arguments for ${name}: ${argumentProblems(name, args) ?? ''}`
  if (malformed !== undefined) {
    await recordToolCall(deps, call, toolNamed(name) === undefined ? 'unknown' : name, { outcome: 'error', errorCode: 'SLUICE_BAD_REQUEST', reason: malformed }, started)
    throw new McpError(ErrorCode.InvalidParams, malformed)
  }
  const answer = await dispatch(deps, call, name, args as Record<string, unknown>)
  try {
    await recordToolCall(deps, call, name, answer.outcome, started)
  } catch (err) {
    // Fail closed: a call the trail does not have is not answered with its result.
    deps.log.error({ err: (err as Error).message, tool: name }, 'mcp: recording the tool call failed; result withheld')
    return errorResult({ code: 'SLUICE_STORE_UNAVAILABLE', message: `the tool call could not be recorded, so its result is withheld (request ${call.requestId})`, next: call.statementIds.length > 0 ? 'the statement may have run: check before repeating a write' : 'retry in a few seconds' })
  }
  return answer.result
}

function withCancel (signal: AbortSignal, cancelled: AbortSignal | undefined): AbortSignal {
  return cancelled === undefined ? signal : AbortSignal.any([signal, cancelled])
}

async function dispatch (deps: McpDeps, call: ToolCall, name: string, args: Record<string, unknown>): Promise<Answer> {
  const a = args as never
  switch (name) {
    case 'list_connections': return listConnections(deps, call)
    case 'list_schemas': return await listSchemas(deps, call, a)
    case 'list_tables': return await listTables(deps, call, a)
    case 'describe_table': return await describeTable(deps, call, a)
    case 'query': return await runQuery(deps, call, a)
    case 'explain': return await explain(deps, call, a)
    case 'approval_status': return await approvalStatus(deps, call, a)
    default: throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name}`)
  }
}
