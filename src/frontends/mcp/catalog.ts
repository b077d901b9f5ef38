// The tools that read rather than run: the principal's connections, the warehouse catalogue
// filtered by policy (a table policy would deny reading is left out; one it holds is marked),
// masked columns marked with their rule, what policy would decide for a statement, and the state
// of a held statement. The catalogue comes from each warehouse's own metadata (the port).
import { ERR_UNKNOWN_CONNECTION, isSluiceError } from '../../errors.js'
import type { Principal } from '../../identity/principal.js'
import { maskedColumnsFor } from '../../masking/summary.js'
import type { Admission } from '../../pipeline.js'
import type { CompiledRule } from '../../policy/model.js'
import type { WarehousePort } from '../../warehouses/port.js'
import { statementOf, type McpDeps, type ToolCall } from './context.js'
import { refused, type Answer } from './query.js'
import { errorResult, toolResult } from './results.js'

/** Tables of one schema checked against policy per call, at most (each is one analysis). */
const MAX_TABLES = 1000

function ok (structured: Record<string, unknown>, connection?: string): Answer {
  return { result: toolResult(structured), outcome: { outcome: 'ok', ...(connection !== undefined && { connection }) } }
}

/** Could any rule that is not a denial apply to this principal on this connection? */
function mayUse (rules: readonly CompiledRule[], p: Principal, port: WarehousePort): boolean {
  return rules.some((rule) => rule.effect !== 'deny' &&
    (rule.roles === undefined || p.roles.some((r) => rule.roles?.has(r) === true)) &&
    (rule.groups === undefined || p.groups.some((g) => rule.groups?.has(g) === true)) &&
    (rule.principalTypes === undefined || rule.principalTypes.has(p.type)) &&
    (rule.connections === undefined || rule.connections(port.name)) &&
    (rule.connectionKinds === undefined || rule.connectionKinds.has(port.kind)))
}

function visiblePort (deps: McpDeps, call: ToolCall, name: string): WarehousePort | undefined {
  const port = deps.ports.get(name)
  if (port === undefined) return undefined
  const rules = deps.policies?.().rules
  return rules === undefined || mayUse(rules, call.principal, port) ? port : undefined
}

function unknown (name: string): Answer {
  return refused(new ERR_UNKNOWN_CONNECTION(`${name} (or not one you may use)`), undefined)
}

export function listConnections (deps: McpDeps, call: ToolCall): Answer {
  const connections = [...deps.ports.values()]
    .filter((port) => visiblePort(deps, call, port.name) !== undefined)
    .map((port) => {
      const about = deps.descriptions.get(port.name)
      return { name: port.name, kind: port.kind, ...(about?.description !== undefined && { description: about.description }), default: about?.default ?? false }
    })
  return ok({ connections })
}

/** A catalogue failure as the agent sees it: the upstream's wording released by the detectors. */
function catalogFailure (deps: McpDeps, name: string, err: unknown): Answer {
  const raw = (err as { upstream?: { message?: string } })?.upstream?.message ?? (isSluiceError(err) ? (err as Error).message : (err as Error)?.message ?? 'failed')
  const message = `reading the catalogue of connection ${name} failed: ${deps.pipeline.releaseError(undefined, undefined, raw)}`
  return { result: errorResult({ code: 'SLUICE_MCP_UPSTREAM', message, next: 'check the schema / table name (list_schemas, list_tables) and try again' }), outcome: { outcome: 'error', errorCode: 'SLUICE_MCP_UPSTREAM', reason: message, connection: name } }
}

export async function listSchemas (deps: McpDeps, call: ToolCall, args: { connection: string }): Promise<Answer> {
  const port = visiblePort(deps, call, args.connection)
  if (port === undefined) return unknown(args.connection)
  call.introspection = { reads: 'schemas' }
  let schemas
  try {
    schemas = await port.listSchemas(call.principal)
  } catch (err) {
    return catalogFailure(deps, port.name, err)
  }
  // Like list_tables: a schema is listed only when policy lets the principal read something in
  // it; one whose tables cannot be read (or listed) is left out, failing closed.
  const out: string[] = []
  let hidden = 0
  let checked = 0
  for (const schema of schemas) {
    if (checked >= MAX_TABLES) { hidden++; continue }
    let readable = false
    try {
      for (const t of (await port.listTables(call.principal, schema)).slice(0, MAX_TABLES - checked)) {
        checked++
        if (await accessOf(deps, call, port, t.schema, t.name) !== undefined) { readable = true; break }
      }
    } catch {
      readable = false
    }
    if (readable) out.push(schema)
    else hidden++
  }
  return ok({ connection: port.name, schemas: out, ...(hidden > 0 && { hidden }) }, port.name)
}

/** How policy would treat reading the whole table: undefined when it would be denied. */
async function accessOf (deps: McpDeps, call: ToolCall, port: WarehousePort, schema: string, table: string): Promise<'allowed' | 'requires_approval' | undefined> {
  try {
    const admission = await deps.pipeline.explain(statementOf(call, port, port.selectAll(schema, table)))
    if (admission.decision.effect === 'deny') return undefined
    return admission.decision.effect === 'allow' ? 'allowed' : 'requires_approval'
  } catch {
    return undefined
  }
}

