// The approvals API's request schemas (Fastify validates and coerces with them) and its part of
// the admin OpenAPI document, built from the same objects so the description cannot drift.
const NO_NUL = '^[^\\u0000]*$'
const text = { type: 'string', minLength: 1, maxLength: 512, pattern: NO_NUL } as const
const page = {
  cursor: { type: 'string', maxLength: 512, description: 'nextCursor of the previous page' },
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }
} as const

export const approvalQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { enum: ['pending', 'approved', 'denied', 'expired', 'withdrawn', 'executed'], description: 'effective status: a pending or approved approval past its expiry is expired' },
    connection: text,
    requester: { ...text, description: 'the requester subject, or any subject of its delegation chain' },
    ...page
  }
} as const

export const grantQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    active: { type: 'boolean', description: 'only grants in force (unexpired, unrevoked)' },
    connection: text,
    requester: { ...text, description: 'the principal subject the grant is for' },
    ...page
  }
} as const

export const uuidParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } }
} as const

export const approveBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', maxLength: 2000, pattern: NO_NUL },
    grant: {
      type: 'object',
      additionalProperties: false,
      required: ['minutes'],
      description: 'also release this statement shape (fingerprint) for the same principal, agent chain and connection for this long; at most the rule\'s grant.maxMinutes, and only when every approver asks for one',
      properties: { minutes: { type: 'integer', minimum: 1, maximum: 10080 } }
    }
  }
} as const

export const denyBody = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 2000, pattern: NO_NUL, description: 'shown to the agent; required when the rule says reasonRequiredToDeny (the default)' } }
} as const

const errorResponse = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 405: errorResponse, 409: errorResponse, 431: errorResponse, 503: errorResponse }
const json = (description: string, schema: unknown): unknown => ({ 200: { description, content: { 'application/json': { schema } } }, ...errors })
const ref = (name: string): unknown => ({ $ref: `#/components/schemas/${name}` })
const pageOf = (item: string): unknown => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: ['string', 'null'] } }
})

function parameters (schema: { properties: Record<string, unknown> }, where: 'query' | 'path'): unknown[] {
  return Object.entries(schema.properties).map(([name, s]) => {
    const { description, ...rest } = s as { description?: string }
    return { name, in: where, required: where === 'path', schema: rest, ...(description === undefined ? {} : { description }) }
  })
}

const body = (schema: unknown): unknown => ({ required: false, content: { 'application/json': { schema } } })

export const approvalPaths = {
  '/approvals': { get: { operationId: 'listApprovals', summary: 'Approvals, newest first (approver or auditor role)', parameters: parameters(approvalQuery, 'query'), responses: json('a page of approvals', pageOf('Approval')) } },
  '/approvals/{id}': { get: { operationId: 'getApproval', summary: 'One approval: SQL, analysis, preview, requester chain, decisions', parameters: parameters(uuidParams, 'path'), responses: json('the approval', ref('Approval')) } },
  '/approvals/{id}/approve': { post: { operationId: 'approve', summary: 'Approve (approver role; never the requester or the human an agent acts for, unless the rule allows self-approval)', parameters: parameters(uuidParams, 'path'), requestBody: body(approveBody), responses: json('the decision', ref('Decision')) } },
  '/approvals/{id}/deny': { post: { operationId: 'deny', summary: 'Deny (approver role); the agent is told who denied it and why', parameters: parameters(uuidParams, 'path'), requestBody: body(denyBody), responses: json('the decision', ref('Decision')) } },
  '/grants': { get: { operationId: 'listGrants', summary: 'Scoped grants, newest first (approver or auditor role)', parameters: parameters(grantQuery, 'query'), responses: json('a page of grants', pageOf('Grant')) } },
  '/grants/{id}': { delete: { operationId: 'revokeGrant', summary: 'Revoke a grant (approver role)', parameters: parameters(uuidParams, 'path'), responses: json('the revoked grant', ref('Grant')) } }
}

const nullableString = { type: ['string', 'null'] }

export const approvalSchemas = {
  Approval: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      status: { enum: ['pending', 'approved', 'denied', 'expired', 'withdrawn', 'executed'] },
      message: { type: 'string', description: 'what the waiting client is told, e.g. "waiting for approval <id> (rule …)"' },
      requester: { type: 'object', properties: { issuer: { type: 'string' }, subject: { type: 'string' }, type: { enum: ['human', 'machine'] }, clientId: { type: 'string' }, delegation: { type: 'array', description: 'RFC 8693 act chain, outermost first: [{subject, clientId}]' } } },
      chain: { type: 'string', description: '"claude-code acting for alice"' },
      connection: { type: 'string' },
      connectionKind: { type: 'string' },
      frontEnd: { type: 'string' },
      sql: { type: 'string' },
      fingerprint: { type: 'string', description: 'literals folded: what a grant covers' },
      statementHash: { type: 'string', description: 'sha256 of the exact text and binds: all an approval releases' },
      params: { description: 'bind values, redacted as in the audit trail' },
      analysis: { type: 'object', properties: { kinds: { type: 'array', items: { type: 'string' } }, tables: { type: 'array', items: { type: 'string' } }, maskedColumns: { type: 'array', items: { type: 'string' } } } },
      ruleId: { type: 'string' },
      settings: { type: 'object', description: 'the rule\'s approval settings when the statement was held' },
      reason: { type: 'string' },
      justification: { type: 'string', description: 'why the requester says it should run, under a rule with approval.justification; absent when none was given' },
      preview: { description: 'the warehouse\'s estimate without running it (BigQuery dry run, Snowflake EXPLAIN), when known' },
      grantId: { type: 'string', description: 'the grant that released it, when a grant did' },
      createdAt: { type: 'string' },
      expiresAt: { type: 'string' },
      decidedAt: nullableString,
      decidedBy: nullableString,
      decisionReason: nullableString,
      claimedBy: nullableString,
      claimedAt: nullableString,
      decisions: { type: 'array', items: { type: 'object', properties: { approver: { type: 'string' }, decision: { enum: ['approve', 'deny'] }, reason: { type: 'string' }, grantMinutes: { type: 'integer' }, at: { type: 'string' } } } }
    },
    additionalProperties: true
  },
  Decision: {
    type: 'object',
    required: ['result', 'approval'],
    properties: {
      result: { enum: ['recorded', 'approved', 'denied'], description: 'recorded: counted, more distinct approvers are needed (minApprovals)' },
      approval: ref('Approval'),
      grant: ref('Grant')
    }
  },
  Grant: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      state: { enum: ['active', 'expired', 'revoked'] },
      fingerprint: { type: 'string' },
      requester: { type: 'object' },
      connection: { type: 'string' },
      ruleId: { type: 'string' },
      approvalId: { type: 'string' },
      grantedBy: { type: 'string' },
      createdAt: { type: 'string' },
      expiresAt: { type: 'string' },
      revokedAt: nullableString,
      revokedBy: nullableString,
      uses: { type: 'integer', description: 'statements it released; each is an approval record naming the grant' }
    }
  }
}
