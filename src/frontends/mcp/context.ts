// What every MCP tool call runs with: the gateway's parts (pipeline, recording, approvals, the
// warehouse ports) and the call itself (principal, MCP session, client, progress channel), and
// how its statements and the call become session events.
import type { ApprovalService } from '../../approvals/service.js'
import type { McpConfig } from '../../config/types.js'
import type { Principal } from '../../identity/principal.js'
import type { Pipeline, RoundTrip, Statement } from '../../pipeline.js'
import type { PolicySet } from '../../policy/model.js'
import type { Recording } from '../../recording/recorder.js'
import { recordAdmitted, recordCompleted, type RoundTripContext } from '../../recording/round-trips.js'
import { nowMicros } from '../../recording/chain.js'
import type { ToolCallRef } from '../../recording/build.js'
import type { ChainedEvent } from '../../recording/event.js'
import type { WarehousePort } from '../../warehouses/port.js'
import type { Elicit } from './justification.js'

export const FRONT_END = 'mcp'

export interface McpDeps {
  pipeline: Pipeline
  recording: Recording
  /** Absent when approvals are off: a held statement is then refused. */
  approvals?: ApprovalService
  ports: ReadonlyMap<string, WarehousePort>
  /** The policy set deciding now, to tell which connections a principal may use at all. */
  policies?: () => PolicySet
  config: McpConfig
  descriptions: ReadonlyMap<string, { description?: string, default: boolean }>
  log: { warn: (o: object, m: string) => void, error: (o: object, m: string) => void }
}

export interface ToolCall {
  principal: Principal
  /** The JSON-RPC call's own request id is the protocol's; this one is Sluice's, shared by its events. */
  requestId: string
  mcpSessionId?: string
  client: { name?: string, version?: string }
  sourceIp?: string
  signal: AbortSignal
  /** Sends a progress notification when the client asked for them (a progressToken). */
  progress?: (progress: number, total: number | undefined, message: string) => Promise<void>
  /** Asks the client through elicitation; absent when its session did not declare the capability. */
  elicit?: Elicit
  /** Filled as the call admits statements: the tool-call event links to them. */
  statementIds: string[]
  approvalId?: string
  /** Set by the catalogue tools: what metadata the call read (recorded with the call). */
  introspection?: ToolCallRef['introspection']
}

export function userAgentOf (client: ToolCall['client']): string | undefined {
  if (client.name === undefined) return undefined
  return client.version === undefined ? client.name : `${client.name}/${client.version}`
}

export function contextOf (call: ToolCall, tool: string, connection?: string): RoundTripContext {
  const userAgent = userAgentOf(call.client)
  return {
    requestId: call.requestId,
    frontEnd: FRONT_END,
    principal: call.principal,
    // One Sluice session per MCP session; a call without one (a stateless client) is its own.
    sessionKey: `${FRONT_END}:${call.mcpSessionId ?? call.requestId}`,
    ...(connection !== undefined && { connection }),
    route: 'tools/call',
    method: tool,
    ...(call.sourceIp !== undefined && { sourceIp: call.sourceIp }),
    ...(userAgent !== undefined && { userAgent })
  }
}

export function statementOf (call: ToolCall, port: WarehousePort, sql: string): Statement {
  const userAgent = userAgentOf(call.client)
  return {
    requestId: call.requestId,
    frontEnd: FRONT_END,
    principal: call.principal,
    connection: port.connection,
    sql,
    client: {
      ...(call.sourceIp !== undefined && { sourceIp: call.sourceIp }),
      ...(userAgent !== undefined && { userAgent }),
      ...(call.client.name !== undefined && { application: call.client.name })
    },
    ...(call.mcpSessionId !== undefined && { sessionId: call.mcpSessionId })
  }
}

/** A round trip whose admitted event is committed (and whose id the call keeps) before it runs. */
export function statementTrip (deps: McpDeps, call: ToolCall, tool: string, connection: string): RoundTrip {
  const ctx = contextOf(call, tool, connection)
  return {
    onAdmitted: async (trip) => {
      await recordAdmitted(deps.recording, ctx, trip)
      if (trip.statementId !== undefined) call.statementIds.push(trip.statementId)
    }
  }
}

export async function completeStatement (deps: McpDeps, call: ToolCall, tool: string, connection: string, trip: RoundTrip, startedMs: number): Promise<ChainedEvent> {
  return await recordCompleted(deps.recording, contextOf(call, tool, connection), trip, { durationMs: performance.now() - startedMs })
}

export interface ToolOutcome {
  outcome: 'ok' | 'denied' | 'error' | 'held'
  errorCode?: string
  reason?: string
  connection?: string
}

/** The tool call's own event: which tool, in which MCP session, from which client, causing which statements. */
export async function recordToolCall (deps: McpDeps, call: ToolCall, tool: string, outcome: ToolOutcome, startedMs: number): Promise<void> {
  const ctx = contextOf(call, tool, outcome.connection)
  const durationMs = performance.now() - startedMs
  await deps.recording.record({
    requestId: call.requestId,
    frontEnd: FRONT_END,
    principal: call.principal,
    connection: outcome.connection ?? null,
    route: 'tools/call',
    method: tool,
    outcome: outcome.outcome,
    errorCode: outcome.errorCode ?? null,
    reason: outcome.reason ?? null,
    durationMs,
    startedAtMicros: nowMicros() - Math.round(durationMs * 1000),
    sourceIp: call.sourceIp ?? null,
    userAgent: ctx.userAgent ?? null,
    tool: {
      name: tool,
      ...(call.mcpSessionId !== undefined && { protocolSession: call.mcpSessionId }),
      client: { ...(call.client.name !== undefined && { name: call.client.name }), ...(call.client.version !== undefined && { version: call.client.version }) },
      statementIds: [...call.statementIds],
      ...(call.approvalId !== undefined && { approvalId: call.approvalId }),
      ...(call.introspection !== undefined && { introspection: call.introspection })
    }
  }, {
    sessionKey: ctx.sessionKey,
    principal: call.principal,
    ...(outcome.connection !== undefined && { connection: outcome.connection }),
    frontEnd: FRONT_END,
    ...(ctx.sourceIp !== undefined && { sourceIp: ctx.sourceIp }),
    ...(ctx.userAgent !== undefined && { userAgent: ctx.userAgent })
  })
}
