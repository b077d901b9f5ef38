// The MCP front end: Streamable HTTP at /mcp (the official SDK's transport, stateless per request,
// with session ids and resumable response streams Sluice keeps in the store so any replica
// answers), OAuth resource-server behaviour per the MCP authorization spec (401 + `WWW-Authenticate: Bearer resource_metadata=…`,
// the RFC 9728 protected resource metadata naming the configured issuer), and every connection
// exposed as tools through the warehouse ports (src/warehouses/port.ts). Thin wiring: the tools
// live in src/frontends/mcp.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { McpConfig } from '../src/config/types.js'
import { ERR_AUTH_MISSING, ERR_MCP_SESSION_UNKNOWN } from '../src/errors.js'
import { FRONT_END, type McpDeps } from '../src/frontends/mcp/context.js'
import { protectedResourceMetadata, publicOrigin, resourceUrl, metadataUrl } from '../src/frontends/mcp/metadata.js'
import type { RequestFacts } from '../src/frontends/mcp/server.js'
import { StoreEventLog } from '../src/frontends/mcp/events.js'
import { McpSignals } from '../src/frontends/mcp/signals.js'
import { cancelledIds, closeWhenAnswered, initializeOf, jsonRpcError, responsesOf, text } from '../src/frontends/mcp/transport.js'
import { ownerOf, storeMcpSessions, type McpSessionStore } from '../src/frontends/mcp/sessions.js'
import type { PolicySet } from '../src/policy/model.js'
import { warehousePorts } from '../src/warehouses/ports.js'

export interface McpPluginOptions {
  /** The policy set deciding now (the gateway's watcher), for which connections a principal may use. */
  policies?: () => PolicySet
}

// The MCP SDK and zod, its schema library, hold megabytes of code and heap once loaded: a
// gateway nobody calls over MCP never loads them; the first POST /mcp does (once per process).
let sdk: Promise<{
  StreamableHTTPServerTransport: typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js').StreamableHTTPServerTransport
  createMcpServer: typeof import('../src/frontends/mcp/server.js').createMcpServer
}> | undefined
async function loadSdk (): NonNullable<typeof sdk> {
  sdk ??= Promise.all([import('@modelcontextprotocol/sdk/server/streamableHttp.js'), import('../src/frontends/mcp/server.js')])
    .then(([transport, server]) => ({ StreamableHTTPServerTransport: transport.StreamableHTTPServerTransport, createMcpServer: server.createMcpServer }))
  sdk.catch(() => { sdk = undefined })
  return await sdk
}

const DEFAULTS: McpConfig = { enabled: true, approvalWaitSeconds: 120, maxRows: 500 }
/** Idle MCP sessions are forgotten after this long (each request renews it). */
const SESSION_TTL_SECONDS = 24 * 3600
/** A resumed stream is followed this much longer than a held call can wait. */
const RESUME_MARGIN_SECONDS = 120

