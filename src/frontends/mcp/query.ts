// The query tool: one statement through the whole pipeline — admitted (analysed, decided, its
// admitted event committed), held for a human when policy says so (the call waits, with
// progress notifications, up to mcp.approvalWaitSeconds), run on the connection's warehouse
// port, its pages masked as they are pulled, cut at the policy's row cap and the call's maxRows,
// and its completion recorded before any row is returned.
import { waitForDecision } from '../../approvals/wait.js'
import { ERR_MCP_HELD, ERR_MCP_ONE_STATEMENT, ERR_MCP_UPSTREAM, ERR_ROWS_LIMIT, ERR_UNKNOWN_CONNECTION, isSluiceError } from '../../errors.js'
import type { Admission, RoundTrip, Statement } from '../../pipeline.js'
import { pendingApproval } from '../../pipeline/held.js'
import { unrecordedRefusal } from '../../recording/round-trips.js'
import { portFailure, type PortExecution, type WarehousePort } from '../../warehouses/port.js'
import { mcpJustificationAsker } from './justification.js'
import { completeStatement, statementOf, statementTrip, type McpDeps, type ToolCall, type ToolOutcome } from './context.js'
import { errorResult, failureOf, jsonValue, toolResult, type ToolResult } from './results.js'

export interface QueryArgs {
  connection: string
  sql: string
  maxRows?: number
  /** Why a statement a rule holds should run (rules with approval.justification). */
  justification?: string
}

export interface Answer {
  result: ToolResult
  outcome: ToolOutcome
}

const TOOL = 'query'

export function refused (err: unknown, connection: string | undefined, message?: string, rule?: string): Answer {
  const failure = failureOf(err, message, rule)
  const denied = failure.code === 'SLUICE_POLICY_DENIED' || failure.code === 'SLUICE_APPROVAL_REQUIRED' || failure.code === 'SLUICE_ROWS_LIMIT' || failure.code === 'SLUICE_MCP_JUSTIFICATION_REQUIRED'
  return {
    result: errorResult(failure),
    outcome: { outcome: failure.code === 'SLUICE_MCP_HELD' ? 'held' : denied ? 'denied' : 'error', errorCode: failure.code, reason: failure.message, ...(connection !== undefined && { connection }) }
  }
}

export async function runQuery (deps: McpDeps, call: ToolCall, args: QueryArgs): Promise<Answer> {
  const port = deps.ports.get(args.connection)
  if (port === undefined) return refused(new ERR_UNKNOWN_CONNECTION(args.connection), undefined)
  const statement = {
    ...statementOf(call, port, args.sql),
    ...(args.justification !== undefined && { justification: args.justification }),
    askJustification: mcpJustificationAsker(call)
  }
  const admitted = await admitOrWait(deps, call, statement)
  if ('answer' in admitted) return admitted.answer
  const { admission, trip, started } = admitted
  return await execute(deps, call, port, statement, admission, trip, started, Math.min(args.maxRows ?? deps.config.maxRows, deps.config.maxRows))
}

interface Admitted { admission: Admission, trip: RoundTrip, started: number }

/**
 * Admission, and for a held statement the wait: the first refusal's round trip is completed as
 * held, then the approval is watched in the store; once it is no longer pending the statement is
 * admitted again naming the approval, which runs it (approved) or refuses it with the reason.
 */
async function admitOrWait (deps: McpDeps, call: ToolCall, statement: Statement): Promise<Admitted | { answer: Answer }> {
  const name = statement.connection.name
  const started = performance.now()
  const trip = statementTrip(deps, call, TOOL, name)
  try {
    return { admission: await deps.pipeline.admit(statement, trip), trip, started }
  } catch (err) {
    const approvalId = pendingApproval(err, trip)
    const unrecorded = await completeFailed(deps, call, name, trip, started, err)
    if (unrecorded !== undefined) return { answer: unrecorded }
    if (approvalId === undefined || deps.approvals === undefined) return { answer: refused(err, name) }
    call.approvalId = approvalId
    const reason = trip.decision?.detail ?? trip.decision?.reason ?? 'the statement needs approval'
    const wait = deps.config.approvalWaitSeconds
    const status = wait === 0
      ? 'pending'
      : await waitForDecision(deps.approvals, approvalId, statement.principal, {
        until: Date.now() + wait * 1000,
        signal: call.signal,
        onPending: async (waitedMs) => {
          await call.progress?.(Math.floor(waitedMs / 1000), wait, `held for approval ${approvalId} (rule ${trip.decision?.ruleId ?? '?'}): waiting for an approver`).catch(() => undefined)
        }
      })
    if (status === 'pending') return { answer: refused(new ERR_MCP_HELD(approvalId, reason), name, undefined, trip.decision?.ruleId) }
    const again = performance.now()
    const next = statementTrip(deps, call, TOOL, name)
    try {
      return { admission: await deps.pipeline.admit({ ...statement, approvalId }, next), trip: next, started: again }
    } catch (err2) {
      const unrecorded2 = await completeFailed(deps, call, name, next, again, err2)
      return { answer: unrecorded2 ?? refused(err2, name) }
    }
  }
}

/** Completes a refused round trip in the trail; an answer when even that could not be recorded. */
async function completeFailed (deps: McpDeps, call: ToolCall, connection: string, trip: RoundTrip, started: number, err: unknown): Promise<Answer | undefined> {
  trip.errorCode ??= isSluiceError(err) ? (err as { code: string }).code : 'SLUICE_INTERNAL'
  trip.errorMessage ??= isSluiceError(err) ? (err as Error).message : 'internal error'
  try {
    await completeStatement(deps, call, TOOL, connection, trip, started)
    return undefined
  } catch (recordErr) {
    deps.log.error({ err: (recordErr as Error).message }, 'mcp: recording failed; answer withheld')
    return refused(unrecordedRefusal(trip, call.requestId).error, connection)
  }
}

