// The one ajv schema for sluice.yaml. Defaults live here so a minimal file (or none) yields a
// complete, runnable configuration. `types.ts` mirrors this shape for the compiler.

const roleList = { type: 'array', items: { type: 'string', minLength: 1 } } as const

const DETECTOR_KINDS = ['email', 'phone', 'ssn', 'credit_card', 'iban', 'ip', 'aws_key', 'private_key', 'gcp_service_account', 'jwt']

/** Masking settings: top level (with defaults) and per connection (overrides, no defaults). */
function maskingProperties (withDefaults: boolean) {
  const d = <T>(value: T): { default?: T } => (withDefaults ? { default: value } : {})
  return {
    unresolved: { enum: ['mask', 'deny'], ...d('mask') },
    detectors: {
      type: 'object',
      additionalProperties: false,
      ...d({}),
      properties: {
        mode: { enum: ['mask', 'flag', 'off'], ...d('mask') },
        kinds: { type: 'array', minItems: 1, items: { enum: DETECTOR_KINDS } }
      }
    },
    salt: { type: 'string', minLength: 16 },
    tokenKey: { type: 'string', minLength: 16 }
  } as const
}

export const configSchema = {
  $id: 'https://sluice.dev/schemas/config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        trustProxy: { type: 'boolean', default: false },
        bodyLimitBytes: { type: 'integer', minimum: 1024, default: 16 * 1024 * 1024 },
        // Node's own default (16 KiB) is no bigger than a large token: see identity.maxTokenBytes.
        maxHeaderBytes: { type: 'integer', minimum: 16384, maximum: 2097152, default: 65536 },
        // The PostgreSQL wire-protocol listener; off unless configured.
        postgres: {
          type: 'object',
          additionalProperties: false,
          required: ['port'],
          properties: {
            host: { type: 'string', minLength: 1, default: '127.0.0.1' },
            port: { type: 'integer', minimum: 0, maximum: 65535 },
            requireTls: { type: 'boolean', default: false },
            tls: {
              type: 'object',
              additionalProperties: false,
              required: ['cert', 'key'],
              properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } }
            },
            maxMessageBytes: { type: 'integer', minimum: 65536, default: 67108864 }
          }
        }
      }
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }
      }
    },
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        url: { type: 'string', pattern: '^postgres(ql)?://' },
        dataDir: { type: 'string', minLength: 1, default: '.sluice/data' },
        migrateOnStart: { type: 'boolean', default: true },
        poolSize: { type: 'integer', minimum: 1, maximum: 100, default: 10 }
      }
    },
    identity: {
      type: 'object',
      additionalProperties: false,
      required: ['issuer', 'audience'],
      properties: {
        issuer: { type: 'string', pattern: '^https?://' },
        audience: {
          // A single string is accepted and normalised to a list by the loader.
          anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }]
        },
        discoveryUrl: { type: 'string', pattern: '^https?://' },
        groupsClaim: { type: 'string', minLength: 1, default: 'groups' },
        groupRoles: { type: 'object', additionalProperties: roleList, default: {} },
        clientRoles: { type: 'object', additionalProperties: roleList, default: {} },
        algorithms: {
          type: 'array',
          minItems: 1,
          // Asymmetric algorithms only: `none` and HS* are never accepted from an OIDC issuer.
          items: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] },
          default: ['RS256', 'PS256', 'ES256', 'EdDSA']
        },
        clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 300, default: 30 },
        jwksRefetchIntervalSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30 },
        maxTokenBytes: { type: 'integer', minimum: 512, maximum: 1048576, default: 16384 },
        requireAccessTokenType: { type: 'boolean', default: false }
      }
    },
    connections: {
      type: 'object',
      default: {},
      propertyNames: { pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
      additionalProperties: {
        type: 'object',
        required: ['kind'],
        properties: {
          kind: { enum: ['snowflake', 'bigquery', 'postgres'] },
          url: { type: 'string', pattern: '^[a-z]+://' },
          default: { type: 'boolean', default: false },
          // Shown to agents (MCP list_connections): what the data is and what it is for.
          description: { type: 'string', minLength: 1, maxLength: 1000 },
          masking: { type: 'object', additionalProperties: false, properties: maskingProperties(false) },
          // Overrides of recording.resultCaptureBytes; the connection's events are always written.
          recording: {
            type: 'object',
            additionalProperties: false,
            properties: {
              captureResults: { type: 'boolean' },
              resultCaptureBytes: { type: 'integer', minimum: 0 }
            }
          }
        }
      }
    },
    policies: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        directory: { type: 'string', minLength: 1, default: './policies' },
        watch: { type: 'boolean', default: true },
        maxStatementBytes: { type: 'integer', minimum: 1, default: 1048576 },
        parser: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            workers: { type: 'integer', minimum: 1, maximum: 64, default: 2 },
            warmWorkers: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
            timeoutMs: { type: 'integer', minimum: 100, default: 5000 },
            memoryMb: { type: 'integer', minimum: 32, default: 512 }
          }
        }
      }
    },
    recording: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        resultCaptureBytes: { type: 'integer', minimum: 0, default: 1048576 },
        checkpointKey: { type: 'string' },
        checkpointEveryEvents: { type: 'integer', minimum: 1, default: 1000 },
        checkpointIntervalSeconds: { type: 'integer', minimum: 1, default: 60 },
        admissionCheck: { type: 'boolean', default: true },
        batch: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            lanes: { type: 'integer', minimum: 1, maximum: 8, default: 2 },
            maxEvents: { type: 'integer', minimum: 1, maximum: 5000, default: 500 },
            maxDelayMs: { type: 'integer', minimum: 0, maximum: 1000, default: 0 },
            maxQueue: { type: 'integer', minimum: 1, default: 20000 }
          }
        },
        redact: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            params: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['*password*', '*secret*', '*token*'] },
            values: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] }
          }
        },
        retention: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            days: { type: 'integer', minimum: 1, default: 365 },
            resultDays: { type: 'integer', minimum: 0, default: 30 },
            intervalSeconds: { type: 'integer', minimum: 0, default: 3600 },
            connections: {
              type: 'object',
              default: {},
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  days: { type: 'integer', minimum: 1 },
                  resultDays: { type: 'integer', minimum: 0 }
                }
              }
            }
          }
        },
        webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'secret'],
          properties: {
            url: { type: 'string', pattern: '^https?://' },
            secret: { type: 'string', minLength: 16 },
            timeoutMs: { type: 'integer', minimum: 100, default: 5000 },
            maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 8 },
            backoffMs: { type: 'integer', minimum: 1, default: 500 },
            maxBackoffMs: { type: 'integer', minimum: 1, default: 60000 },
            maxQueue: { type: 'integer', minimum: 1, default: 10000 },
            batchSize: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }
          }
        }
      }
    },
    mcp: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // The Streamable HTTP endpoint at /mcp and its protected resource metadata.
        enabled: { type: 'boolean', default: true },
        // How long a held query tool call waits for an approver (progress notifications meanwhile).
        approvalWaitSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 120 },
        // Rows one query tool call returns at most; the result says truncated and how to page.
        maxRows: { type: 'integer', minimum: 1, maximum: 10000, default: 500 },
        // The endpoint's public URL (RFC 9728 `resource`), when a proxy in front changes it.
        resourceUrl: { type: 'string', pattern: '^https?://' },
        // Scopes named in the protected resource metadata for clients that ask for them.
        scopes: { type: 'array', items: { type: 'string', minLength: 1 } },
        // Browser origins (besides the endpoint's own) that may call /mcp; others get 403.
        allowedOrigins: { type: 'array', items: { type: 'string', pattern: '^https?://[^/]+$' } }
      }
    },
    approvals: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        timeoutSeconds: { type: 'integer', minimum: 1, default: 3600 },
        // Off until every front end waits in its own protocol: a held statement is then refused
        // with its approval id, and the same statement sent again after approval runs once.
        enabled: { type: 'boolean', default: false },
        // The gateway's public address, for the links in notifications.
        baseUrl: { type: 'string', pattern: '^https?://' },
        // How often a gateway marks approvals past their expiry (0: never; reads treat them as expired anyway).
        expireIntervalSeconds: { type: 'integer', minimum: 0, default: 60 },
        webhooks: {
          type: 'object',
          default: {},
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'secret'],
            properties: {
              url: { type: 'string', pattern: '^https?://' },
              secret: { type: 'string', minLength: 16 },
              format: { enum: ['json', 'slack'], default: 'json' },
              timeoutMs: { type: 'integer', minimum: 100, default: 5000 },
              maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 6 },
              backoffMs: { type: 'integer', minimum: 1, default: 500 },
              maxBackoffMs: { type: 'integer', minimum: 1, default: 30000 },
              maxQueue: { type: 'integer', minimum: 1, default: 1000 }
            }
          }
        }
      }
    },
    // OpenTelemetry traces, off unless enabled: a span per round trip, children per stage.
    tracing: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        serviceName: { type: 'string', minLength: 1, default: 'sluice' },
        otlp: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            // Default: the OTLP/HTTP exporter's own (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else localhost:4318).
            url: { type: 'string', pattern: '^https?://' },
            headers: { type: 'object', additionalProperties: { type: 'string' } },
            timeoutMs: { type: 'integer', minimum: 100, default: 10000 }
          }
        }
      }
    },
    // One key from which the secrets replicas must share are derived (src/config/secrets.ts).
    secrets: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        key: { type: 'string', minLength: 32 }
      }
    },
    // Masking defaults; each connection may override them under `connections.<name>.masking`.
    masking: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: maskingProperties(true)
    }
  }
} as const
