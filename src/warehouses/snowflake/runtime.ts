// What both Snowflake front ends share for the life of the server: the validated connections,
// one upstream client per connection, the connector sessions and the owner-bound handles.
import { gatewaySecrets } from '../../config/secrets.js'
import type { SluiceConfig } from '../../config/types.js'
import { ERR_SNOWFLAKE_CONTEXT_REFUSED, ERR_UNKNOWN_CONNECTION } from '../../errors.js'
import { selectConnection, snowflakeConnections, type SnowflakeSettings } from './config.js'
import type { ConnectorSessionStore } from '../../state/connector-sessions.js'
import type { IdempotencyStore } from '../../state/idempotency.js'
import type { StatementHandleStore } from '../../state/statement-handles.js'
import type { Pipeline } from '../../pipeline.js'
import { randomUUID } from 'node:crypto'
import { createSealer } from '../../state/sealed.js'
import { SnowflakeStatements } from './statements.js'
import { Idempotency } from './idempotency.js'
import { ConnectorSessions } from './sessions.js'
import { SnowflakeUpstream, type UpstreamOptions } from './upstream.js'
import type { SessionContext } from './query-data.js'

export interface SnowflakeRuntimeOptions {
  upstream?: UpstreamOptions
  /** Connector session / master token lifetimes (capped by the OIDC token's own expiry). */
  sessionSeconds?: number
  masterSeconds?: number
  /** Where both front ends keep their requestId bindings (the store, shared by every replica). */
  idempotencyKeys?: IdempotencyStore
  /** Where connector sessions live (the store, so any replica serves a client's next request). */
  connectorSessions?: ConnectorSessionStore
  /** Where both front ends keep their statement handles (the store, shared by every replica). */
  statementHandles?: StatementHandleStore
  /** Masks the later pages of a result when a client asks for them. */
  pipeline?: Pipeline
  /** Heartbeat interval of running statements (ms), shorter in tests. */
  heartbeatMs?: number
  /** Where best-effort failures (an upstream session that could not be closed) are reported. */
  log?: { warn: (obj: object, msg?: string) => void }
}

// A key outlives the result it is bound to, so a late retry is refused instead of run twice.
const MIN_KEY_TTL_SECONDS = 24 * 3600

export class SnowflakeRuntime {
  readonly connections: SnowflakeSettings[]
  readonly handles: SnowflakeStatements
  readonly sessions: ConnectorSessions
  readonly idempotency: Idempotency
  readonly #upstreams = new Map<string, SnowflakeUpstream>()
  readonly #sharedSecrets: boolean

  constructor (config: SluiceConfig, options: SnowflakeRuntimeOptions = {}) {
    this.connections = snowflakeConnections(config)
    const ttl = Math.max(60, ...this.connections.map((c) => c.resultTtlSeconds))
    const secrets = gatewaySecrets(config.secrets?.key)
    this.#sharedSecrets = secrets.shared
    if (options.connectorSessions === undefined) throw new TypeError('SnowflakeRuntime needs connectorSessions (the store every replica shares)')
    if (options.idempotencyKeys === undefined || options.statementHandles === undefined || options.pipeline === undefined) {
      throw new TypeError('SnowflakeRuntime needs idempotencyKeys, statementHandles (the store both front ends share) and the pipeline')
    }
    this.handles = new SnowflakeStatements({
      store: options.statementHandles,
      pipeline: options.pipeline,
      upstreamOf: (name) => {
        const settings = this.connections.find((c) => c.name === name)
        const upstream = settings === undefined ? undefined : this.#upstreams.get(settings.name)
        return settings === undefined || upstream === undefined ? undefined : { settings, upstream }
      },
      replica: randomUUID(),
      ttlSeconds: ttl,
      chunkKey: secrets.derive('snowflake-chunk-tokens'),
      // A held statement's binds wait in the store until someone approves: sealed like tokens.
      heldSealer: createSealer(secrets.derive('snowflake-held-statements')),
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.log === undefined ? {} : { log: options.log })
    })
    this.idempotency = new Idempotency(options.idempotencyKeys, this.handles, { ttlSeconds: Math.max(MIN_KEY_TTL_SECONDS, 2 * ttl) })
    for (const c of this.connections) this.#upstreams.set(c.name, new SnowflakeUpstream(c, options.upstream))
    this.sessions = new ConnectorSessions({
      store: options.connectorSessions,
      // The upstream session tokens are credentials: sealed in the store under a key only
      // gateways configured with the same secrets.key derive.
      sealer: createSealer(secrets.derive('snowflake-connector-upstream-tokens')),
      connections: (name) => {
        const settings = this.connections.find((c) => c.name === name)
        const upstream = this.#upstreams.get(name)
        return settings === undefined || upstream === undefined ? undefined : { settings, upstream }
      },
      sessionSeconds: options.sessionSeconds,
      masterSeconds: options.masterSeconds,
      ...(options.log === undefined ? {} : { warn: (obj: object, msg: string) => { options.log?.warn(obj, msg) } })
    })
  }

  select (requested: string | undefined): SnowflakeSettings | undefined {
    return selectConnection(this.connections, requested)
  }

  upstream (settings: SnowflakeSettings): SnowflakeUpstream {
    const upstream = this.#upstreams.get(settings.name)
    if (upstream === undefined) throw new ERR_UNKNOWN_CONNECTION(settings.name)
    return upstream
  }

  /**
   * Connector sessions outlive a gateway that shares its secrets.key with others: another
   * replica (or this one restarted) serves them from the store, so their upstream sessions stay
   * open and expire, or are logged out, as the client decides. A gateway without secrets.key
   * sealed them under a key that dies with it: nobody can serve them again, so it ends them.
   */
  async close (): Promise<void> {
    await this.handles.close()
    await this.sessions.purging?.catch(() => undefined)
    if (this.#sharedSecrets) this.sessions.forget()
    else await this.sessions.end()
    await Promise.all([...this.#upstreams.values()].map(async (u) => { await u.shutdown() }))
  }
}

/**
 * The context a client asked for, within what the connection allows. Values are compared
 * case-insensitively (Snowflake folds unquoted identifiers); anything outside the allowed
 * lists is refused rather than silently replaced.
 */
export function allowedContext (settings: SnowflakeSettings, requested: SessionContext): SessionContext {
  const check = (what: string, value: string | undefined, allowed: string[] | undefined, configured: string | undefined): string | undefined => {
    if (value === undefined || value === '') return configured
    if (configured !== undefined && value.toLowerCase() === configured.toLowerCase()) return value
    if (allowed === undefined) return value
    if (allowed.some((a) => a.toLowerCase() === value.toLowerCase())) return value
    throw new ERR_SNOWFLAKE_CONTEXT_REFUSED(what, value, settings.name, allowed.length === 0 ? `only ${configured ?? 'the default'}` : allowed.join(', '))
  }
  const context: SessionContext = {}
  const database = check('database', requested.database, settings.allowedDatabases, settings.database)
  const warehouse = check('warehouse', requested.warehouse, settings.allowedWarehouses, settings.warehouse)
  const role = check('role', requested.role, settings.allowedRoles, settings.role)
  const schema = requested.schema !== undefined && requested.schema !== '' ? requested.schema : settings.schema
  if (database !== undefined) context.database = database
  if (schema !== undefined) context.schema = schema
  if (warehouse !== undefined) context.warehouse = warehouse
  if (role !== undefined) context.role = role
  return context
}