async function execute (deps: McpDeps, call: ToolCall, port: WarehousePort, statement: Statement, admission: Admission, trip: RoundTrip, started: number, maxRows: number): Promise<Answer> {
  const name = port.name
  const fail = async (err: unknown, message?: string): Promise<Answer> => {
    if (message !== undefined) { trip.errorCode = (err as { code?: string }).code ?? 'SLUICE_INTERNAL'; trip.errorMessage = message }
    // What was collected is never released with a failure.
    delete trip.capture
    return await completeFailed(deps, call, name, trip, started, err) ?? refused(err, name, message)
  }
  if (admission.analysis.statements.length > 1) return await fail(new ERR_MCP_ONE_STATEMENT(admission.analysis.statements.length))
  // The call's cancellation and the rule's timeout stop the upstream statement (the port cancels
  // it when its signal aborts); the run cuts the result at the rule's row cap.
  const run = deps.pipeline.run(statement, admission, trip, { ...(call.signal !== undefined && { signal: call.signal }) })
  let execution: PortExecution
  try {
    execution = await run.upstream(async (signal) => await port.execute({ sql: statement.sql, principal: statement.principal, limits: admission.decision.limits, ...(signal !== undefined && { signal }) }))
  } catch (err) {
    run.close()
    return await fail(...upstreamFailure(deps, statement, admission, name, err))
  }
  const stop = async (): Promise<void> => { await execution.cancel().catch(() => undefined) }
  const released = run.release(run.capped(execution.result, stop))
  const rows: unknown[][] = []
  let truncated = false
  const pages = released.pages[Symbol.asyncIterator]()
  const pulled = (async () => {
    outer: for (;;) {
      const next = await pages.next()
      if (next.done === true) break
      for (const row of next.value.rows) {
        if (rows.length >= maxRows) {
          truncated = true
          // A rule that refuses a longer result whole is only known to pass once its cap is counted.
          if (run.cap?.refuse !== true) break outer
          continue
        }
        rows.push(row)
      }
    }
  })()
  run.onExpiry(pulled, stop)
  try {
    await pulled
  } catch (err) {
    await pages.return?.().catch(() => undefined)
    await stop()
    if (run.expired()) return await fail(...upstreamFailure(deps, statement, admission, name, run.timedOut()))
    if (err instanceof ERR_ROWS_LIMIT) return await fail(err)
    return await fail(...upstreamFailure(deps, statement, admission, name, err))
  } finally {
    run.close()
  }
  const limited = trip.rowsLimited !== undefined
  if (truncated) {
    await pages.return?.().catch(() => undefined)
    await stop()
  }
  // Pages are pulled whole: the trail counts the rows the agent got, not the rest of the last page.
  trip.rowsReturned = rows.length
  try {
    await completeStatement(deps, call, TOOL, name, trip, started)
  } catch (err) {
    deps.log.error({ err: (err as Error).message }, 'mcp: recording failed; result withheld')
    return refused(unrecordedRefusal(trip, call.requestId).error, name)
  }
  const columns = released.schema.columns.map((c) => ({ name: c.name, type: c.type }))
  const masked = (trip.maskedColumns ?? []).filter((m) => (m as { action?: string }).action !== 'flagged').map((m) => ({ column: m.column, rule: m.rule }))
  const structured: Record<string, unknown> = {
    connection: name,
    columns,
    rows: rows.map((r) => r.map(jsonValue)),
    rowCount: rows.length,
    truncated: truncated || limited,
    maskedColumns: dedupe(masked),
    requestId: call.requestId,
    ...(trip.statementId !== undefined && { statementId: trip.statementId }),
    ...(call.approvalId !== undefined && { approvalId: call.approvalId }),
    ...(execution.result.rowsAffected !== undefined && { rowsAffected: execution.result.rowsAffected })
  }
  if (truncated) structured.next = `more rows exist past the first ${maxRows}: narrow the query, or page with ORDER BY … LIMIT ${maxRows} OFFSET ${maxRows}`
  // Said again, for the answer's notice (the cut is already in the trail).
  if (limited) structured.notice = run.limited()
  return { result: toolResult(structured), outcome: { outcome: 'ok', connection: name } }
}

function dedupe (list: Array<{ column: string, rule: string }>): Array<{ column: string, rule: string }> {
  const seen = new Set<string>()
  return list.filter((m) => { const k = `${m.column}\u0000${m.rule}`; if (seen.has(k)) return false; seen.add(k); return true })
}

/** An upstream failure with the warehouse's text released through the pipeline, never as it came. */
function upstreamFailure (deps: McpDeps, statement: Statement, admission: Admission, connection: string, err: unknown): [unknown, string | undefined] {
  const raw = portFailure(err)
  if (raw !== undefined) {
    const released = deps.pipeline.releaseError(statement, admission, raw.upstreamMessage, raw.codes)
    const wrapped = new ERR_MCP_UPSTREAM(connection, released)
    return [wrapped, wrapped.message]
  }
  if (isSluiceError(err)) {
    // Catalogue errors can quote the upstream too (an HTTP status, a login refusal): released all the same.
    const e = err as Error & { code: string }
    const message = deps.pipeline.releaseError(statement, admission, e.message)
    return [err, message]
  }
  deps.log.warn({ err: (err as Error)?.message }, 'mcp: upstream failed')
  const wrapped = new ERR_MCP_UPSTREAM(connection, 'the statement failed upstream')
  return [wrapped, wrapped.message]
}
