// The upstream side: Sluice's own connector-protocol client for one Snowflake connection. It logs
// in with the connection's credential (key-pair JWT or password), turns secondary roles off on
// every session token it is issued, keeps sessions alive (renews on 390112, logs in again when a
// session is gone), follows 333333 "still running" answers and downloads result chunks. Agents
// never see anything this client holds.
import { randomUUID } from 'node:crypto'
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import { request, type Dispatcher } from 'undici'
import { ERR_UPSTREAM_FAILED, ERR_UPSTREAM_SECONDARY_ROLES, ERR_UPSTREAM_UNAVAILABLE } from '../../errors.js'
import type { SnowflakeSettings } from './config.js'
import { createKeyPairSigner, type KeyPairSigner } from './keypair.js'
import { neverSent, transportText } from '../unsent.js'
import { IdleSessions, poolKey } from './pool.js'
import type { QueryData, QueryRequest, RowTypeEntry, SessionContext } from './query-data.js'
import { statementFailed } from './statement-failed.js'
import { readEnvelope } from './inline-rowset.js'

interface Envelope {
  success?: boolean
  code?: string | null
  message?: string | null
  data?: Record<string, unknown> | null
}

/**
 * Where an upstream session shared by several replicas (a connector session's) keeps its
 * tokens. Without one (the SQL API's pooled sessions, which stay in one process) renewals are
 * this process's business alone.
 */
export interface UpstreamSessionSync {
  /**
   * Before renewing or logging in again: adopts the stored tokens if another replica already
   * refreshed since `staleToken` ('adopted': retry with them), else claims the refresh
   * ('mine'), waiting a bounded while as long as another replica holds the claim.
   */
  begin: (session: UpstreamSession, staleToken: string) => Promise<'adopted' | 'mine'>
  /**
   * Stores the tokens this replica just obtained; false when another replica stored first,
   * in which case the session has adopted theirs.
   */
  persist: (session: UpstreamSession) => Promise<boolean>
  /** The refresh failed: gives the claim back so the next replica need not wait it out. */
  abandon: () => Promise<void>
}

export class UpstreamSession {
  token = ''
  masterToken?: string
  sessionId?: number | string
  parameters: Array<{ name: string, value: unknown }> = []
  serverVersion?: string
  renewing?: Promise<void>
  closed = false
  sync?: UpstreamSessionSync
  /**
   * @param owner the principal a pooled (SQL API) session belongs to (`ownerKey`); connector
   *   sessions have none, each belongs to one client login.
   */
  constructor (readonly context: SessionContext, readonly owner?: string) {}
}

export interface UpstreamOptions {
  dispatcher?: Dispatcher
  /** First wait between "still running" polls (default 100 ms); doubles up to 5 s. */
  pollIntervalMs?: number
}

const IN_PROGRESS = new Set(['333333', '333334'])
const SESSION_EXPIRED = '390112'
/** Session gone, invalid, or master token expired: only a new login helps. */
const SESSION_GONE = new Set(['390104', '390111', '390114'])
/**
 * Users created since 2024 default to secondary roles ALL: every role granted to the upstream
 * user would apply to each statement, whatever `role` the connection names.
 */
export const SECONDARY_ROLES_NONE = 'USE SECONDARY ROLES NONE'

export class SnowflakeUpstream {
  readonly #settings: SnowflakeSettings
  readonly #dispatcher: Dispatcher | undefined
  readonly #pollMs: number
  readonly #signer: KeyPairSigner | undefined
  readonly #idle: IdleSessions

  constructor (settings: SnowflakeSettings, options: UpstreamOptions = {}) {
    this.#settings = settings
    this.#dispatcher = options.dispatcher
    this.#pollMs = options.pollIntervalMs ?? 100
    this.#signer = settings.privateKey === undefined
      ? undefined
      : createKeyPairSigner(settings.name, settings.account, settings.user, settings.privateKey, settings.privateKeyPassphrase)
    this.#idle = new IdleSessions(settings.poolSize)
  }

