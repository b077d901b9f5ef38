// Generated Snowflake rowset rows for the slicing tests: text cells built from the pieces that
// trip a byte scanner (quotes, escapes, brackets and commas inside strings, control characters,
// unicode), with nulls, numbers, booleans and nested JSON values among them.
const PIECES = ['a', 'Z', '0', ' ', '"', '\\', '\\"', '"]', '],[', '[', ']', '{', '}', ',', '\n', '\t', '\u0000', '\u001f', 'é', '日本', '😀', '\u2028', 'null', '\\u0041']

export function text (next: () => number): string {
  let s = ''
  const n = Math.floor(next() * 12)
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)] as string
  return s
}

export function value (next: () => number, depth = 0): unknown {
  const r = next()
  if (r < 0.55) return text(next)
  if (r < 0.7) return null
  if (r < 0.8) return Math.floor(next() * 1e6) / 100
  if (r < 0.85) return next() < 0.5
  if (depth > 2) return text(next)
  if (r < 0.93) return Array.from({ length: Math.floor(next() * 3) }, () => value(next, depth + 1))
  return Object.fromEntries(Array.from({ length: Math.floor(next() * 3) }, (_, i) => [`k${i}${text(next)}`, value(next, depth + 1)]))
}

export function rowsOf (next: () => number): unknown[][] {
  const width = 1 + Math.floor(next() * 5)
  // A first cell that is itself an array would read as the one-array form (`[[`), as it
  // always has; warehouses send rows of text, so the generated first cell is text or null.
  return Array.from({ length: Math.floor(next() * 40) }, () => Array.from({ length: width }, (_, i) => i === 0 ? (next() < 0.2 ? null : text(next)) : value(next)))
}
