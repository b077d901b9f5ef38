// A statement's first keyword, for the refusals the Snowflake front ends make by keyword (PUT and
// GET file transfers, what the SQL API does not run). It reads one statement the parser already
// delimited (the analysis' statement texts): it never decides where statements begin or end.

/** The statement without leading comments. */
function stripComments (sql: string): string {
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