  get name (): string { return this.#settings.name }

  /** A new upstream session (one per connector session: its state, USE and temp tables, is its own). */
  async open (context: SessionContext, owner?: string): Promise<UpstreamSession> {
    const session = new UpstreamSession(context, owner)
    await this.#login(session)
    return session
  }

  async #login (session: UpstreamSession): Promise<void> {
    const s = this.#settings
    const data: Record<string, unknown> = {
      ACCOUNT_NAME: s.account.split('.')[0]?.toUpperCase(),
      LOGIN_NAME: s.user,
      CLIENT_APP_ID: 'Sluice',
      CLIENT_APP_VERSION: '0.1.0',
      CLIENT_ENVIRONMENT: { APPLICATION: 'Sluice' },
      SESSION_PARAMETERS: {}
    }
    if (this.#signer !== undefined) {
      data.AUTHENTICATOR = 'SNOWFLAKE_JWT'
      data.TOKEN = await this.#signer.sign()
    } else {
      data.PASSWORD = s.password
    }
    const query = new URLSearchParams({ requestId: randomUUID() })
    const ctx = session.context
    const database = ctx.database ?? s.database
    const schema = ctx.schema ?? s.schema
    const warehouse = ctx.warehouse ?? s.warehouse
    const role = ctx.role ?? s.role
    if (database !== undefined) query.set('databaseName', database)
    if (schema !== undefined) query.set('schemaName', schema)
    if (warehouse !== undefined) query.set('warehouse', warehouse)
    if (role !== undefined) query.set('roleName', role)
    const body = await this.#send('POST', `/session/v1/login-request?${query.toString()}`, { data }, undefined)
    if (body.success !== true || body.data === null || body.data === undefined) {
      // The upstream's own wording can name the account or user; an operator reads it in the log.
      throw new ERR_UPSTREAM_FAILED(s.name, `login refused (${body.code ?? 'no code'}): ${body.message ?? ''}`)
    }
    const d = body.data
    const token = String(d.token ?? d.sessionToken ?? '')
    // Before the session holds the token: a session whose roles are not settled runs nothing.
    await this.#settleRoles(session, token)
    session.token = token
    session.masterToken = typeof d.masterToken === 'string' ? d.masterToken : undefined
    session.sessionId = d.sessionId as number | string | undefined
    session.parameters = Array.isArray(d.parameters) ? d.parameters as UpstreamSession['parameters'] : []
    session.serverVersion = typeof d.serverVersion === 'string' ? d.serverVersion : undefined
    session.closed = false
  }

