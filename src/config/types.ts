// The typed shape of a validated configuration. `schema.ts` is the source of truth for
// validation and defaults; this mirrors it for the compiler. Keep the two in step.

export type ConnectionKind = 'snowflake' | 'bigquery' | 'postgres'

export interface ListenConfig {
  host: string
  port: number
  /** Trust X-Forwarded-* from a load balancer in front of Sluice (source IP in events). */
  trustProxy: boolean
  bodyLimitBytes: number
  /**
   * Largest request head (request line + headers) Node accepts; beyond it Node answers 431
   * before Sluice sees the request. Kept well above `identity.maxTokenBytes` so an oversize
   * token is refused by Sluice itself (401, WWW-Authenticate, a recorded event).
   */
  maxHeaderBytes: number
  /** The PostgreSQL wire-protocol listener; absent: not listening. */
  postgres?: PostgresListenConfig
}

export interface PostgresListenConfig {
  host: string
  port: number
  /** Refuse sessions that did not upgrade to TLS (sslmode=disable / prefer without TLS). */
  requireTls: boolean
  /** PEM certificate chain and private key (the values, e.g. via ${file:…}). */
  tls?: { cert: string, key: string }
  /** Largest frontend message accepted (a Bind with large values); larger closes the session. */
  maxMessageBytes: number
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
  /** client id (azp / client_id) → roles, granted to machine (client-credentials) tokens only. */
  clientRoles: Record<string, string[]>
  algorithms: string[]
  clockSkewSeconds: number
  /** Least time between two JWKS fetches triggered by an unknown `kid`. */
  jwksRefetchIntervalSeconds: number
  /** Longest token accepted; must fit within `listen.maxHeaderBytes` with room to spare. */
  maxTokenBytes: number
  /**
   * Refuse tokens whose JOSE header `typ` is not `at+jwt` (RFC 9068), i.e. ID tokens. Optional
   * here so identity configs built in code stay valid; the schema defaults it to false.
   */
  requireAccessTokenType?: boolean
}

export interface ConnectionConfig {
  kind: ConnectionKind
  /** Upstream base URL override (emulators, private links). */
  url?: string
  /** The connection a client gets when it names none (one per kind). */
  default: boolean
  /** What the connection holds, shown to agents (MCP list_connections). */
  description?: string
  /** Overrides of the top-level masking settings for this connection. */
  masking?: Partial<MaskingConfig>
  /** Overrides of the top-level recording settings for this connection. */
  recording?: ConnectionRecordingConfig
  /** Kind-specific settings (account, credentials, project, …), validated by each warehouse. */
  [setting: string]: unknown
}

/** Result capture for one connection: its events are written whatever these say. */
export interface ConnectionRecordingConfig {
  /** false: the connection's events carry no result capture (default true). */
  captureResults?: boolean
  /** The capture budget per event for this connection (default recording.resultCaptureBytes). */
  resultCaptureBytes?: number
}

export interface PoliciesConfig {
  directory: string
  watch: boolean
  /** Statements larger than this (UTF-8 bytes) are refused unparsed: SLUICE_STATEMENT_TOO_LARGE. */
  maxStatementBytes?: number
  /** The parser pool: statements are parsed on worker threads with a time and memory budget. */
  parser?: ParserPoolConfig
}

export interface ParserPoolConfig {
  /** Worker threads at most (default 2). */
  workers?: number
  /** Threads kept running while idle (default 1); the others start when statements wait and stop after 30 s idle. */
  warmWorkers?: number
  /** Time one statement may take to parse and analyse, ms (default 5000); past it: SLUICE_STATEMENT_TOO_COMPLEX. */
  timeoutMs?: number
  /** Heap of each parser thread, MiB (default 512); past it: SLUICE_STATEMENT_TOO_COMPLEX. */
  memoryMb?: number
}

