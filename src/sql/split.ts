// Each statement's own text, for a multi-statement input.
//
// How many statements there are, and what each one is, comes from a single parse of the whole
// input; this module only attributes source text to the statements the parser already found.
// sqlparser records no span for a whole statement, so the separator after statement i is
// located from the parser's own information:
//   1. the spans of statement i's tokens and identifiers (the separator comes after the last),
//      and of statement i+1 (it comes before the first);
//   2. the spans of every literal, identifier and comment, inside which a `;` is never a
//      separator (so `'a;b'`, `$$…;…$$`, `-- ;` are skipped);
//   3. where several candidates remain (the inner separators of a `BEGIN …; …; END` block also
//      pass 1–2), a re-parse of each candidate slice, which must yield exactly one statement of
//      the same variant.
import { variantOf, type SourceComment, type StatementJson } from './parser.js'

interface Pos { line: number, column: number }
interface Span { start: Pos, end: Pos }

export type Reparse = (text: string) => StatementJson[] | undefined

export function statementTexts (
  sql: string,
  statements: StatementJson[],
  comments: SourceComment[],
  reparse: Reparse
): string[] {
  if (statements.length <= 1) return statements.map(() => sql.trim())
  const at = offsetFinder(sql)
  const covered = new Int32Array(sql.length + 1)
  const cover = (from: number, to: number): void => {
    if (to <= from) return
    covered[from] = (covered[from] ?? 0) + 1
    covered[to] = (covered[to] ?? 0) - 1
  }
  for (const c of comments) {
    cover(at(c.startLine, c.startColumn), at(c.endLine, c.endColumn))
  }
  const ranges = statements.map((stmt) => {
    let min = Infinity
    let max = -Infinity
    forEachSpan(stmt, (span) => {
      const from = at(span.start.line, span.start.column)
      const to = at(span.end.line, span.end.column)
      cover(from, to)
      if (from < min) min = from
      if (to > max) max = to
    })
    return { min, max }
  })
  const candidates: number[] = []
  let depth = 0
  for (let i = 0; i < sql.length; i++) {
    depth += covered[i] ?? 0
    if (depth === 0 && sql.charCodeAt(i) === 59 /* ; */) candidates.push(i)
  }

  const texts: string[] = []
  let start = 0
  for (let i = 0; i < statements.length - 1; i++) {
    const own = ranges[i] as { min: number, max: number }
    const lower = Math.max(start, Number.isFinite(own.max) ? own.max : start)
    let upper = sql.length
    for (let j = i + 1; j < ranges.length; j++) {
      const next = ranges[j] as { min: number, max: number }
      if (Number.isFinite(next.min)) { upper = next.min; break }
    }
    const inRange = candidates.filter((c) => c >= lower && c < upper)
    const variant = variantOf(statements[i])
    // One candidate between the two statements' spans is the separator; re-parse only to
    // choose among several (the inner separators of a block).
    const chosen = inRange.length === 1 ? inRange[0] : inRange.find((c) => {
      const parsed = reparse(sql.slice(start, c))
      return parsed !== undefined && parsed.length === 1 && variantOf(parsed[0]) === variant
    }) ?? inRange[0]
    if (chosen === undefined) {
      // Nothing to cut at: every remaining statement is shown with the remaining text.
      const rest = sql.slice(start).trim()
      while (texts.length < statements.length) texts.push(rest)
      return texts
    }
    texts.push(sql.slice(start, chosen).trim())
    start = chosen + 1
  }
  texts.push(stripTrailingSeparator(sql.slice(start)))
  return texts
}

function stripTrailingSeparator (text: string): string {
  const t = text.trim()
  return t.endsWith(';') ? t.slice(0, -1).trimEnd() : t
}

function forEachSpan (node: unknown, fn: (span: Span) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) forEachSpan(item, fn)
    return
  }
  if (node === null || typeof node !== 'object') return
  const obj = node as Record<string, unknown>
  for (const key in obj) {
    const v = obj[key]
    if (key === 'span') {
      const span = v as Span | undefined
      if (span?.start !== undefined && span.start.line > 0) fn(span)
    } else if (v !== null && typeof v === 'object') {
      forEachSpan(v, fn)
    }
  }
}

/**
 * Maps the parser's 1-based line/column (columns count Unicode code points) to a string offset
 * (UTF-16 code units).
 */
function offsetFinder (sql: string): (line: number, column: number) => number {
  const lineStarts = [0]
  for (let i = 0; i < sql.length; i++) {
    if (sql.charCodeAt(i) === 10) lineStarts.push(i + 1)
  }
  // Only text with characters outside the BMP needs the per-character walk.
  const astral = /[\ud800-\udbff]/.test(sql)
  return (line, column) => {
    const lineStart = lineStarts[line - 1]
    if (lineStart === undefined) return sql.length
    if (!astral) return Math.min(lineStart + column - 1, sql.length)
    let offset = lineStart
    for (let col = 1; col < column && offset < sql.length; col++) {
      const code = sql.charCodeAt(offset)
      offset += code >= 0xd800 && code <= 0xdbff ? 2 : 1
    }
    return offset
  }
}
