// Snowflake's own estimate of a statement without running it: EXPLAIN USING JSON on an upstream
// session of the statement's connection (the one it would run on), whose GlobalStats say how
// many micro-partitions the tables read hold, how many the pruned plan would scan and how many
// bytes that is. Asked at most once per statement, and only when something needs it (an
// approval's preview, a cost-aware rule): the common path never pays for it. Any failure (an
// upstream that cannot EXPLAIN, a plan without GlobalStats) is "no estimate", which its caller
// handles fail-closed.
import type { Estimator, WarehouseEstimate } from '../../pipeline/estimate.js'
import { inlineRows } from './inline-rowset.js'
import type { SnowflakeUpstream, UpstreamSession } from './upstream.js'
import type { QueryData } from './query-data.js'

export type SessionLease = () => Promise<{ session: UpstreamSession, release: () => void }>

export function explainEstimator (upstream: SnowflakeUpstream, lease: SessionLease, sql: string, bindings?: Record<string, unknown>): Estimator {
  let asked: Promise<WarehouseEstimate | undefined> | undefined
  return async () => await (asked ??= explain(upstream, lease, sql, bindings))
}

async function explain (upstream: SnowflakeUpstream, lease: SessionLease, sql: string, bindings: Record<string, unknown> | undefined): Promise<WarehouseEstimate | undefined> {
  let leased: Awaited<ReturnType<SessionLease>> | undefined
  try {
    leased = await lease()
    const data = await upstream.query(leased.session, {
      sqlText: `EXPLAIN USING JSON ${sql}`,
      // Asked before the policy decides, on the client's own session, which may allow several
      // statements per request (MULTI_STATEMENT_COUNT = 0): pinned to one here, so Snowflake
      // refuses anything but EXPLAIN of a single statement.
      parameters: { MULTI_STATEMENT_COUNT: 1 },
      ...(bindings !== undefined && Object.keys(bindings).length > 0 && { bindings })
    })
    const cell = firstCell(data)
    return typeof cell === 'string' ? parseExplain(cell) : undefined
  } catch {
    return undefined
  } finally {
    leased?.release()
  }
}

function firstCell (data: QueryData): unknown {
  return inlineRows(data, 0, 1)[0]?.[0]
}

const count = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined

/**
 * The estimate in an EXPLAIN USING JSON plan: GlobalStats' bytesAssigned, partitionsTotal and
 * partitionsAssigned, and the tables its scans name (for the approver). Undefined without them.
 */
export function parseExplain (text: string): WarehouseEstimate | undefined {
  let plan: unknown
  try {
    plan = JSON.parse(text)
  } catch {
    return undefined
  }
  const stats = (plan as { GlobalStats?: unknown } | null)?.GlobalStats
  if (stats === null || typeof stats !== 'object') return undefined
  const g = stats as Record<string, unknown>
  const estimate: WarehouseEstimate = { source: 'snowflake-explain' }
  const bytes = count(g.bytesAssigned)
  const total = count(g.partitionsTotal)
  const assigned = count(g.partitionsAssigned)
  if (bytes === undefined && total === undefined && assigned === undefined) return undefined
  if (bytes !== undefined) estimate.bytes = bytes
  if (total !== undefined) estimate.partitionsTotal = total
  if (assigned !== undefined) estimate.partitionsAssigned = assigned
  const operations = (plan as { Operations?: unknown }).Operations
  const tables = new Set<string>()
  // Operations is a list of plan fragments, each a list of operations; scans name their objects.
  if (Array.isArray(operations)) {
    for (const op of operations.flat()) {
      const objects = (op as { objects?: unknown } | null)?.objects
      if (Array.isArray(objects)) for (const o of objects) if (typeof o === 'string') tables.add(o)
    }
  }
  estimate.detail = { tables: [...tables].sort() }
  return estimate
}
