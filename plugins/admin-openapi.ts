// The admin API's request schemas (Fastify validates and coerces query strings with them) and
// the OpenAPI 3.1 document built from the same objects, so the description cannot drift from
// what the routes accept.
import { approvalPaths, approvalSchemas } from './approvals-openapi.js'

// No NUL: Postgres text cannot hold one, so no recorded value has one to match.
const NO_NUL = '^[^\\u0000]*$'
const text = { type: 'string', minLength: 1, maxLength: 512, pattern: NO_NUL } as const
const time = { type: 'string', format: 'date-time', description: 'ISO 8601 with offset, e.g. 2026-11-21T00:00:00Z' } as const
const page = {
  cursor: { type: 'string', maxLength: 512, description: 'nextCursor of the previous page' },
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }
} as const

export const eventQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    principal: { ...text, description: 'principal subject' },
    agent: { ...text, description: 'client id, or any subject / client id in the delegation chain' },
    connection: text,
    since: time,
    until: time,
    decision: { enum: ['allow', 'deny', 'require_approval'] },
    rule: { ...text, description: 'rule id that decided' },
    table: { ...text, description: 'db.schema.table, or a trailing part of it' },
    maskedColumn: { ...text, description: 'an output column that was masked' },
    outcome: { enum: ['ok', 'denied', 'error', 'unauthenticated', 'held', 'admitted'] },
    frontEnd: text,
    sessionId: { type: 'string', format: 'uuid' },
    requestId: text,
    approvalId: { ...text, description: 'every event of one held statement (held, decided, admitted, completed)' },
    // A URL must fit in listen.maxHeaderBytes with the token; longer fingerprints are found with q.
    fingerprint: { type: 'string', minLength: 1, maxLength: 8192, pattern: NO_NUL },
    q: { type: 'string', minLength: 1, maxLength: 1000, pattern: NO_NUL, description: 'full-text search of the SQL (web search syntax)' },
    incomplete: { type: 'boolean', description: 'only admitted statements whose completion was never recorded (a crash, or a result withheld)' },
    ...page
  }
} as const

export const sessionQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    principal: text,
    agent: text,
    connection: text,
    frontEnd: text,
    since: time,
    until: time,
    ...page
  }
} as const

export const timelineQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { cursor: page.cursor, limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } }
} as const

export const exportQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { since: time, until: time, format: { enum: ['jsonl', 'csv'], default: 'jsonl' } }
} as const

export const verifyQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { strict: { type: 'boolean', default: false, description: 'warnings (unanchored events, no checkpoints) make ok false too' } }
} as const

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } }
} as const

function parameters (schema: { properties: Record<string, unknown> }, where: 'query' | 'path', required: string[] = []): unknown[] {
  return Object.entries(schema.properties).map(([name, s]) => {
    const { description, ...rest } = s as { description?: string }
    return { name, in: where, required: where === 'path' || required.includes(name), schema: rest, ...(description === undefined ? {} : { description }) }
  })
}

const pageOf = (item: string): unknown => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: { $ref: `#/components/schemas/${item}` } },
    nextCursor: { type: ['string', 'null'], description: 'pass as cursor for the next page; null on the last page' }
  }
})

const errorResponse = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
// 405 (with Allow) for methods a path does not take; 431 when the request line and headers exceed
// listen.maxHeaderBytes, which Node refuses before Sluice reads the request.
const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 405: errorResponse, 431: errorResponse, 503: errorResponse }

const ok = (description: string, schema: unknown, type = 'application/json'): unknown => ({
  200: { description, content: { [type]: { schema } } }, ...errors
})

