// Snowflake connection settings (the kind-specific keys of a `connections.<name>` entry), their
// validation, and how a client's request selects one of several Snowflake connections.
import { readFileSync } from 'node:fs'
import { connectionSettingsCheck } from '../../config/connection-settings.js'
import type { ConnectionConfig, SluiceConfig } from '../../config/types.js'
import { ERR_CONFIG_INVALID } from '../../errors.js'

export interface SnowflakeSettings {
  /** The connection's name in sluice.yaml. */
  name: string
  /** Upstream base URL (emulators, private links); default https://<account>.snowflakecomputing.com. */
  url: string
  default: boolean
  account: string
  user: string
  password?: string
  /** PEM PKCS#8 private key for key-pair (SNOWFLAKE_JWT) login; read at start. */
  privateKey?: string
  privateKeyPassphrase?: string
  warehouse?: string
  role?: string
  database?: string
  schema?: string
  /** What a client may ask for at login / per statement; absent = any (roles: only `role`). */
  allowedRoles?: string[]
  allowedWarehouses?: string[]
  allowedDatabases?: string[]
  /** Other names a client may send as its account to select this connection. */
  aliases: string[]
  /**
   * Rows per SQL API partition / connector chunk cut from the upstream's inline first page; every
   * later page is one upstream chunk, at the upstream's own size (manifest.ts).
   */
  partitionRows: number
  /**
   * Rows of the first answer of a result the upstream pages in chunks: only these are masked and
   * stored before the client hears of the result; the rest of the upstream's inline rows become
   * pages of their own, re-read from the upstream by query id when asked for (manifest.ts).
   */
  firstPageRows: number
  /** How long a synchronous SQL API call waits before answering 202 (the spec says 45 s). */
  syncWaitSeconds: number
  /** How long finished statement handles stay fetchable (async results, partitions, chunks), in the store. */
  resultTtlSeconds: number
  /** Idle upstream sessions kept per principal and context for the SQL API. */
  poolSize: number
  /**
   * `none`: every upstream session runs USE SECONDARY ROLES NONE before its first statement, so
   * only `role` (or the role a client may pick) applies; `keep`: the user's own default stands.
   */
  secondaryRoles: 'none' | 'keep'
}

const stringList = { type: 'array', items: { type: 'string', minLength: 1 } } as const

const settingsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['user'],
  properties: {
    kind: { const: 'snowflake' },
    url: { type: 'string', pattern: '^https?://' },
    default: { type: 'boolean' },
    account: { type: 'string', minLength: 1 },
    user: { type: 'string', minLength: 1 },
    password: { type: 'string', minLength: 1 },
    privateKeyFile: { type: 'string', minLength: 1 },
    privateKeyPassphrase: { type: 'string' },
    warehouse: { type: 'string', minLength: 1 },
    role: { type: 'string', minLength: 1 },
    database: { type: 'string', minLength: 1 },
    schema: { type: 'string', minLength: 1 },
    allowedRoles: stringList,
    allowedWarehouses: stringList,
    allowedDatabases: stringList,
    aliases: stringList,
    partitionRows: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    firstPageRows: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    syncWaitSeconds: { type: 'number', minimum: 0, maximum: 600 },
    resultTtlSeconds: { type: 'integer', minimum: 10, maximum: 86_400 },
    poolSize: { type: 'integer', minimum: 0, maximum: 100 },
    secondaryRoles: { enum: ['none', 'keep'] }
  }
} as const

const checkSettings = connectionSettingsCheck('Snowflake', settingsSchema)

/** Validates one connection's Snowflake keys; errors name `/connections/<name>/<key>`. */
export function snowflakeSettings (name: string, raw: ConnectionConfig, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): SnowflakeSettings {
  checkSettings(name, raw)
  const c = raw as Record<string, unknown> & ConnectionConfig
  const str = (key: string): string | undefined => typeof c[key] === 'string' ? c[key] : undefined
  const list = (key: string): string[] | undefined => Array.isArray(c[key]) ? c[key] as string[] : undefined
  const account = str('account')
  if (account === undefined && c.url === undefined) {
    throw new ERR_CONFIG_INVALID(`/connections/${name}/account is required unless /connections/${name}/url is set`)
  }
  const password = str('password')
  const privateKeyFile = str('privateKeyFile')
  if (password === undefined && privateKeyFile === undefined) {
    throw new ERR_CONFIG_INVALID(`/connections/${name} needs a credential: privateKeyFile (key-pair) or password`)
  }
  let privateKey: string | undefined
  if (privateKeyFile !== undefined) {
    try {
      privateKey = readFile(privateKeyFile)
    } catch (err) {
      throw new ERR_CONFIG_INVALID(`/connections/${name}/privateKeyFile cannot be read: ${(err as Error).message}`)
    }
  }
  const role = str('role')
  return {
    name,
    url: (c.url ?? `https://${account ?? ''}.snowflakecomputing.com`).replace(/\/+$/, ''),
    default: c.default,
    account: account ?? name,
    user: str('user') ?? '',
    password,
    privateKey,
    privateKeyPassphrase: str('privateKeyPassphrase'),
    warehouse: str('warehouse'),
    role,
    database: str('database'),
    schema: str('schema'),
    allowedRoles: list('allowedRoles') ?? (role === undefined ? [] : [role]),
    allowedWarehouses: list('allowedWarehouses'),
    allowedDatabases: list('allowedDatabases'),
    aliases: list('aliases') ?? [],
    partitionRows: typeof c.partitionRows === 'number' ? c.partitionRows : 10_000,
    firstPageRows: typeof c.firstPageRows === 'number' ? c.firstPageRows : 1_000,
    syncWaitSeconds: typeof c.syncWaitSeconds === 'number' ? c.syncWaitSeconds : 45,
    resultTtlSeconds: typeof c.resultTtlSeconds === 'number' ? c.resultTtlSeconds : 3600,
    poolSize: typeof c.poolSize === 'number' ? c.poolSize : 4,
    secondaryRoles: c.secondaryRoles === 'keep' ? 'keep' : 'none'
  }
}

/** Every Snowflake connection in the configuration, validated. */
export function snowflakeConnections (config: SluiceConfig): SnowflakeSettings[] {
  return Object.entries(config.connections)
    .filter(([, c]) => c.kind === 'snowflake')
    .map(([name, c]) => snowflakeSettings(name, c))
}

/**
 * Routing: a client names a connection by the account it sends (the connector's ACCOUNT_NAME,
 * the SQL API path prefix). The name matches a connection's name, its upstream account or one
 * of its aliases, case-insensitively. A client that names nothing, or a name that matches
 * nothing, gets the default connection — or the only one, when just one is configured.
 * Returns undefined when there is no such connection.
 */
export function selectConnection (connections: SnowflakeSettings[], requested: string | undefined): SnowflakeSettings | undefined {
  const wanted = requested?.trim().toLowerCase()
  if (wanted !== undefined && wanted !== '') {
    const named = connections.find((c) =>
      c.name.toLowerCase() === wanted || c.aliases.some((a) => a.toLowerCase() === wanted))
    if (named !== undefined) return named
    const byAccount = connections.filter((c) => c.account.toLowerCase() === wanted)
    if (byAccount.length === 1) return byAccount[0]
  }
  const defaults = connections.filter((c) => c.default)
  if (defaults.length === 1) return defaults[0]
  return connections.length === 1 ? connections[0] : undefined
}
