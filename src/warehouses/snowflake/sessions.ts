// Sluice's own connector sessions. A client logs in with its OIDC token and gets opaque session
// and master tokens that mean something only to Sluice; server-side each maps to the principal,
// the connection and a dedicated upstream session. Neither token outlives the OIDC token it
// was issued for: once that expires the client must log in again with a fresh one.
import { createHash, randomBytes, randomInt } from 'node:crypto'
import type { Principal } from '../../identity/principal.js'
import type { SnowflakeSettings } from './config.js'
import type { ClientFormats } from './result-format.js'
import type { SnowflakeUpstream, UpstreamSession } from './upstream.js'

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

const hash = (token: string): string => createHash('sha256').update(token).digest('base64url')
const newToken = (kind: string): string => `sluice-${kind}-${randomBytes(32).toString('base64url')}`

export class ConnectorSessions {
  readonly #byToken = new Map<string, ConnectorSession>()
  readonly #byMaster = new Map<string, ConnectorSession>()
  readonly #sessionSeconds: number
  readonly #masterSeconds: number

  constructor (options: { sessionSeconds?: number, masterSeconds?: number } = {}) {
    this.#sessionSeconds = options.sessionSeconds ?? 3600
    this.#masterSeconds = options.masterSeconds ?? 4 * 3600
  }

  create (principal: Principal, settings: SnowflakeSettings, upstream: SnowflakeUpstream, upstreamSession: UpstreamSession, application?: string): { session: ConnectorSession, tokens: IssuedTokens } {
    const session: ConnectorSession = {
      id: randomInt(1, 2 ** 47),
      principal,
      settings,
      upstream,
      upstreamSession,
      tokenHash: '',
      masterHash: '',
      tokenExpiresAt: 0,
      masterExpiresAt: 0
    }
    if (application !== undefined) session.application = application
    const tokens = this.#issue(session, true)
    return { session, tokens }
  }

  /** The session behind a session token: valid, expired (renewable) or unknown. */
  bySessionToken (token: string): Lookup {
    const session = this.#byToken.get(hash(token))
    if (session === undefined) return { state: 'unknown' }
    if (Date.now() >= session.tokenExpiresAt) return { state: Date.now() < session.masterExpiresAt ? 'expired' : 'unknown' }
    return { state: 'valid', session }
  }

  /** token-request RENEW: a new session token for a live master token. */
  renew (masterToken: string): { session: ConnectorSession, tokens: IssuedTokens } | undefined {
    const session = this.#byMaster.get(hash(masterToken))
    if (session === undefined || Date.now() >= session.masterExpiresAt) return undefined
    return { session, tokens: this.#issue(session, false) }
  }

  delete (session: ConnectorSession): void {
    this.#byToken.delete(session.tokenHash)
    this.#byMaster.delete(session.masterHash)
  }

  /** Removes sessions whose master token has run out; their upstream sessions are the caller's to close. */
  sweep (): ConnectorSession[] {
    const now = Date.now()
    const gone = this.all().filter((s) => now >= s.masterExpiresAt)
    for (const session of gone) this.delete(session)
    return gone
  }

  all (): ConnectorSession[] {
    return [...new Set(this.#byMaster.values())]
  }

  #issue (session: ConnectorSession, withMaster: boolean): IssuedTokens {
    const now = Date.now()
    const oidcLeft = Math.max(0, Math.floor((session.principal.expiresAt.getTime() - now) / 1000))
    const sessionSeconds = Math.min(this.#sessionSeconds, oidcLeft)
    const token = newToken('st')
    this.#byToken.delete(session.tokenHash)
    session.tokenHash = hash(token)
    session.tokenExpiresAt = now + sessionSeconds * 1000
    this.#byToken.set(session.tokenHash, session)
    let masterToken = ''
    if (withMaster) {
      masterToken = newToken('mt')
      session.masterHash = hash(masterToken)
      session.masterExpiresAt = now + Math.min(this.#masterSeconds, oidcLeft) * 1000
      this.#byMaster.set(session.masterHash, session)
    }
    return {
      token,
      masterToken,
      validityInSeconds: sessionSeconds,
      masterValidityInSeconds: Math.max(0, Math.floor((session.masterExpiresAt - now) / 1000))
    }
  }
}
