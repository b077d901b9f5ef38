// The MCP tools Sluice serves, as an agent reads them: names, descriptions, JSON schemas of the
// arguments and of the structured results, and the hints clients use to decide whether to ask
// the user first. Arguments are validated here (ajv) before a tool runs; a malformed call is a
// protocol error (InvalidParams), everything else a tool result.
import { Ajv, type ValidateFunction } from 'ajv'

export interface ToolDefinition {
  name: string
  title: string
  description: string
  inputSchema: { type: 'object', properties: Record<string, unknown>, required?: string[], additionalProperties: false }
  outputSchema: { type: 'object', properties: Record<string, unknown>, required?: string[] }
  annotations: { title: string, readOnlyHint: boolean, destructiveHint: boolean, idempotentHint: boolean, openWorldHint: boolean }
}

const connection = { type: 'string', minLength: 1, maxLength: 63, description: 'Connection name, as list_connections gives it.' }
const schemaName = { type: 'string', minLength: 1, maxLength: 1024, description: 'Schema (Snowflake, PostgreSQL) or dataset (BigQuery) name, as list_schemas gives it.' }
// No maxLength: a statement's size is policies.maxStatementBytes' to refuse (in bytes, as every
// front end does, recorded as SLUICE_STATEMENT_TOO_LARGE); the request's is listen.bodyLimitBytes'.
const sql = { type: 'string', minLength: 1, description: 'One SQL statement in the connection\'s own dialect (Snowflake SQL, GoogleSQL, PostgreSQL).' }
const readHints = (title: string) => ({ title, readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false })

const maskedColumn = {
  type: 'object',
  properties: { column: { type: 'string' }, rule: { type: 'string' }, function: { type: 'string' } },
  required: ['column', 'rule']
}