export async function listTables (deps: McpDeps, call: ToolCall, args: { connection: string, schema: string }): Promise<Answer> {
  const port = visiblePort(deps, call, args.connection)
  if (port === undefined) return unknown(args.connection)
  call.introspection = { reads: 'tables', schema: args.schema }
  let tables
  try {
    tables = await port.listTables(call.principal, args.schema)
  } catch (err) {
    return catalogFailure(deps, port.name, err)
  }
  const out: Array<Record<string, unknown>> = []
  let hidden = 0
  for (const t of tables.slice(0, MAX_TABLES)) {
    const access = await accessOf(deps, call, port, t.schema, t.name)
    if (access === undefined) { hidden++; continue }
    out.push({ name: t.name, qualifiedName: port.qualified(t.schema, t.name), ...(t.type !== undefined && { type: t.type }), access })
  }
  hidden += Math.max(0, tables.length - MAX_TABLES)
  return ok({ connection: port.name, schema: args.schema, tables: out, ...(hidden > 0 && { hidden }) }, port.name)
}

export async function describeTable (deps: McpDeps, call: ToolCall, args: { connection: string, schema: string, table: string }): Promise<Answer> {
  const port = visiblePort(deps, call, args.connection)
  if (port === undefined) return unknown(args.connection)
  call.introspection = { reads: 'columns', schema: args.schema, table: args.table }
  const qualifiedName = port.qualified(args.schema, args.table)
  const access = await accessOf(deps, call, port, args.schema, args.table)
  const notFound = (): Answer => ({
    result: errorResult({ code: 'SLUICE_NOT_FOUND', message: `table ${qualifiedName} not found on connection ${port.name} (or not one policy lets you read)`, next: 'call list_tables for the tables you may read' }),
    outcome: { outcome: 'error', errorCode: 'SLUICE_NOT_FOUND', connection: port.name }
  })
  // A table policy denies is described exactly as one that does not exist.
  if (access === undefined) return notFound()
  let columns
  try {
    columns = await port.describeTable(call.principal, args.schema, args.table)
  } catch (err) {
    return catalogFailure(deps, port.name, err)
  }
  if (columns === undefined) return notFound()
  const masking = (deps.policies?.().masking ?? []).filter((rule) =>
    (rule.connections === undefined || rule.connections(port.name)) && !call.principal.roles.some((r) => rule.exemptRoles.has(r)))
  return ok({
    connection: port.name,
    qualifiedName,
    access,
    columns: columns.map((c) => {
      const rule = masking.find((m) => m.columns(`${qualifiedName}.${c.name}`))
      return { name: c.name, type: c.type, ...(c.nullable !== undefined && { nullable: c.nullable }), masked: rule !== undefined, ...(rule !== undefined && { maskingRule: rule.id }) }
    })
  }, port.name)
}

export async function explain (deps: McpDeps, call: ToolCall, args: { connection: string, sql: string }): Promise<Answer> {
  const port = deps.ports.get(args.connection)
  if (port === undefined) return unknown(args.connection)
  const statement = statementOf(call, port, args.sql)
  let admission: Admission
  try {
    admission = await deps.pipeline.explain(statement)
  } catch (err) {
    // The inference check, or a statement too large to analyse: the refusal admission would give.
    return refused(err, port.name)
  }
  const { decision, analysis } = admission
  const tables = [...new Set(analysis.statements.flatMap((s) => [...s.tablesRead, ...s.tablesWritten]))]
  const masking = deps.policies === undefined ? [] : maskedColumnsFor(deps.policies().masking, call.principal.roles, port.name, tables)
  return ok({
    connection: port.name,
    effect: decision.effect,
    rule: decision.ruleId,
    reason: decision.reason,
    limits: { ...decision.limits },
    statementKinds: [...new Set(analysis.statements.map((s) => s.kind))],
    tables,
    maskingRules: masking
  }, port.name)
}

export async function approvalStatus (deps: McpDeps, call: ToolCall, args: { approvalId: string }): Promise<Answer> {
  call.approvalId = args.approvalId
  if (deps.approvals === undefined) {
    return { result: errorResult({ code: 'SLUICE_NOT_FOUND', message: `approval ${args.approvalId} not found: approvals are off on this gateway` }), outcome: { outcome: 'error', errorCode: 'SLUICE_NOT_FOUND' } }
  }
  try {
    // statusFor refuses someone else's approval as not found; only then are its details read.
    const status = await deps.approvals.statusFor(args.approvalId, call.principal)
    const a = await deps.approvals.get(args.approvalId)
    const next = status === 'pending'
      ? 'an approver has not decided yet; call approval_status again later'
      : status === 'approved' ? 'run exactly the same query again to get its result' : status === 'executed' ? 'it already ran once and is not run again; a new run needs a new approval' : 'it will not run; change the statement or ask an approver'
    return ok({
      approvalId: a.id,
      status,
      connection: a.connection,
      sql: a.sql,
      rule: a.ruleId,
      expiresAt: a.expiresAt,
      ...(a.decidedBy !== undefined && { decidedBy: a.decidedBy }),
      ...(a.decisionReason !== undefined && { decisionReason: a.decisionReason }),
      next
    }, a.connection)
  } catch (err) {
    return refused(err, undefined)
  }
}
