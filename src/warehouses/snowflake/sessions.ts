// Sluice's own connector sessions. A client logs in with its OIDC token and gets opaque session
// and master tokens that mean something only to Sluice; server-side each maps to the principal,
// the connection and a dedicated upstream session. Neither token outlives the OIDC token it
// was issued for: once that expires the client must log in again with a fresh one.
//
// The sessions are records in the store (src/state/connector-sessions.ts), so whichever replica
// a client's next request reaches answers it. Every request reads its session's row: one
// indexed lookup, and the only way a logout or renewal on another replica takes effect at once
// (a cache of token → session, even for seconds, would let a logged-out or renewed token keep
// working there). What is cached per process is only the live UpstreamSession object of a
// session, so concurrent requests share one renewal and nothing is unsealed twice; the row's
// upstream version says when another replica has changed it, and then it is reloaded.
import { createHash, randomBytes, randomInt } from 'node:crypto'
import type { Principal } from '../../identity/principal.js'
import type { ConnectorSessionRecord, ConnectorSessionStore, StoredConnectorSession, StoredUpstream } from '../../state/connector-sessions.js'
import type { Sealer } from '../../state/sealed.js'
import type { SnowflakeSettings } from './config.js'
import type { ClientFormats } from './result-format.js'
import { UpstreamSession, type SnowflakeUpstream, type UpstreamSessionSync } from './upstream.js'
import type { SessionContext } from './query-data.js'

export interface ConnectorSession {
  id: number
  principal: Principal
  settings: SnowflakeSettings
  upstream: SnowflakeUpstream
  upstreamSession: UpstreamSession
  tokenHash: string
  masterHash: string
  tokenExpiresAt: number
  masterExpiresAt: number
  /** The client application the login named (CLIENT_APP_ID), for session events. */
  application?: string
  /** The client's driver and the result format its login asked for (result-format.ts). */
  formats?: ClientFormats
}

export interface IssuedTokens {
  token: string
  masterToken: string
  validityInSeconds: number
  masterValidityInSeconds: number
}

export type Lookup =
  | { state: 'valid', session: ConnectorSession }
  | { state: 'expired' }
  | { state: 'unknown' }

/** How a replica turns a stored connection name into its own settings and upstream client. */
export type ConnectionResolver = (name: string) => { settings: SnowflakeSettings, upstream: SnowflakeUpstream } | undefined

export interface ConnectorSessionsOptions {
  store: ConnectorSessionStore
  /** Seals the upstream tokens; every replica must derive the same key (secrets.key). */
  sealer: Sealer
  connections: ConnectionResolver
  sessionSeconds?: number
  masterSeconds?: number
  /** Live upstream sessions kept per process (default 10,000); the store is the truth. */
  cacheSize?: number
  /** Where a failed best-effort close or an unreadable row is reported. */
  warn?: (obj: object, msg: string) => void
}

/** What is sealed: the upstream session's credentials. */
interface SealedTokens {
  token: string
  masterToken?: string
}

const hash = (token: string): string => createHash('sha256').update(token).digest('base64url')
const newToken = (kind: string): string => `sluice-${kind}-${randomBytes(32).toString('base64url')}`
const aadOf = (id: number): string => `sluice connector session ${id}`
/** Expired sessions closed per purge: a login never waits on more than this many. */
const PURGE_BATCH = 50
const PURGE_EVERY_MS = 60_000
/** How long one replica's claim to renew an upstream session holds, and how long others wait on it. */
const REFRESH_LEASE_SECONDS = 30
const REFRESH_WAIT_MS = 10_000
const REFRESH_POLL_MS = 100

interface Cached {
  connection: string
  upstream: UpstreamSession
  sync: StoredUpstreamSync
}