  /** Runs one statement to completion (following 333333 polls) and returns the response data. */
  async query (session: UpstreamSession, req: QueryRequest, signal?: AbortSignal): Promise<QueryData> {
    const requestId = randomUUID()
    const path = `/queries/v1/query-request?requestId=${requestId}`
    const body: Record<string, unknown> = { sqlText: req.sqlText, asyncExec: false, sequenceId: 1, querySubmissionTime: Date.now() }
    if (req.bindings !== undefined) body.bindings = req.bindings
    if (req.parameters !== undefined) body.parameters = req.parameters
    if (req.describeOnly === true) body.describeOnly = true
    let envelope: Envelope
    try {
      envelope = await this.#authed(session, 'POST', path, body, signal)
    } catch (err) {
      // Cancelled while the warehouse held the answer: no query id yet, so stop it by request id.
      if (signal?.aborted !== true) throw err
      await this.#authed(session, 'POST', '/queries/v1/abort-request', { requestId }).catch(() => undefined)
      throw new ERR_UPSTREAM_FAILED(this.name, 'the statement was cancelled')
    }
    let wait = this.#pollMs
    while (IN_PROGRESS.has(String(envelope.code)) && envelope.success !== false) {
      const next = (envelope.data as QueryData | undefined)?.getResultUrl
      if (typeof next !== 'string') throw new ERR_UPSTREAM_FAILED(this.name, 'a running query came back without getResultUrl')
      await pause(wait, signal)
      if (signal?.aborted === true) {
        // Cancelled in Sluice: stop the warehouse too (best effort), not just the polling.
        const running = (envelope.data as QueryData | undefined)?.queryId
        if (typeof running === 'string') await this.abort(session, running).catch(() => undefined)
        throw new ERR_UPSTREAM_FAILED(this.name, 'the statement was cancelled')
      }
      wait = Math.min(wait * 2, 5000)
      envelope = await this.#authed(session, 'GET', next, undefined, signal).catch(async (err: unknown) => {
        if (signal?.aborted !== true) throw err
        const running = (envelope.data as QueryData | undefined)?.queryId
        if (typeof running === 'string') await this.abort(session, running).catch(() => undefined)
        throw new ERR_UPSTREAM_FAILED(this.name, 'the statement was cancelled')
      })
    }
    return this.#unwrap(envelope)
  }

  /** GET /queries/{id}/result on the upstream (refreshed chunk URLs, multi-statement children). */
  async result (session: UpstreamSession, queryId: string): Promise<QueryData> {
    return this.#unwrap(await this.#authed(session, 'GET', `/queries/${encodeURIComponent(queryId)}/result`, undefined))
  }

  async abort (session: UpstreamSession, queryId: string): Promise<void> {
    await this.#authed(session, 'POST', `/queries/${encodeURIComponent(queryId)}/abort-request`, {})
  }

  async heartbeat (session: UpstreamSession): Promise<void> {
    await this.#authed(session, 'POST', '/session/heartbeat', {})
  }

  async close (session: UpstreamSession): Promise<void> {
    if (session.closed) return
    session.closed = true
    try {
      await this.#send('POST', `/session?delete=true&requestId=${randomUUID()}`, {}, session.token)
    } catch {
      // The session times out upstream anyway; closing is best effort.
    }
  }

  /** Downloads one result chunk with the headers the upstream issued (SSE-C qrmk or chunkHeaders). */
  async chunk (url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Buffer> {
    let res: Dispatcher.ResponseData
    try {
      res = await request(url, { method: 'GET', headers, dispatcher: this.#dispatcher, signal })
    } catch (err) {
      if (signal?.aborted === true) throw err
      // The statement already ran: a failed chunk is not a retryable "nothing was executed".
      throw new ERR_UPSTREAM_FAILED(this.name, `chunk download failed: ${transportText(err)}`)
    }
    const raw = Buffer.from(await res.body.arrayBuffer())
    if (res.statusCode !== 200) throw new ERR_UPSTREAM_FAILED(this.name, `chunk download answered HTTP ${res.statusCode}`)
    return raw[0] === 0x1f && raw[1] === 0x8b ? await gunzipAsync(raw) : raw
  }

  // ── SQL API pool: a principal's stateless requests reuse its own sessions (pool.ts) ─────
  /** An idle session of this owner (`ownerKey` of the principal) and context, or a new one. */
  async lease (owner: string, context: SessionContext): Promise<UpstreamSession> {
    return this.#idle.take(poolKey(owner, context)) ?? await this.open(context, owner)
  }

  release (session: UpstreamSession): void {
    if (session.closed) return
    // A session without an owner is a connector login's own; it never enters the pool.
    if (session.owner === undefined) return
    for (const gone of this.#idle.put(poolKey(session.owner, session.context), session)) void this.close(gone)
  }

  async shutdown (): Promise<void> {
    await Promise.all(this.#idle.drain().map(async (s) => { await this.close(s) }))
  }

  // ── transport ──────────────────────────────────────────────────────────────────────────
  #unwrap (envelope: Envelope): QueryData {
    if (envelope.success !== true) {
      const data = (envelope.data ?? {}) as Record<string, unknown>
      throw statementFailed(this.name, envelope.message ?? 'unknown error', {
        snowflakeCode: envelope.code ?? (typeof data.errorCode === 'string' ? data.errorCode : undefined),
        sqlState: typeof data.sqlState === 'string' ? data.sqlState : undefined,
        upstreamQueryId: typeof data.queryId === 'string' ? data.queryId : undefined
      })
    }
    return (envelope.data ?? {}) as QueryData
  }

  /** A session-token request that survives an expired (renew) or vanished (log in again) session. */
  async #authed (session: UpstreamSession, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<Envelope> {
    // Logged out, or never settled (secondary roles): log in again from the client's side.
    if (session.closed) throw new ERR_UPSTREAM_FAILED(this.name, 'the upstream session is closed; log in again')
    for (let attempt = 0; ; attempt++) {
      const token = session.token
      const envelope = await this.#send(method, path, body, token, signal)
      const code = String(envelope.code ?? '')
      if (envelope.success !== false || attempt >= 2) return envelope
      if (code === SESSION_EXPIRED) {
        await this.#refreshOnce(session, token, 'renew')
      } else if (SESSION_GONE.has(code)) {
        await this.#refreshOnce(session, token, 'login')
      } else {
        return envelope
      }
    }
  }

  /**
   * Concurrent requests that all saw 390112 (renew) or 390104 (log in again) share one
   * refresh. A session other replicas share is first reloaded from the store, where one of them
   * may already have put fresh tokens: two replicas do not both renew, and what one obtained is
   * stored for the others.
   */
  async #refreshOnce (session: UpstreamSession, staleToken: string, how: 'renew' | 'login'): Promise<void> {
    if (session.token !== staleToken) return
    session.renewing ??= this.#refresh(session, staleToken, how).finally(() => { session.renewing = undefined })
    await session.renewing
  }

  async #refresh (session: UpstreamSession, staleToken: string, how: 'renew' | 'login'): Promise<void> {
    const sync = session.sync
    if (sync !== undefined && await sync.begin(session, staleToken) === 'adopted') return
    let outcome: 'renewed' | 'logged-in'
    try {
      outcome = how === 'renew' ? await this.#renew(session) : (await this.#login(session), 'logged-in')
    } catch (err) {
      await sync?.abandon().catch(() => undefined)
      throw err
    }
    if (sync === undefined) return
    const mine = session.token
    if (await sync.persist(session)) return
    // Another replica stored its own refresh first and this session took it over. A fresh login
    // of ours is a second upstream session nobody will use: log it out. (A renewed token of the
    // same session is left alone: deleting it would end the session for everyone.)
    if (outcome === 'logged-in' && session.token !== mine) {
      await this.#send('POST', `/session?delete=true&requestId=${randomUUID()}`, {}, mine).catch(() => undefined)
    }
  }

  async #renew (session: UpstreamSession): Promise<'renewed' | 'logged-in'> {
    if (session.masterToken === undefined) {
      await this.#login(session)
      return 'logged-in'
    }
    const envelope = await this.#send('POST', `/session/token-request?requestId=${randomUUID()}`,
      { oldSessionToken: session.token, requestType: 'RENEW' }, session.masterToken)
    const d = envelope.data
    if (envelope.success !== true || d === null || d === undefined) {
      await this.#login(session)
      return 'logged-in'
    }
    const token = String(d.sessionToken ?? d.token ?? '')
    // Snowflake keeps the session (and its secondary roles) across a renewal, but nothing in the
    // answer proves it is the same session: one statement an hour buys the certainty.
    await this.#settleRoles(session, token)
    session.token = token
    if (typeof d.masterToken === 'string') session.masterToken = d.masterToken
    return 'renewed'
  }

  /**
   * Runs USE SECONDARY ROLES NONE on a freshly issued session token, unless the connection opted
   * out. Fails closed: when the warehouse refuses it, the upstream session is logged out and this
   * session is closed, so neither the request that opened it nor any later one runs on it.
   */
  async #settleRoles (session: UpstreamSession, token: string): Promise<void> {
    if (this.#settings.secondaryRoles === 'keep') return
    let envelope: Envelope
    try {
      // #send, not #authed: a refusal here must not start another login of the same session.
      envelope = await this.#send('POST', `/queries/v1/query-request?requestId=${randomUUID()}`,
        { sqlText: SECONDARY_ROLES_NONE, asyncExec: false, sequenceId: 1, querySubmissionTime: Date.now() }, token)
      for (let polls = 0; IN_PROGRESS.has(String(envelope.code)) && envelope.success !== false && polls < 20; polls++) {
        const next = (envelope.data as QueryData | undefined)?.getResultUrl
        if (typeof next !== 'string') break
        await pause(this.#pollMs, undefined)
        envelope = await this.#send('GET', next, undefined, token)
      }
    } catch (err) {
      envelope = { success: false, message: (err as Error).message }
    }
    if (envelope.success === true && !IN_PROGRESS.has(String(envelope.code))) return
    session.closed = true
    session.token = ''
    await this.#send('POST', `/session?delete=true&requestId=${randomUUID()}`, {}, token).catch(() => undefined)
    throw new ERR_UPSTREAM_SECONDARY_ROLES(this.name, `${envelope.code ?? 'no code'}: ${envelope.message ?? 'no answer'}`)
  }

  async #send (method: string, path: string, body: unknown, token: string | undefined, signal?: AbortSignal): Promise<Envelope> {
    const headers: Record<string, string> = {
      accept: 'application/snowflake',
      'content-type': 'application/json',
      'user-agent': 'Sluice/0.1.0'
    }
    if (token !== undefined) headers.authorization = `Snowflake Token="${token}"`
    let res: Dispatcher.ResponseData
    try {
      res = await request(`${this.#settings.url}${path}`, {
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.#dispatcher,
        signal
      })
    } catch (err) {
      // Retryable only when the request certainly never left: once sent, a statement may have run.
      if (neverSent(err)) throw new ERR_UPSTREAM_UNAVAILABLE(this.name, transportText(err))
      throw new ERR_UPSTREAM_FAILED(this.name, `the connection failed while the request was in flight, so it may have run: ${transportText(err)}`)
    }
    const raw = Buffer.from(await res.body.arrayBuffer())
    const answer = raw[0] === 0x1f && raw[1] === 0x8b ? await gunzipAsync(raw) : raw
    let parsed: Envelope | undefined
    try {
      // Its inline rowset stays bytes until a page of it is released (inline-rowset.ts).
      parsed = readEnvelope<Envelope>(answer, (what) => new Error(what))
    } catch {
      parsed = undefined
    }
    // Snowflake answers most failures with 200 + success:false; a 401 (and an emulator's 500)
    // carry the same body, which says more than the status does.
    if (parsed !== undefined && (res.statusCode === 200 || parsed.success === false)) return parsed
    throw new ERR_UPSTREAM_FAILED(this.name, `HTTP ${res.statusCode} from ${path.split('?')[0] ?? path}`)
  }
}

/** Off the event loop (zlib's thread pool): a chunk is megabytes. */
const gunzipAsync = promisify(gunzip)

/** Sleeps, waking early when the statement is cancelled. */
async function pause (ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}