export function openApiDocument (): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice admin API',
      version: '1',
      description: 'Search, replay and export of recorded sessions (auditor role), and the approvals of held statements and their scoped grants (approver role; auditors may read them). Every route but this document needs an OIDC bearer token; each call is itself recorded, and each approval decision is an audit event naming the approver.'
    },
    servers: [{ url: '/admin/v1' }],
    security: [{ bearer: [] }],
    paths: {
      '/sessions': { get: { operationId: 'listSessions', summary: 'Sessions, most recently started first', parameters: parameters(sessionQuery, 'query'), responses: ok('a page of sessions', pageOf('Session')) } },
      '/sessions/{id}/timeline': { get: { operationId: 'sessionTimeline', summary: "A session's events in order, with captured results", parameters: [...parameters(idParams, 'path'), ...parameters(timelineQuery, 'query')], responses: { ...(ok('a page of events', pageOf('TimelineEvent')) as object), 404: errorResponse } } },
      '/events': { get: { operationId: 'listEvents', summary: 'Events, newest first', parameters: parameters(eventQuery, 'query'), responses: ok('a page of events', pageOf('Event')) } },
      '/events/{id}': { get: { operationId: 'getEvent', summary: 'One event with its captured result', parameters: parameters(idParams, 'path'), responses: { ...(ok('the event', { $ref: '#/components/schemas/TimelineEvent' }) as object), 404: errorResponse } } },
      '/export': { get: { operationId: 'exportEvents', summary: 'Stream events as JSON Lines (sealed, verifiable) or CSV', parameters: parameters(exportQuery, 'query'), responses: { 200: { description: 'the export', content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } } }, ...errors } } },
      '/verify': { get: { operationId: 'verifyChains', summary: 'Verify every chain and checkpoint in the store', parameters: parameters(verifyQuery, 'query'), responses: ok('the report: ok is false on any issue (and on any warning when strict)', { $ref: '#/components/schemas/VerifyReport' }) } },
      ...approvalPaths
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (OIDC access token)' } },
      schemas: {
        ...approvalSchemas,
        Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
        Session: {
          type: 'object',
          properties: {
            ...Object.fromEntries(['id', 'principalSubject', 'principalIssuer', 'principalType', 'clientId', 'connection', 'frontEnd', 'sourceIp', 'userAgent', 'startedAt', 'lastSeenAt'].map((k) => [k, { type: ['string', 'null'] }])),
            groups: { type: 'array', items: { type: 'string' } },
            roles: { type: 'array', items: { type: 'string' } },
            delegation: { type: 'array', description: 'RFC 8693 act chain, outermost first: [{subject, clientId}]' },
            eventCount: { type: 'number' }
          }
        },
        Event: {
          type: 'object',
          description: 'One round trip. Hash-chained: eventDigest = sha256(canonical content), hash = sha256(prevHash || eventDigest).',
          properties: {
            id: { type: 'string' },
            occurredAt: { type: 'string', description: 'UTC, microseconds' },
            chain: { type: ['string', 'null'] },
            seq: { type: ['number', 'null'] },
            sessionId: { type: ['string', 'null'] },
            requestId: { type: 'string' },
            principalSubject: { type: ['string', 'null'] },
            groups: { type: ['array', 'null'], items: { type: 'string' } },
            roles: { type: ['array', 'null'], items: { type: 'string' } },
            clientId: { type: ['string', 'null'] },
            delegation: {},
            connection: { type: ['string', 'null'] },
            frontEnd: { type: 'string' },
            outcome: { type: 'string' },
            statementId: { type: ['string', 'null'], description: 'the admitted statement: its admitted event and completions share it' },
            phase: { type: ['string', 'null'], enum: ['admitted', 'completed', null] },
            errorCode: { type: ['string', 'null'] },
            sqlText: { type: ['string', 'null'] },
            sqlFingerprint: { type: ['string', 'null'] },
            bindParams: {},
            analysis: {},
            tables: { type: ['array', 'null'], items: { type: 'string' } },
            decision: { type: ['string', 'null'] },
            ruleId: { type: ['string', 'null'] },
            reason: { type: ['string', 'null'] },
            masking: {},
            maskedColumns: { type: ['array', 'null'], items: { type: 'string' } },
            rowsReturned: { type: ['number', 'null'] },
            bytesReturned: { type: ['number', 'null'] },
            durationMs: { type: ['number', 'null'] },
            resultTruncated: { type: 'boolean' },
            hasResult: { type: 'boolean' },
            prevHash: { type: ['string', 'null'] },
            hash: { type: ['string', 'null'] }
          },
          additionalProperties: true
        },
        TimelineEvent: {
          allOf: [{ $ref: '#/components/schemas/Event' }, {
            type: 'object',
            properties: { result: { type: ['object', 'null'], description: 'the masked result as released: columns, rows (capped), rowsReleased, truncated' } }
          }]
        },
        VerifyReport: {
          type: 'object',
          properties: {
            ok: { type: 'boolean' },
            strict: { type: 'boolean' },
            events: { type: 'number' },
            chains: { type: 'number' },
            checkpoints: { type: 'number' },
            issues: {
              type: 'array',
              description: 'errors: the trail was changed',
              items: { type: 'object', properties: { kind: { enum: ['modified', 'deleted', 'inserted', 'reordered', 'checkpoint', 'duplicate'] }, chain: {}, seq: {}, eventId: {}, requestId: {}, detail: { type: 'string' } } }
            },
            warnings: {
              type: 'array',
              description: 'what the trail cannot vouch for; failures only when strict',
              items: { type: 'object', properties: { kind: { enum: ['unanchored', 'no-checkpoints', 'empty-chain', 'no-key'] }, chain: {}, seq: { description: 'unanchored: the last checkpoint before the events' }, count: {}, detail: { type: 'string' } } }
            }
          }
        }
      }
    }
  }
}