export class ConnectorSessions {
  readonly #store: ConnectorSessionStore
  readonly #sealer: Sealer
  readonly #connections: ConnectionResolver
  readonly #sessionSeconds: number
  readonly #masterSeconds: number
  readonly #cacheSize: number
  readonly #warn: (obj: object, msg: string) => void
  /** Session id → its live upstream session here; least recently used first. */
  readonly #cache = new Map<number, Cached>()
  #purging: Promise<void> | undefined
  #lastPurge = 0

  constructor (options: ConnectorSessionsOptions) {
    this.#store = options.store
    this.#sealer = options.sealer
    this.#connections = options.connections
    this.#sessionSeconds = options.sessionSeconds ?? 3600
    this.#masterSeconds = options.masterSeconds ?? 4 * 3600
    this.#cacheSize = options.cacheSize ?? 10_000
    this.#warn = options.warn ?? (() => {})
  }

  async create (principal: Principal, settings: SnowflakeSettings, upstream: SnowflakeUpstream, upstreamSession: UpstreamSession,
    extra: { application?: string | undefined, formats?: ClientFormats | undefined } = {}): Promise<{ session: ConnectorSession, tokens: IssuedTokens }> {
    const oidcLeft = Math.max(0, Math.floor((principal.expiresAt.getTime() - Date.now()) / 1000))
    const token = newToken('st')
    const masterToken = newToken('mt')
    const id = randomInt(1, 2 ** 47)
    const record: ConnectorSessionRecord = {
      id,
      tokenHash: hash(token),
      masterHash: hash(masterToken),
      principal,
      connection: settings.name,
      upstream: { ...this.stored(id, upstreamSession), version: 0 }
    }
    if (extra.application !== undefined) record.application = extra.application
    if (extra.formats !== undefined) record.formats = extra.formats
    const stored = await this.#store.create(record, Math.min(this.#sessionSeconds, oidcLeft), Math.min(this.#masterSeconds, oidcLeft))
    const sync = new StoredUpstreamSync(this.#store, this, stored.id, stored.upstream.version)
    upstreamSession.sync = sync
    this.#remember(stored.id, { connection: settings.name, upstream: upstreamSession, sync })
    return {
      session: this.#session(stored, settings, upstream, upstreamSession),
      tokens: { token, masterToken, validityInSeconds: stored.tokenSecondsLeft, masterValidityInSeconds: stored.masterSecondsLeft }
    }
  }

  /** The session behind a session token: valid, expired (renewable) or unknown. */
  async bySessionToken (token: string): Promise<Lookup> {
    this.#purgeNowAndThen()
    const stored = await this.#store.byToken(hash(token))
    if (stored === undefined) return { state: 'unknown' }
    if (!stored.tokenLive) return { state: 'expired' }
    const session = this.#resolve(stored)
    return session === undefined ? { state: 'unknown' } : { state: 'valid', session }
  }

  /** token-request RENEW: a new session token for a live master token; the old one dies everywhere. */
  async renew (masterToken: string): Promise<{ session: ConnectorSession, tokens: IssuedTokens } | undefined> {
    const token = newToken('st')
    const stored = await this.#store.renew(hash(masterToken), hash(token), this.#sessionSeconds)
    if (stored === undefined) return undefined
    const session = this.#resolve(stored)
    if (session === undefined) return undefined
    return { session, tokens: { token, masterToken: '', validityInSeconds: stored.tokenSecondsLeft, masterValidityInSeconds: stored.masterSecondsLeft } }
  }

  /** Logout: the row goes (so no replica serves the session again), then the upstream session. */
  async logout (session: ConnectorSession): Promise<void> {
    this.#cache.delete(session.id)
    await this.#store.delete(session.id)
    await session.upstream.close(session.upstreamSession)
  }

  /**
   * Claims expired sessions in one bounded batch and closes their upstream sessions, best
   * effort; at most one purge runs per process at a time. Resolves when it is done.
   */
  async purgeExpired (limit = PURGE_BATCH): Promise<void> {
    this.#purging ??= this.#purge(limit).finally(() => { this.#purging = undefined })
    await this.#purging
  }

  /**
   * Logins purge too, but a gateway whose clients stay logged in for days would otherwise keep
   * their expired neighbours' upstream sessions open until the warehouse times them out: the
   * requests of live sessions start a bounded purge as well, at most once a minute, off their path.
   */
  #purgeNowAndThen (): void {
    const now = Date.now()
    if (now - this.#lastPurge < PURGE_EVERY_MS) return
    this.#lastPurge = now
    this.purgeExpired().catch((err: unknown) => {
      this.#warn({ err: (err as Error).message }, 'purging expired connector sessions failed; lookups ignore them anyway')
    })
  }

  /** A purge in flight, if any (the runtime waits for it when the gateway stops). */
  get purging (): Promise<void> | undefined { return this.#purging }

  /**
   * Drops this process's copies of its live upstream sessions without closing them: another
   * replica, or this gateway after a restart, may serve them (the store keeps them).
   */
  forget (): void {
    this.#cache.clear()
  }

  /**
   * Ends the sessions this process holds, rows and upstream sessions: for a gateway whose
   * sealing key is its own (no secrets.key), whose sessions no other process can ever open.
   */
  async end (): Promise<void> {
    const held = [...this.#cache]
    this.#cache.clear()
    await Promise.all(held.map(async ([id, cached]) => {
      await this.#store.delete(id).catch(() => undefined)
      await this.#connections(cached.connection)?.upstream.close(cached.upstream)
    }))
  }

  async #purge (limit: number): Promise<void> {
    const gone = await this.#store.claimExpired(limit)
    await Promise.all(gone.map(async (record) => {
      const cached = this.#cache.get(record.id)
      this.#cache.delete(record.id)
      const upstream = this.#connections(record.connection)?.upstream
      const session = cached?.upstream ?? this.#rebuild(record.id, record.upstream)
      if (upstream === undefined || session === undefined) {
        this.#warn({ session: record.id, connection: record.connection }, 'an expired connector session could not be closed upstream; it times out there')
        return
      }
      session.sync = undefined
      await upstream.close(session)
    }))
  }

  /** The stored session as the front ends use it, with this process's live upstream session. */
  #resolve (stored: StoredConnectorSession): ConnectorSession | undefined {
    const connection = this.#connections(stored.connection)
    if (connection === undefined) {
      this.#warn({ session: stored.id, connection: stored.connection }, 'a connector session names a connection this gateway does not have')
      return undefined
    }
    let cached = this.#cache.get(stored.id)
    if (cached !== undefined && cached.sync.version < stored.upstream.version) {
      // Another replica renewed or re-logged-in the upstream session: take its tokens.
      if (!this.adopt(cached.upstream, stored.id, stored.upstream)) cached = undefined
      else cached.sync.version = stored.upstream.version
    }
    if (cached === undefined) {
      const upstream = this.#rebuild(stored.id, stored.upstream)
      if (upstream === undefined) {
        this.#warn({ session: stored.id }, 'a connector session\'s upstream tokens do not open with this gateway\'s secrets.key')
        return undefined
      }
      const sync = new StoredUpstreamSync(this.#store, this, stored.id, stored.upstream.version)
      upstream.sync = sync
      cached = { connection: stored.connection, upstream, sync }
    }
    this.#remember(stored.id, cached)
    return this.#session(stored, connection.settings, connection.upstream, cached.upstream)
  }

  #session (stored: StoredConnectorSession, settings: SnowflakeSettings, upstream: SnowflakeUpstream, upstreamSession: UpstreamSession): ConnectorSession {
    const session: ConnectorSession = {
      id: stored.id,
      principal: stored.principal,
      settings,
      upstream,
      upstreamSession,
      tokenHash: stored.tokenHash,
      masterHash: stored.masterHash,
      tokenExpiresAt: stored.tokenExpiresAt.getTime(),
      masterExpiresAt: stored.expiresAt.getTime()
    }
    if (stored.application !== undefined) session.application = stored.application
    if (stored.formats !== undefined) session.formats = stored.formats as ClientFormats
    return session
  }

  #remember (id: number, cached: Cached): void {
    this.#cache.delete(id)
    this.#cache.set(id, cached)
    // Evicting drops only this process's copy: the next request rebuilds it from the row.
    while (this.#cache.size > this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value as number)
  }

  /** A live upstream session from its stored form, or undefined when its tokens do not open. */
  #rebuild (id: number, stored: StoredUpstream): UpstreamSession | undefined {
    const session = new UpstreamSession(stored.context as SessionContext)
    return this.adopt(session, id, stored) ? session : undefined
  }

