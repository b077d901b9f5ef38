// The analyzer the gateway uses: the same analysis as analyzer.ts, computed on the parser
// pool's threads (pool.ts) and cached here (LRU, frozen, as the in-thread analyzer does).
import { attachTextFacts } from '../recording/text-facts.js'
import { analysisKey } from './analysis-key.js'
import { attachTree } from './ast.js'
import { deepFreeze } from './analyzer.js'
import { Lru } from './lru.js'
import { ParserPool, type ParserPoolOptions } from './pool.js'
import type { Analysis, Dialect, QualifyDefaults } from './types.js'

export interface PooledAnalyzerOptions extends ParserPoolOptions {
  /** How many analyses to keep (LRU). 0 disables the cache. Default 1000. */
  cacheSize?: number
}

export interface AsyncSqlAnalyzer {
  analyze (sql: string, dialect: Dialect, defaults?: QualifyDefaults): Promise<Analysis>
  readonly pool: ParserPool
  close (): Promise<void>
}

export function createPooledAnalyzer (options: PooledAnalyzerOptions = {}): AsyncSqlAnalyzer {
  const pool = new ParserPool(options)
  const cache = new Lru<string, Analysis>(options.cacheSize ?? 1000)
  return {
    pool,
    async analyze (sql, dialect, defaults = {}) {
      const key = analysisKey(sql, dialect, defaults)
      const hit = key === undefined ? undefined : cache.get(key)
      if (hit !== undefined) return hit
      const { analysis, trees, text } = await pool.analyze(sql, dialect, { ...defaults })
      const frozen = deepFreeze(analysis)
      attachTextFacts(frozen, sql, text)
      frozen.statements.forEach((s, i) => { const tree = trees[i]; if (typeof tree === 'string') attachTree(s, tree) })
      if (key !== undefined) cache.set(key, frozen)
      return frozen
    },
    close: async () => { await pool.close() }
  }
}
