// What a statement would have masked, said before it runs — for an approver deciding on a held
// statement. The exact plan needs the result's schema (masking happens per output column, by
// lineage); before execution the honest answer is which masking rules guard columns of the
// tables the statement touches, for this principal on this connection.
import { compileGlobsLoose } from '../policy/glob.js'
import type { CompiledMaskingRule } from '../policy/model.js'

/** A column glob's possible table parts: `p.d.t.col` → `p.d.t`; `p.d.t.rec.field` → `p.d.t.rec`, `p.d.t`; `**.ssn` → `**`. */
function tableParts (glob: string): string[] {
  const segments = glob.split('.')
  const parts: string[] = []
  for (let k = segments.length - 1; k >= 1; k--) parts.push(segments.slice(0, k).join('.'))
  return parts
}

/**
 * `column glob (rule id)` for every masking rule that applies on `connection`, does not exempt
 * any of `roles`, and guards a column of one of `tables`.
 */
export function maskedColumnsFor (rules: readonly CompiledMaskingRule[], roles: readonly string[], connection: string, tables: readonly string[]): string[] {
  const out = new Set<string>()
  for (const rule of rules) {
    if (rule.connections !== undefined && !rule.connections(connection)) continue
    if (roles.some((r) => rule.exemptRoles.has(r))) continue
    for (const glob of rule.spec.columns) {
      const onTable = compileGlobsLoose(tableParts(glob))
      if (tables.some((t) => onTable(t))) out.add(`${glob} (${rule.id})`)
    }
  }
  return [...out]
}