  /** Puts the stored tokens and details into `session`; false when they do not open. */
  adopt (session: UpstreamSession, id: number, stored: StoredUpstream): boolean {
    const tokens = this.#sealer.open<SealedTokens>(stored.sealed, aadOf(id))
    if (tokens === undefined || typeof tokens.token !== 'string') return false
    session.token = tokens.token
    session.masterToken = tokens.masterToken
    session.sessionId = stored.sessionId
    session.parameters = stored.parameters
    session.serverVersion = stored.serverVersion
    return true
  }

  /** The stored form of a live upstream session, its tokens sealed under `id`. */
  stored (id: number, session: UpstreamSession): Omit<StoredUpstream, 'version'> {
    const upstream: Omit<StoredUpstream, 'version'> = {
      context: { ...session.context } as Record<string, string>,
      parameters: session.parameters,
      sealed: this.#seal(id, session)
    }
    if (session.sessionId !== undefined) upstream.sessionId = session.sessionId
    if (session.serverVersion !== undefined) upstream.serverVersion = session.serverVersion
    return upstream
  }

  #seal (id: number, session: UpstreamSession): Buffer {
    const tokens: SealedTokens = { token: session.token }
    if (session.masterToken !== undefined) tokens.masterToken = session.masterToken
    return this.#sealer.seal(tokens, aadOf(id))
  }
}

