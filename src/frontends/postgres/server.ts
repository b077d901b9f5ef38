// The PostgreSQL wire-protocol listener (listen.postgres): TCP, the SSLRequest / TLS upgrade,
// the startup packet, cleartext-password authentication carrying the OIDC access token
// (verified exactly as the HTTP bearer path verifies it), the connection chosen by `dbname`,
// BackendKeyData and CancelRequest. After startup each socket belongs to a WireSession.
import { randomInt, randomUUID } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls'
import type { PostgresListenConfig, SluiceConfig } from '../../config/types.js'
import { ERR_CONFIG_INVALID } from '../../errors.js'
import { authenticateToken } from '../../identity/authenticate.js'
import type { TokenVerifier } from '../../identity/verifier.js'
import type { Pipeline } from '../../pipeline.js'
import type { Recording } from '../../recording/recorder.js'
import type { Store } from '../../store/store.js'
import { recordAuthFailure } from '../../recording/round-trips.js'
import { connectionFor, postgresConnections, type PostgresSettings } from '../../warehouses/postgres/connections.js'
import { cancelBackend, UpstreamSession } from '../../warehouses/postgres/upstream.js'
import { storeBackendKeys } from './backend-keys.js'
import { FrameReader, FrameTooLarge, PROTOCOL_3, readPassword, type Frame, type StartupFrame } from './frames.js'
import * as msg from './messages.js'
import { FRONT_END, WireSession, type SessionDeps } from './session.js'

export interface ListenerDeps extends SessionDeps {
  config: SluiceConfig
  verifier: TokenVerifier | null
  /** Where backend keys are kept, so a CancelRequest reaching another replica finds its session. */
  store: Store
  log: SessionDeps['log'] & { info: (o: object, m: string) => void }
}

export interface PostgresListener {
  /** host:port the listener is bound to (port resolved when configured as 0). */
  readonly host: string
  readonly port: number
  close: () => Promise<void>
}

/** Reads frames off a socket in order, one at a time, whatever the chunking. */
class Framed {
  readonly reader: FrameReader
  socket: Socket
  #wake: (() => void) | undefined
  #ended = false

  constructor (socket: Socket, maxBytes: number) {
    this.reader = new FrameReader(maxBytes)
    this.socket = socket
    this.attach(socket)
  }

  readonly #onData = (chunk: Buffer): void => { this.reader.push(chunk); this.#wake?.() }
  readonly #onEnd = (): void => { this.#ended = true; this.#wake?.() }