export interface RecordingConfig {
  /** Cap on the captured (masked) result per event; beyond it the capture is marked truncated. */
  resultCaptureBytes: number
  /** Ed25519 private key (PKCS#8 PEM, usually `${file:…}`) signing checkpoints; unsigned without. */
  checkpointKey?: string
  /** A checkpoint after this many events of a chain… */
  checkpointEveryEvents: number
  /** …or this long after the last one, whichever comes first (only when events were written). */
  checkpointIntervalSeconds: number
  /** Refuse a statement before the upstream runs when the store cannot take its event. */
  admissionCheck: boolean
  batch: RecordingBatchConfig
  redact: { params: string[], values: string[] }
  retention: RetentionConfig
  webhook?: WebhookConfig
}

export interface RecordingBatchConfig {
  /** Chains written in parallel by one gateway, each with one INSERT in flight. */
  lanes: number
  /** Most events per INSERT. */
  maxEvents: number
  /** Extra wait for a batch to fill; 0 = flush as soon as the previous write finished. */
  maxDelayMs: number
  /** Events waiting beyond this are refused (503) rather than queued without bound. */
  maxQueue: number
}

export interface RetentionConfig {
  days: number
  /** Result captures are dropped sooner than events; 0 = not kept. */
  resultDays: number
  /** How often the retention job runs; 0 = never (run `sluice audit` jobs instead). */
  intervalSeconds: number
  connections: Record<string, { days?: number, resultDays?: number }>
}

export interface WebhookConfig {
  url: string
  /** HMAC-SHA256 key for the signature header. */
  secret: string
  timeoutMs: number
  maxAttempts: number
  backoffMs: number
  maxBackoffMs: number
  maxQueue: number
  batchSize: number
}

export interface ApprovalsConfig {
  timeoutSeconds: number
  /** Hold statements for approval (default false: refused with `approval required`). */
  enabled?: boolean
  /** Public address of the gateway, for links in notifications. */
  baseUrl?: string
  expireIntervalSeconds?: number
  /** Named notification webhooks; a policy rule's `approval.notify` lists the ones it tells. */
  webhooks?: Record<string, ApprovalWebhookConfig>
}

export interface ApprovalWebhookConfig {
  url: string
  /** HMAC-SHA256 key of the signature header (as the SIEM webhook's). */
  secret: string
  /** json: `{ items: [...] }` like the SIEM webhook; slack: a Slack-compatible `blocks` message. */
  format: 'json' | 'slack'
  timeoutMs: number
  maxAttempts: number
  backoffMs: number
  maxBackoffMs: number
  maxQueue: number
}

export interface MaskingConfig {
  /** An output column whose lineage cannot be traced, on a statement touching masked data. */
  unresolved: 'mask' | 'deny'
  /** Value detectors on columns no rule covers: replace findings, only report them, or not run. */
  detectors: { mode: 'mask' | 'flag' | 'off', kinds?: string[] }
  /** Salt of the sha256 mask; per connection so one value hashes differently per connection. */
  salt?: string
  /** HMAC key of the token mask; keep it stable, or tokens change (and stop joining) on restart. */
  tokenKey?: string
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
  /** Optional so configurations built in code before MCP existed stay valid (absent: defaults). */
  mcp?: McpConfig
  /** Optional so configurations built in code before masking existed stay valid. */
  masking?: MaskingConfig
  /** Optional for the same reason; see src/config/secrets.ts. */
  secrets?: SecretsConfig
  /** Optional for the same reason: absent or `enabled: false` means no traces. */
  tracing?: TracingConfig
}

export interface McpConfig {
  enabled: boolean
  approvalWaitSeconds: number
  maxRows: number
  resourceUrl?: string
  scopes?: string[]
  allowedOrigins?: string[]
}

export interface TracingConfig {
  enabled: boolean
  /** The `service.name` of every span. */
  serviceName: string
  otlp?: {
    /** OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. */
    url?: string
    /** Sent with every export (collector credentials: use `${env:…}` or `${file:…}`). */
    headers?: Record<string, string>
    timeoutMs?: number
  }
}

export interface SecretsConfig {
  /** Root of every secret replicas share (chunk tokens, default masking salt and token key). */
  key?: string
}
