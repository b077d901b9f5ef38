// The parsed statement behind an analysis, kept beside it (not in it: analyses are recorded and
// compared as plain data) so lineage traces the tree the analyzer already has instead of
// parsing the statement a second time. From the worker pool the tree arrives as JSON text and
// is parsed only when lineage asks for it.
import type { StatementJson } from './parser.js'
import type { StatementAnalysis } from './types.js'

const trees = new WeakMap<StatementAnalysis, () => StatementJson>()

export function attachTree (statement: StatementAnalysis, tree: StatementJson | string): void {
  if (typeof tree !== 'string') {
    trees.set(statement, () => tree)
    return
  }
  let parsed: StatementJson | undefined
  trees.set(statement, () => (parsed ??= JSON.parse(tree) as StatementJson))
}

/** The statement's parse tree, when the analyzer that produced it kept one. */
export function treeOf (statement: StatementAnalysis): StatementJson | undefined {
  return trees.get(statement)?.()
}
