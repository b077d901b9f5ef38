// Generated multi-statement Snowflake requests whose statements are known by construction: each
// statement carries a `;` the splitter must not cut at (a $$-string, a quoted string with `''`
// or a backslash-escaped quote, a quoted identifier, `--`, `//` and `/* */` comments, a block),
// joined by separators that add empty statements and comments, with noise before the first and
// after the last. `statements` is what each request must run as, one upstream request each.
import { random } from './seeded-random.js'

/** Statements that hold a `;` which separates nothing. A line comment ends with its newline. */
export const FRAGMENTS = [
  'SELECT $$a;b$$ AS X',
  "SELECT 'x;y' AS X",
  "SELECT 'it''s; fine' AS X",
  "SELECT 'a\\';b' AS X",
  'SELECT "c;d" FROM T',
  'SELECT 1 AS X -- line; comment\n',
  'SELECT 2 /* block; comment */ AS X',
  'SELECT 3 AS X // slash; comment\n',
  'SELECT A$$B FROM T',
  'EXECUTE IMMEDIATE $$SELECT 1; SELECT 2$$',
  "BEGIN\n  INSERT INTO T VALUES ('p;q');\n  SELECT 1;\nEND"
]

/** Between two statements: `prefix` is what of it belongs to the next statement's text. */
const SEPARATORS: Array<{ text: string, prefix: string }> = [
  { text: ';', prefix: '' },
  { text: ';\n', prefix: '' },
  { text: ' ;; ', prefix: '' },
  { text: '; -- only a comment;\n;', prefix: '' },
  { text: ';\n-- about the next; one\n', prefix: '-- about the next; one\n' },
  { text: '; /* ; */ ', prefix: '/* ; */ ' },
  { text: ';\n// next; too\n', prefix: '// next; too\n' }
]

const LEADING: Array<{ text: string, prefix: string }> = [
  { text: '', prefix: '' },
  { text: ';', prefix: '' },
  { text: ' ;\n', prefix: '' },
  { text: '-- first; of all\n', prefix: '-- first; of all\n' }
]

const TRAILING = ['', ';', ';;', '; -- done;', ';\n/* end; */', '; // fin']

export interface Generated {
  sql: string
  statements: string[]
}

export function generate (count: number, seed = 7): Generated[] {
  const r = random(seed)
  const pick = <T>(list: T[]): T => list[Math.floor(r() * list.length)] as T
  const out: Generated[] = []
  for (let n = 0; n < count; n++) {
    const size = 2 + Math.floor(r() * 3)
    const lead = pick(LEADING)
    let sql = lead.text
    const statements: string[] = []
    let prefix = lead.prefix
    for (let i = 0; i < size; i++) {
      const fragment = pick(FRAGMENTS)
      sql += fragment
      statements.push((prefix + fragment).trim())
      if (i < size - 1) {
        const sep = pick(SEPARATORS)
        sql += sep.text
        prefix = sep.prefix
      }
    }
    sql += pick(TRAILING)
    out.push({ sql, statements })
  }
  return out
}