  attach (socket: Socket): void {
    this.socket = socket
    socket.on('data', this.#onData)
    socket.on('close', this.#onEnd)
    socket.on('error', this.#onEnd)
  }

  /** Stops reading the plain socket (before a TLS upgrade takes it over); other listeners stay. */
  detach (): void {
    this.socket.off('data', this.#onData)
    this.socket.off('close', this.#onEnd)
    this.socket.off('error', this.#onEnd)
  }

  async next<T> (take: () => T | undefined): Promise<T | undefined> {
    for (;;) {
      const frame = take()
      if (frame !== undefined) return frame
      if (this.#ended) return undefined
      await new Promise<void>((resolve) => { this.#wake = resolve })
      this.#wake = undefined
    }
  }
}

export async function startPostgresListener (listen: PostgresListenConfig, deps: ListenerDeps): Promise<PostgresListener> {
  if (listen.requireTls && listen.tls === undefined) throw new ERR_CONFIG_INVALID('/listen/postgres/requireTls needs /listen/postgres/tls (cert and key)')
  const secure: SecureContext | undefined = listen.tls === undefined ? undefined : createSecureContext({ cert: listen.tls.cert, key: listen.tls.key })
  const connections = postgresConnections(deps.config)
  const keys = storeBackendKeys(deps.store)
  // Live sessions of this process by the backend key Sluice issued: a cancel that reaches the
  // session's own replica needs no store round trip.
  const live = new Map<number, { secret: number, session: WireSession }>()
  const sockets = new Set<Socket>()

  const server: Server = createServer((socket) => {
    // A portal answer ends with a small PortalSuspended / ReadyForQuery: with Nagle's algorithm
    // it waits for the client's delayed ACK (~40 ms per batch, measured: 10× slower than direct).
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    void serve(socket).catch((err: Error) => {
      deps.log.warn({ err: err.message }, 'postgres listener: session ended with an error')
      socket.destroy()
    })
  })

  async function fatal (socket: Socket, code: string, message: string, hint?: string): Promise<void> {
    socket.end(msg.errorResponse({ severity: 'FATAL', code, message, ...(hint !== undefined && { hint }) }))
  }

  async function serve (plain: Socket): Promise<void> {
    const framed = new Framed(plain, listen.maxMessageBytes)
    let tls = false
    let startup: StartupFrame | undefined
    for (;;) {
      startup = await framed.next(() => framed.reader.nextStartup())
      if (startup === undefined) return
      if (startup.kind === 'cancel') { await cancel(startup.pid, startup.secret); framed.socket.destroy(); return }
      if (startup.kind === 'gssenc' || (startup.kind === 'ssl' && (secure === undefined || tls))) { framed.socket.write(msg.sslAnswer(false)); continue }
      if (startup.kind === 'ssl') {
        framed.detach()
        plain.write(msg.sslAnswer(true))
        const upgraded = new TLSSocket(plain, { isServer: true, secureContext: secure as SecureContext })
        upgraded.on('error', () => {})
        framed.attach(upgraded)
        tls = true
        continue
      }
      break
    }
    const socket = framed.socket
    if (startup.version !== PROTOCOL_3) return await fatal(socket, '0A000', `unsupported frontend protocol ${startup.version >> 16}.${startup.version & 0xffff}: Sluice speaks 3.0`)
    if (listen.requireTls && !tls) return await fatal(socket, '28000', 'Sluice requires TLS on this listener', 'connect with sslmode=require')
    const parameters = startup.parameters
    const sourceIp = plain.remoteAddress
    const application = parameters.application_name

    socket.write(msg.authenticationCleartextPassword())
    const password = await framed.next(() => framed.reader.next())
    if (password === undefined) return
    if (password.type !== 'p') return await fatal(socket, '08P01', `expected a password message, got '${password.type}'`)
    const token = readPassword(password.body)
    const outcome = await authenticateToken(deps.verifier, token === '' ? undefined : token, deps.log)
    if (!('principal' in outcome)) {
      await recordAuthFailure(deps.recording, {
        requestId: randomUUID(), frontEnd: FRONT_END, route: 'startup', method: 'postgres',
        errorCode: outcome.failure.code, reason: outcome.message,
        ...(sourceIp !== undefined && { sourceIp }), ...(application !== undefined && { userAgent: application })
      }).catch((err: Error) => deps.log.error({ err: err.message }, 'could not record a failed authentication'))
      return await fatal(socket, '28P01', `password authentication failed: ${outcome.message}`, 'the password is your OIDC access token')
    }
    const dbname = parameters.database ?? parameters.user ?? ''
    const settings = connectionFor(connections, dbname)
    if (settings === undefined) {
      return await fatal(socket, '3D000', `database "${dbname}" does not exist: it names no Sluice connection of kind postgres`,
        connections.length === 0 ? undefined : `set dbname to one of: ${connections.map((c) => c.name).join(', ')}`)
    }
    let upstream: UpstreamSession
    try {
      upstream = await UpstreamSession.open(settings, application ?? 'sluice')
    } catch (err) {
      deps.log.warn({ connection: settings.name, err: (err as Error).message }, 'postgres listener: upstream unavailable')
      return await fatal(socket, '08006', `connection ${settings.name}: the upstream database could not be reached`)
    }
    const session = new WireSession(socket, outcome.principal, connectionRef(settings), upstream, deps, {
      ...(sourceIp !== undefined && { sourceIp }), ...(application !== undefined && { application })
    })
    const secret = randomInt(0, 2 ** 31 - 1)
    let pid: number
    try {
      pid = await issueKey(settings, upstream, secret)
    } catch (err) {
      await session.end()
      deps.log.error({ err: (err as Error).message }, 'postgres listener: backend key not stored')
      return await fatal(socket, '57P03', 'Sluice could not register this session (the store is unavailable); retry in a few seconds')
    }
    live.set(pid, { secret, session })
    try {
      socket.write(msg.authenticationOk())
      for (const [name, value] of upstream.parameters) socket.write(msg.parameterStatus(name, value))
      socket.write(msg.backendKeyData(pid, secret))
      socket.write(msg.readyForQuery(upstream.status))
      for (;;) {
        let frame: Frame | undefined
        try {
          frame = await framed.next(() => framed.reader.next())
        } catch (err) {
          if (err instanceof FrameTooLarge) return await fatal(socket, '08P01', err.message)
          throw err
        }
        if (frame === undefined) return
        if (!await session.handle(frame)) { socket.end(); return }
      }
    } finally {
      live.delete(pid)
      await session.end()
      await keys.remove(pid).catch((err: Error) => deps.log.warn({ err: err.message }, 'postgres listener: backend key not removed'))
    }
  }

  async function issueKey (settings: PostgresSettings, upstream: UpstreamSession, secret: number): Promise<number> {
    const { pid: upstreamPid, secret: upstreamSecret } = upstream.backendKey
    for (;;) {
      const pid = randomInt(1, 2 ** 31 - 1)
      if (live.has(pid)) continue
      if (await keys.put({ pid, secret, connection: settings.name, upstreamPid, upstreamSecret })) return pid
    }
  }

  // PostgreSQL answers a CancelRequest with nothing, matched or not; so does Sluice.
  async function cancel (pid: number, secret: number): Promise<void> {
    const entry = live.get(pid)
    if (entry !== undefined) {
      if (entry.secret === secret) await entry.session.upstream.cancel().catch(() => {})
      return
    }
    // Another replica's session: its upstream backend is cancelled from here, with its own key.
    const key = await keys.find(pid, secret).catch(() => undefined)
    const settings = key === undefined ? undefined : connections.find((c) => c.name === key.connection)
    if (key === undefined || settings === undefined) return
    await cancelBackend(settings, key.upstreamPid, key.upstreamSecret).catch(() => {})
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: listen.host, port: listen.port }, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : listen.port
  deps.log.info({ host: listen.host, port, tls: secure !== undefined, requireTls: listen.requireTls, connections: connections.map((c) => c.name) }, 'postgres listener started')
  return {
    host: listen.host,
    port,
    async close () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await closed
    }
  }
}

function connectionRef (settings: PostgresSettings) {
  return { name: settings.name, kind: 'postgres' as const, defaults: { database: settings.database, schema: settings.schema } }
}
