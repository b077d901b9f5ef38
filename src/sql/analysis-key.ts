// The key an analysis is cached under, for both analyzers (analyzer.ts, pooled-analyzer.ts).
import type { Dialect, QualifyDefaults } from './types.js'

// Larger statements are rarely sent twice, and their parse trees (kept for lineage) are many
// times their size: caching them would hold megabytes per entry for nothing.
export const CACHED_UP_TO = 64 * 1024

/**
 * The cache key of `sql` read in `dialect` with `defaults`, or undefined when it is too large to
 * be cached: then it is not even looked up, as building the key alone would copy and hash the text.
 */
export function analysisKey (sql: string, dialect: Dialect, defaults: QualifyDefaults): string | undefined {
  if (sql.length > CACHED_UP_TO) return undefined
  return `${dialect}\u0000${defaults.database ?? ''}\u0000${defaults.schema ?? ''}\u0000${sql}`
}