/** Keeps one connector session's upstream tokens in step with the store (upstream.ts). */
class StoredUpstreamSync implements UpstreamSessionSync {
  /** The version this replica claimed to refresh: its tokens replace that one, or none. */
  #claimed: number | undefined

  constructor (readonly store: ConnectorSessionStore, readonly sessions: ConnectorSessions, readonly id: number, public version: number) {}

  async begin (session: UpstreamSession, staleToken: string): Promise<'adopted' | 'mine'> {
    const deadline = Date.now() + REFRESH_WAIT_MS
    for (;;) {
      const stored = await this.store.upstream(this.id)
      // Logged out meanwhile: nothing to coordinate; what runs now is this request's own.
      if (stored === undefined) return 'mine'
      if (stored.version > this.version && this.sessions.adopt(session, this.id, stored)) {
        this.version = stored.version
        if (session.token !== staleToken) return 'adopted'
      }
      this.#claimed = this.version
      if (await this.store.claimRefresh(this.id, this.version, REFRESH_LEASE_SECONDS)) return 'mine'
      // Another replica is renewing: its tokens are on their way. One that hangs or died is
      // not waited for past the deadline.
      if (Date.now() >= deadline) return 'mine'
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS))
    }
  }

  async abandon (): Promise<void> {
    const claimed = this.#claimed ?? this.version
    this.#claimed = undefined
    await this.store.releaseRefresh(this.id, claimed)
  }

  async persist (session: UpstreamSession): Promise<boolean> {
    // Against the version the refresh started from: a newer one stored meanwhile (adopted by a
    // request here) wins, and this refresh's tokens are dropped.
    const claimed = this.#claimed ?? this.version
    this.#claimed = undefined
    const next = await this.store.saveUpstream(this.id, claimed, this.sessions.stored(this.id, session))
    if (next !== undefined) {
      this.version = next
      return true
    }
    const stored = await this.store.upstream(this.id)
    if (stored !== undefined && this.sessions.adopt(session, this.id, stored)) this.version = stored.version
    return false
  }
}
