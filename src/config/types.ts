// The typed shape of a validated configuration. `schema.ts` is the source of truth for
// validation and defaults; this mirrors it for the compiler. Keep the two in step.

export type ConnectionKind = 'snowflake' | 'bigquery' | 'postgres'

export interface ListenConfig {
  host: string
  port: number
  /** Trust X-Forwarded-* from a load balancer in front of Sluice (source IP in events). */
  trustProxy: boolean
  bodyLimitBytes: number
}

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export interface StoreConfig {
  /** Postgres URL; when absent the embedded PGlite store in `dataDir` is used. */
  url?: string
  dataDir: string
  migrateOnStart: boolean
  /** Connections in the postgres.js pool. */
  poolSize: number
}

export interface IdentityConfig {
  issuer: string
  /** Accepted `aud` values; a token must carry at least one. */
  audience: string[]
  /** Where to read the discovery document; defaults to `${issuer}/.well-known/openid-configuration`. */
  discoveryUrl?: string
  /** Dot path of the claim holding groups (string or array), e.g. `groups` or `realm_access.roles`. */
  groupsClaim: string
  /** group name → roles it grants. */
  groupRoles: Record<string, string[]>
  /** client id (azp / client_id) → roles, for machine clients that carry no groups. */
  clientRoles: Record<string, string[]>
  algorithms: string[]
  clockSkewSeconds: number
  /** Least time between two JWKS fetches triggered by an unknown `kid`. */
  jwksRefetchIntervalSeconds: number
  maxTokenBytes: number
}

export interface ConnectionConfig {
  kind: ConnectionKind
  /** Upstream base URL override (emulators, private links). */
  url?: string
  /** The connection a client gets when it names none (one per kind). */
  default: boolean
  /** Kind-specific settings (account, credentials, project, …), validated by each warehouse. */
  [setting: string]: unknown
}

export interface PoliciesConfig {
  directory: string
  watch: boolean
}

export interface RecordingConfig {
  /** Cap on the captured (masked) result per event; beyond it the capture is marked truncated. */
  resultCaptureBytes: number
}

export interface ApprovalsConfig {
  timeoutSeconds: number
}

export interface SluiceConfig {
  listen: ListenConfig
  log: LogConfig
  store: StoreConfig
  identity?: IdentityConfig
  connections: Record<string, ConnectionConfig>
  policies: PoliciesConfig
  recording: RecordingConfig
  approvals: ApprovalsConfig
}
