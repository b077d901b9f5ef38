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
// Between statements, separators with nothing but blanks and comments before them (`;;`, a
// comment-only `-- x\n;`) are empty statements the parser skipped: they belong to no statement's
// text, and neither do the separators and comments after the last statement. Each text is then
// exactly one statement, which is what a front end running a request statement by statement
// sends upstream (the Snowflake front ends do).
import { variantOf, type SourceComment, type StatementJson } from './parser.js'

interface Pos { line: number, column: number }
interface Span { start: Pos, end: Pos }

export type Reparse = (text: string) => StatementJson[] | undefined

export interface StatementTexts {
  texts: string[]
  /**
   * False when a separator had to be guessed (none between two statements, or several and no
   * re-parse settled it): the texts are then only shown, never to be run one by one.
   */
  exact: boolean
}

export function statementTexts (
  sql: string,
  statements: StatementJson[],
  comments: SourceComment[],
  reparse: Reparse
): StatementTexts {
  if (statements.length <= 1) return { texts: statements.map(() => sql.trim()), exact: true }
  const at = offsetFinder(sql)
  const covered = new Int32Array(sql.length + 1)
  const commented = new Int32Array(sql.length + 1)
  const add = (diff: Int32Array, from: number, to: number): void => {
    if (to <= from) return
    diff[from] = (diff[from] ?? 0) + 1
    diff[to] = (diff[to] ?? 0) - 1
  }
  const cover = (from: number, to: number): void => { add(covered, from, to) }
  for (const c of comments) {
    const from = at(c.startLine, c.startColumn)
    const to = at(c.endLine, c.endColumn)
    cover(from, to)
    add(commented, from, to)
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
  // blank[i]: the character at i is white space or inside a comment.
  const blank = new Uint8Array(sql.length)
  let depth = 0
  let inComment = 0
  for (let i = 0; i < sql.length; i++) {
    depth += covered[i] ?? 0
    inComment += commented[i] ?? 0
    const code = sql.charCodeAt(i)
    if (depth === 0 && code === 59 /* ; */) candidates.push(i)
    if (inComment > 0 || code === 32 || (code >= 9 && code <= 13) || (code > 127 && /\s/.test(sql[i] as string))) blank[i] = 1
  }
  const blankBetween = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (blank[i] === 0) return false
    return true
  }
  /** Past the empty statements (blanks and comments up to a separator) that start at `from`. */
  const skipEmpty = (from: number): number => {
    let start = from
    for (let k = firstCandidateFrom(candidates, from); k < candidates.length; k++) {
      const c = candidates[k] as number
      if (!blankBetween(start, c)) break
      start = c + 1
    }
    return start
  }
  /** Where the statement starting at `from` ends: before the separators, blanks and comments closing the input. */
  const endOfLast = (from: number): number => {
    let end = sql.length
    for (let k = candidates.length - 1; k >= 0; k--) {
      const c = candidates[k] as number
      if (c < from || !blankBetween(c + 1, end)) break
      end = c
    }
    return end
  }

  const texts: string[] = []
  let exact = true
  let start = skipEmpty(0)
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
    const settled = inRange.length === 1 ? inRange[0] : inRange.find((c) => {
      const parsed = reparse(sql.slice(start, c))
      return parsed !== undefined && parsed.length === 1 && variantOf(parsed[0]) === variant
    })
    if (settled === undefined) exact = false
    const chosen = settled ?? inRange[0]
    if (chosen === undefined) {
      // Nothing to cut at: every remaining statement is shown with the remaining text.
      const rest = sql.slice(start).trim()
      while (texts.length < statements.length) texts.push(rest)
      return { texts, exact: false }
    }
    texts.push(sql.slice(start, chosen).trim())
    start = skipEmpty(chosen + 1)
  }
  texts.push(sql.slice(start, endOfLast(start)).trim())
  return { texts, exact }
}

/** The index of the first candidate at or after `from` (candidates are ascending). */
function firstCandidateFrom (candidates: number[], from: number): number {
  let lo = 0
  let hi = candidates.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((candidates[mid] as number) < from) lo = mid + 1
    else hi = mid
  }
  return lo
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