async function mcpPlugin (fastify: FastifyInstance, opts: McpPluginOptions): Promise<void> {
  const config: McpConfig = { ...DEFAULTS, ...fastify.config.mcp }
  if (!config.enabled) return
  const ports = warehousePorts(fastify.config, { ...(fastify.hasDecorator('snowflake') && { snowflake: fastify.snowflake }) })
  fastify.addHook('onClose', async function closePorts () { await Promise.all([...ports.values()].map(async (p) => { await p.close() })) })
  const sessions: McpSessionStore = storeMcpSessions(fastify.store, SESSION_TTL_SECONDS)
  const events = new StoreEventLog(fastify.store)
  // Cancellations and elicitation answers for calls running here or on another replica: a
  // local entry lives exactly as long as its POST (DESIGN.md §5.11); the rest goes through the store.
  const signals = new McpSignals(fastify.store)
  const deps: McpDeps = {
    pipeline: fastify.pipeline,
    recording: fastify.recording,
    ...(fastify.hasDecorator('approvals') && { approvals: fastify.approvals }),
    ports,
    ...(opts.policies !== undefined && { policies: opts.policies }),
    config,
    descriptions: new Map(Object.entries(fastify.config.connections).map(([name, c]) => [name, { ...(c.description !== undefined && { description: c.description }), default: c.default }])),
    log: fastify.log
  }
  const issuer = fastify.config.identity?.issuer

  // RFC 9728 §3: at the root, and with the resource's path appended (/mcp), which is where an MCP
  // client looks first for the resource https://host/mcp.
  const document = async function protectedResource (request: FastifyRequest) {
    return protectedResourceMetadata(resourceUrl(config, request), issuer, config.scopes)
  }
  fastify.get('/.well-known/oauth-protected-resource', document)
  fastify.get('/.well-known/oauth-protected-resource/mcp', document)

  const routeConfig = {
    authenticate: true,
    frontEnd: FRONT_END,
    authChallengeParams: (request: FastifyRequest) => `resource_metadata="${metadataUrl(config, request)}"`
  }
  // The MCP transport spec: validate Origin against DNS rebinding. A request a browser sends on a
  // page's behalf carries one; only the endpoint's own origin and mcp.allowedOrigins may call.
  const checkOrigin = async function checkOrigin (request: FastifyRequest, reply: FastifyReply) {
    const origin = request.headers.origin
    if (origin === undefined || origin === new URL(resourceUrl(config, request)).origin || (config.allowedOrigins ?? []).includes(origin)) return undefined
    return jsonRpcError(reply, 403, -32000, `Forbidden: origin ${origin.slice(0, 200)} may not call this MCP endpoint (mcp.allowedOrigins)`)
  }
  // Malformed bodies (not JSON, not UTF-8, too large) are answered as JSON-RPC errors, the client's own protocol.
  const errorHandler = function mcpError (error: Error & { statusCode?: number, code?: string }, _request: FastifyRequest, reply: FastifyReply) {
    const status = error.statusCode ?? 500
    if (status >= 500) return jsonRpcError(reply, 500, -32603, 'Internal error')
    const parse = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/i.test(error.message)
    return jsonRpcError(reply, status, parse ? -32700 : -32600, `${parse ? 'Parse error' : 'Invalid Request'}: ${error.message}`)
  }

  fastify.post('/mcp', { config: routeConfig, errorHandler, onRequest: checkOrigin }, async function mcpPost (request, reply) {
    const principal = request.principal
    if (principal === null) throw new ERR_AUTH_MISSING()
    const facts: RequestFacts = { principal, sourceIp: request.ip }
    const init = initializeOf(request.body)
    const sessionId = request.headers['mcp-session-id']
    if (init !== undefined) {
      const clientName = text(init.clientInfo?.name)
      const clientVersion = text(init.clientInfo?.version)
      const protocolVersion = text(init.protocolVersion)
      const session = await sessions.open(principal, {
        ...(clientName !== undefined && { clientName }),
        ...(clientVersion !== undefined && { clientVersion }),
        ...(protocolVersion !== undefined && { protocolVersion }),
        capabilities: init.capabilities !== null && typeof init.capabilities === 'object' ? init.capabilities as Record<string, unknown> : {}
      })
      facts.session = session
      facts.client = { ...(clientName !== undefined && { name: clientName }), ...(clientVersion !== undefined && { version: clientVersion }) }
      reply.raw.setHeader('mcp-session-id', session.id)
    } else if (typeof sessionId === 'string') {
      const session = await sessions.find(principal, sessionId)
      // The spec's answer to a session the server no longer has: 404, and the client starts over.
      if (session === undefined) return jsonRpcError(reply, 404, -32001, new ERR_MCP_SESSION_UNKNOWN(sessionId.slice(0, 64)).message)
      facts.session = session
      reply.raw.setHeader('mcp-session-id', session.id)
    }
    // Each POST has its own server, so a cancellation (another POST) is routed, by caller,
    // session and JSON-RPC id, to the call it names, on this replica or through the store to
    // the one running it; so is a client's answer to an elicitation.
    const target = { owner: ownerOf(principal), session: facts.session?.id ?? '' }
    for (const id of cancelledIds(request.body)) await signals.cancel(target, id)
    for (const answer of responsesOf(request.body)) await signals.reply(target, answer)
    // Watched while the call runs: a client that went away may still cancel it.
    facts.cancelled = (id) => {
      const controller = new AbortController()
      return { signal: controller.signal, stop: signals.running(target, id, controller) }
    }
    facts.signals = signals
    const { StreamableHTTPServerTransport, createMcpServer } = await loadSdk()
    const server = createMcpServer(deps, facts)
    // Every message of the response stream goes to the store first, so a client whose stream
    // breaks resumes it on any replica (GET with Last-Event-ID, below).
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, eventStore: events.forOwner(ownerOf(principal)) })
    closeWhenAnswered(transport, server, request.body, reply)
    await server.connect(transport)
    reply.hijack()
    await transport.handleRequest(request.raw, reply.raw, request.body)
    return reply
  })

  // Only to resume a response stream (Last-Event-ID): every notification Sluice sends (progress)
  // belongs to a tool call and travels on that call's own stream, so there is no standalone
  // server-to-client stream, and the spec's answer to a plain GET is 405.
  fastify.get('/mcp', { config: routeConfig, errorHandler, onRequest: checkOrigin }, async function mcpGet (request, reply) {
    const principal = request.principal
    if (principal === null) throw new ERR_AUTH_MISSING()
    const lastEventId = request.headers['last-event-id']
    if (typeof lastEventId !== 'string') {
      reply.header('allow', 'POST, DELETE')
      return jsonRpcError(reply, 405, -32000, 'Method not allowed: Sluice sends no server-initiated stream; notifications arrive on each call\'s response (GET only resumes one, with Last-Event-ID)')
    }
    const streamId = await events.streamOf(ownerOf(principal), lastEventId)
    if (streamId === undefined) return jsonRpcError(reply, 404, -32001, `no response stream has event ${lastEventId.slice(0, 40)} for this caller`)
    reply.hijack()
    const raw = reply.raw
    raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...(typeof request.headers['mcp-session-id'] === 'string' && { 'mcp-session-id': request.headers['mcp-session-id'] })
    })
    const gone = new AbortController()
    raw.on('close', () => { gone.abort() })
    try {
      await events.follow(streamId, lastEventId, (chunk) => raw.write(chunk), { until: Date.now() + (config.approvalWaitSeconds + RESUME_MARGIN_SECONDS) * 1000, signal: gone.signal })
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'mcp: resuming a stream failed')
    }
    raw.end()
    return reply
  })

  fastify.delete('/mcp', { config: routeConfig, errorHandler, onRequest: checkOrigin }, async function mcpDelete (request, reply) {
    const principal = request.principal
    if (principal === null) throw new ERR_AUTH_MISSING()
    const sessionId = request.headers['mcp-session-id']
    if (typeof sessionId !== 'string') return jsonRpcError(reply, 400, -32000, 'Bad Request: the Mcp-Session-Id header names the session to end')
    if (!await sessions.remove(principal, sessionId)) return jsonRpcError(reply, 404, -32001, new ERR_MCP_SESSION_UNKNOWN(sessionId.slice(0, 64)).message)
    return reply.code(200).send({ ended: sessionId })
  })

  fastify.log.info({ path: '/mcp', origin: publicOrigin(config) ?? 'from each request', tools: 7, connections: [...ports.keys()] }, 'mcp endpoint ready')
}

export default fp(mcpPlugin, {
  name: 'sluice-mcp',
  fastify: '5.x',
  dependencies: ['sluice-store', 'sluice-auth', 'sluice-recording', 'sluice-approvals']
})