export const TOOLS: readonly ToolDefinition[] = [
  {
    name: 'list_connections',
    title: 'List connections',
    description: 'Lists the data warehouse connections you may use through Sluice, with their kind (snowflake, bigquery, postgres) and what they hold. Start here: every other tool takes one of these names.',
    inputSchema: { type: 'object', properties: {}, additionalProperties: false },
    outputSchema: {
      type: 'object',
      properties: {
        connections: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, kind: { enum: ['snowflake', 'bigquery', 'postgres'] }, description: { type: 'string' }, default: { type: 'boolean' } },
            required: ['name', 'kind']
          }
        }
      },
      required: ['connections']
    },
    annotations: readHints('List connections')
  },
  {
    name: 'list_schemas',
    title: 'List schemas',
    description: 'Lists the schemas (Snowflake, PostgreSQL) or datasets (BigQuery) of a connection in which policy lets you read at least one table, from the warehouse\'s own catalogue.',
    inputSchema: { type: 'object', properties: { connection }, required: ['connection'], additionalProperties: false },
    outputSchema: {
      type: 'object',
      properties: {
        connection: { type: 'string' },
        schemas: { type: 'array', items: { type: 'string' } },
        hidden: { type: 'integer', description: 'Schemas in which policy lets you read nothing, left out.' }
      },
      required: ['connection', 'schemas']
    },
    annotations: readHints('List schemas')
  },
  {
    name: 'list_tables',
    title: 'List tables',
    description: 'Lists the tables and views of one schema or dataset that policy lets you read. `access` says whether reading one runs at once or is held for a human\'s approval.',
    inputSchema: { type: 'object', properties: { connection, schema: schemaName }, required: ['connection', 'schema'], additionalProperties: false },
    outputSchema: {
      type: 'object',
      properties: {
        connection: { type: 'string' },
        schema: { type: 'string' },
        tables: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, qualifiedName: { type: 'string' }, type: { type: 'string' }, access: { enum: ['allowed', 'requires_approval'] } },
            required: ['name', 'qualifiedName', 'access']
          }
        },
        hidden: { type: 'integer', description: 'Tables policy does not let you read, left out.' }
      },
      required: ['connection', 'schema', 'tables']
    },
    annotations: readHints('List tables')
  },
  {
    name: 'describe_table',
    title: 'Describe table',
    description: 'The columns of a table with their types, from the warehouse\'s catalogue. Columns a masking rule hides from you are marked `masked` with the rule: their values come back masked, and filtering or sorting on them may be refused.',
    inputSchema: {
      type: 'object',
      properties: { connection, schema: schemaName, table: { type: 'string', minLength: 1, maxLength: 1024, description: 'Table or view name, as list_tables gives it.' } },
      required: ['connection', 'schema', 'table'],
      additionalProperties: false
    },
    outputSchema: {
      type: 'object',
      properties: {
        connection: { type: 'string' },
        qualifiedName: { type: 'string' },
        access: { enum: ['allowed', 'requires_approval'] },
        columns: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, type: { type: 'string' }, nullable: { type: 'boolean' }, masked: { type: 'boolean' }, maskingRule: { type: 'string' } },
            required: ['name', 'type', 'masked']
          }
        }
      },
      required: ['connection', 'qualifiedName', 'columns']
    },
    annotations: readHints('Describe table')
  },
  {
    name: 'query',
    title: 'Run SQL',
    description: 'Runs one SQL statement on a connection, under your identity and policy: it may be refused (the result names the rule and says what to do), held for a human\'s approval (the call waits a while, then tells you the approval id), or run with sensitive columns masked. Returns the columns, up to maxRows rows (`truncated` says when there were more: narrow the query or page with ORDER BY … LIMIT … OFFSET …), which columns were masked by which rule, and the ids of the recorded statement.',
    inputSchema: {
      type: 'object',
      properties: {
        connection,
        sql,
        maxRows: { type: 'integer', minimum: 1, maximum: 10000, description: 'Most rows to return (default and cap: the gateway\'s mcp.maxRows).' },
        justification: { type: 'string', minLength: 1, maxLength: 4000, description: 'Why the statement should run, for the approver, when a rule holds it and asks for one (a client with elicitation is asked instead).' }
      },
      required: ['connection', 'sql'],
      additionalProperties: false
    },
    outputSchema: {
      type: 'object',
      properties: {
        connection: { type: 'string' },
        columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } }, required: ['name', 'type'] } },
        rows: { type: 'array', items: { type: 'array' } },
        rowCount: { type: 'integer' },
        truncated: { type: 'boolean' },
        next: { type: 'string', description: 'How to get the rest, when truncated.' },
        rowsAffected: { type: 'integer' },
        maskedColumns: { type: 'array', items: maskedColumn },
        notice: { type: 'string' },
        statementId: { type: 'string', description: 'The recorded statement (its admitted and completed events carry it).' },
        requestId: { type: 'string' },
        approvalId: { type: 'string' }
      },
      required: ['connection', 'columns', 'rows', 'rowCount', 'truncated', 'maskedColumns', 'requestId']
    },
    // SQL can write; policy decides what may, and the client should ask before a write.
    annotations: { title: 'Run SQL', readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false }
  },
  {
    name: 'explain',
    title: 'Explain policy decision',
    description: 'Says what policy would decide for a SQL statement on a connection — allowed, denied or held for approval — with the rule, its reason and limits, the tables it reads and the masking rules that guard them, without running it.',
    inputSchema: { type: 'object', properties: { connection, sql }, required: ['connection', 'sql'], additionalProperties: false },
    outputSchema: {
      type: 'object',
      properties: {
        connection: { type: 'string' },
        effect: { enum: ['allow', 'deny', 'require_approval'] },
        rule: { type: 'string' },
        reason: { type: 'string' },
        limits: { type: 'object' },
        statementKinds: { type: 'array', items: { type: 'string' } },
        tables: { type: 'array', items: { type: 'string' } },
        maskingRules: { type: 'array', items: { type: 'string' } }
      },
      required: ['connection', 'effect', 'rule', 'reason']
    },
    annotations: readHints('Explain policy decision')
  },
  {
    name: 'approval_status',
    title: 'Approval status',
    description: 'The state of a statement held for approval (pending, approved, denied, expired, withdrawn, executed). Once approved, run exactly the same query again to get its result.',
    inputSchema: {
      type: 'object',
      properties: { approvalId: { type: 'string', pattern: '^[0-9a-fA-F-]{36}$', description: 'The id a held query reported.' } },
      required: ['approvalId'],
      additionalProperties: false
    },
    outputSchema: {
      type: 'object',
      properties: {
        approvalId: { type: 'string' },
        status: { enum: ['pending', 'approved', 'denied', 'expired', 'withdrawn', 'executed'] },
        connection: { type: 'string' },
        sql: { type: 'string' },
        rule: { type: 'string' },
        expiresAt: { type: 'string' },
        decidedBy: { type: 'string' },
        decisionReason: { type: 'string' },
        next: { type: 'string' }
      },
      required: ['approvalId', 'status']
    },
    annotations: readHints('Approval status')
  }
]

const ajv = new Ajv({ allErrors: true })
const VALIDATORS = new Map<string, ValidateFunction>(TOOLS.map((t) => [t.name, ajv.compile(t.inputSchema)]))

export function toolNamed (name: string): ToolDefinition | undefined {
  return TOOLS.find((t) => t.name === name)
}

/** The problems with a call's arguments, worded for the agent; undefined when they are valid. */
export function argumentProblems (name: string, args: unknown): string | undefined {
  const validate = VALIDATORS.get(name)
  if (validate === undefined) return `unknown tool ${name}`
  if (validate(args ?? {})) return undefined
  return (validate.errors ?? []).map((e) => {
    if (e.keyword === 'additionalProperties') return `unknown argument ${String(e.params.additionalProperty)}`
    if (e.keyword === 'required') return `missing argument ${String(e.params.missingProperty)}`
    return `${e.instancePath.replace(/^\//, '') || 'arguments'} ${String(e.message)}`
  }).join('; ')
}
