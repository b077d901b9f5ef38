// Rows that must commit exactly when another statement does, written by that statement: each
// kind of row becomes a data-modifying CTE in front of it, reading its rows from one JSON
// parameter. A Snowflake statement that finished before its answer rides in the statement that
// commits the round trip's completed event (src/state/statement-handles.ts, src/recording/writer.ts):
// both were commits in series before the answer could leave, and one commit instead of two is
// one round trip, one socket write and one transaction fewer per request. Either both rows are
// stored or neither is, so the trail never names a handle the store lacks, nor the reverse.

/** One kind of companion row: the INSERT that writes a JSON array of them. */
export interface CompanionKind {
  /** Names the kind; rows of one kind share one CTE. */
  readonly name: string
  /** An INSERT … SELECT reading its rows from `param` (e.g. `$2`), a JSON array as text. */
  readonly insert: (param: string) => string
}

export interface Companion {
  readonly kind: CompanionKind
  /** The row as `kind.insert` reads it: a plain JSON object. */
  readonly row: Record<string, unknown>
}

/**
 * `statement` (a single INSERT, UPDATE or DELETE using `$1`…`$ownParams`) with the companions'
 * inserts in front of it, and the parameters those need after its own. Without companions the
 * statement is returned as it is.
 */
export function withCompanions (statement: string, ownParams: number, companions: readonly Companion[]): { sql: string, params: string[] } {
  if (companions.length === 0) return { sql: statement, params: [] }
  const byKind = new Map<CompanionKind, Array<Record<string, unknown>>>()
  for (const { kind, row } of companions) {
    const rows = byKind.get(kind)
    if (rows === undefined) byKind.set(kind, [row])
    else rows.push(row)
  }
  const ctes: string[] = []
  const params: string[] = []
  for (const [kind, rows] of byKind) {
    params.push(JSON.stringify(rows))
    ctes.push(`companion_${ctes.length} as (${kind.insert(`$${ownParams + params.length}`)})`)
  }
  return { sql: `with ${ctes.join(', ')}\n${statement}`, params }
}
