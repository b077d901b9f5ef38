// The one ajv schema for sluice.yaml. Defaults live here so a minimal file (or none) yields a
// complete, runnable configuration. `types.ts` mirrors this shape for the compiler.

const roleList = { type: 'array', items: { type: 'string', minLength: 1 } } as const

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
        bodyLimitBytes: { type: 'integer', minimum: 1024, default: 16 * 1024 * 1024 }
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
        maxTokenBytes: { type: 'integer', minimum: 512, maximum: 1048576, default: 16384 }
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
          default: { type: 'boolean', default: false }
        }
      }
    },
    policies: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        directory: { type: 'string', minLength: 1, default: './policies' },
        watch: { type: 'boolean', default: true }
      }
    },
    recording: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        resultCaptureBytes: { type: 'integer', minimum: 0, default: 1048576 }
      }
    },
    approvals: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        timeoutSeconds: { type: 'integer', minimum: 1, default: 3600 }
      }
    }
  }
} as const
