// Splits a Snowflake request into its statements at top-level semicolons. Quoted strings,
// quoted identifiers, $$-strings and comments are skipped, so a ';' inside them never splits.
// Needed because Sluice runs multi-statement requests one statement at a time upstream (so
// each result passes through the pipeline and gets its own, owner-bound query id).

export function splitStatements (sql: string): string[] {
  const out: string[] = []
  let start = 0
  let i = 0
  const n = sql.length
  while (i < n) {
    const ch = sql[i]
    const next = sql[i + 1]
    if (ch === "'" || ch === '"') {
      i = skipQuoted(sql, i, ch)
    } else if (ch === '$' && next === '$') {
      const end = sql.indexOf('$$', i + 2)
      i = end === -1 ? n : end + 2
    } else if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i)
      i = end === -1 ? n : end + 1
    } else if (ch === '/' && next === '/') {
      const end = sql.indexOf('\n', i)
      i = end === -1 ? n : end + 1
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? n : end + 2
    } else if (ch === ';') {
      out.push(sql.slice(start, i))
      i++
      start = i
    } else {
      i++
    }
  }
  out.push(sql.slice(start))
  return out.map((s) => s.trim()).filter((s) => stripComments(s).trim() !== '')
}

function skipQuoted (sql: string, from: number, quote: string): number {
  let i = from + 1
  while (i < sql.length) {
    const ch = sql[i]
    if (ch === '\\' && quote === "'") {
      i += 2
    } else if (ch === quote) {
      if (sql[i + 1] === quote) i += 2
      else return i + 1
    } else {
      i++
    }
  }
  return i
}

/** The statement without leading comments, for keyword checks. */
export function stripComments (sql: string): string {
  let s = sql.trimStart()
  for (;;) {
    if (s.startsWith('--') || s.startsWith('//')) {
      const end = s.indexOf('\n')
      s = end === -1 ? '' : s.slice(end + 1).trimStart()
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/')
      s = end === -1 ? '' : s.slice(end + 2).trimStart()
    } else {
      return s
    }
  }
}

/** The first keyword, upper-cased ('' for none). */
export function leadingKeyword (sql: string): string {
  return /^[A-Za-z_]+/.exec(stripComments(sql))?.[0]?.toUpperCase() ?? ''
}
