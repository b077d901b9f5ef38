// Catalog introspection: what drivers run on connect (type lookups), psql's \d family and agents
// exploring a schema. It reads only the system catalogs, so the trail can mark it and a reader
// can filter it out without losing it.
import type { StatementAnalysis } from './types.js'

const CATALOG_SCHEMAS = new Set(['pg_catalog', 'information_schema'])

/** Every statement only reads tables of pg_catalog / information_schema (and reads some). */
export function isCatalogIntrospection (statements: readonly StatementAnalysis[]): boolean {
  if (statements.length === 0) return false
  return statements.every((s) => {
    if (s.kind !== 'select' && s.kind !== 'show') return false
    if (s.tablesWritten.length > 0 || s.tablesRead.length === 0) return false
    return s.tablesRead.every((t) => {
      const parts = t.split('.')
      return parts.length >= 2 && CATALOG_SCHEMAS.has((parts[parts.length - 2] as string).toLowerCase())
    })
  })
}
