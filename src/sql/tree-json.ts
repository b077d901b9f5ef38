// The parse tree as it travels from a parser thread to the event loop, where lineage reads it
// (ast.ts). Its size decides what the event loop pays to take it (JSON.parse, then the walk), so
// it carries only what lineage reads:
// - no source positions (`span`) or keyword tokens (`…_token`), which lineage skips anyway and
//   which made up most of the text;
// - of a long list's constant items (an IN list's literals, a VALUES list's literal rows) only
//   the first: a literal has no lineage, so the others say nothing the first does not, and a
//   1 MB IN list no longer arrives as 20 MB of JSON. Items that name anything stay, in order.
// Whether an item is constant is decided by the few shapes literals take, so a node shape it
// does not know is kept (fail closed: lineage sees it).

/** Lists this long or longer have their constant items collapsed. */
const COMPACT_FROM = 8

/**
 * A literal (`{ Value: … }`: numbers, strings, booleans, NULL, bind placeholders), a signed or
 * parenthesised literal, a list of them, or a VALUES row of them. Any other shape may name a
 * column (an identifier is `{ Identifier: { value } }`, never a bare value), so it is not.
 */
function isConstant (node: unknown, depth = 0): boolean {
  if (node === null || typeof node !== 'object') return true
  if (depth > 8) return false
  if (Array.isArray(node)) return node.every((item) => isConstant(item, depth + 1))
  const keys = Object.keys(node)
  const n = node as Record<string, unknown>
  if (keys.length === 1) {
    if (keys[0] === 'Value') return true
    if (keys[0] === 'Nested') return isConstant(n.Nested, depth + 1)
    if (keys[0] === 'UnaryOp') {
      const op = n.UnaryOp as Record<string, unknown> | null
      return op !== null && typeof op === 'object' && Object.keys(op).every((k) => k === 'op' || k === 'expr') && isConstant(op.expr, depth + 1)
    }
  }
  // A VALUES row: `{ opening_token, content: [...], closing_token }` (explicit_row for ROW(...)).
  return 'content' in n && keys.every((k) => k === 'content' || k === 'explicit_row' || k.endsWith('_token')) && isConstant(n.content, depth + 1)
}

function collapseConstants (items: unknown[]): unknown[] {
  const out: unknown[] = []
  let constantKept = false
  for (const item of items) {
    if (!isConstant(item)) out.push(item)
    else if (!constantKept) {
      out.push(item)
      constantKept = true
    }
  }
  return out
}

/**
 * The JSON.stringify replacer of a parse tree. The parser writes a unit variant with no payload
 * as a key whose value is undefined (`{ Varchar: undefined }` for a VARCHAR without a length),
 * which plain JSON drops, leaving `{}`: the tree would lose the type name lineage reads. Such
 * values travel as null instead.
 */
export function compactTree (key: string, value: unknown): unknown {
  if (key === 'span' || key.endsWith('_token')) return undefined
  if (value === undefined) return null
  if (Array.isArray(value) && value.length >= COMPACT_FROM) return collapseConstants(value)
  return value
}
