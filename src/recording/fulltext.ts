// Full-text search of SQL, tokenized here rather than by Postgres' to_tsvector. Two reasons:
// SQL is not prose (`analytics.public.orders` should be found by `orders`, `customer_id` is
// one word, and no English stemming applies), and to_tsvector's parser costs the database
// ~30 µs per event on the write path, where we are CPU-bound. The gateway sends a ready
// tsvector literal; queries are turned into a tsquery by the same tokenizer, so both sides
// always agree. Works the same on PGlite (tsvector and GIN are core Postgres).

const TOKEN = /[\p{L}\p{N}_$]+/gu
const MAX_LEXEME = 100
const MAX_POSITION = 16383
const MAX_POSITIONS_PER_LEXEME = 255
const MAX_LEXEMES = 2000

/** Lexemes of a text: runs of letters, digits, `_` and `$`, lower-cased. */
export function sqlTokens (text: string): string[] {
  const out: string[] = []
  for (const m of text.toLowerCase().matchAll(TOKEN)) {
    if (m[0].length <= MAX_LEXEME) out.push(m[0])
  }
  return out
}

function quote (lexeme: string): string {
  return `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/** A tsvector literal (`'orders':3,9 'select':1`) for the SQL text; null without SQL. */
export function sqlSearchVector (sql: string | null): string | null {
  if (sql === null || sql === '') return null
  const positions = new Map<string, number[]>()
  let pos = 0
  for (const token of sqlTokens(sql)) {
    pos = Math.min(pos + 1, MAX_POSITION)
    const list = positions.get(token)
    if (list === undefined) {
      if (positions.size >= MAX_LEXEMES) continue
      positions.set(token, [pos])
    } else if (list.length < MAX_POSITIONS_PER_LEXEME && list[list.length - 1] !== pos) {
      list.push(pos)
    }
  }
  if (positions.size === 0) return null
  return [...positions].map(([lexeme, list]) => `${quote(lexeme)}:${list.join(',')}`).join(' ')
}

/**
 * Web-search syntax to a tsquery: words must all appear; "quoted words" must appear in that
 * order, adjacent; -word must not appear; `or` between two terms accepts either; word* is a
 * prefix. A dotted name (`public.orders`) is a phrase of its parts. Null when nothing is left.
 */
export function searchQuery (input: string): string | null {
  const terms: string[] = []
  let pendingOr = false
  const re = /(-?)"([^"]*)"?|(\S+)/g
  for (const m of input.matchAll(re)) {
    const negate = m[1] === '-' || (m[3]?.startsWith('-') ?? false)
    const raw = m[2] ?? (m[3] ?? '').replace(/^-/, '')
    if (m[3] !== undefined && raw.toLowerCase() === 'or' && !negate) {
      pendingOr = terms.length > 0
      continue
    }
    const prefix = m[2] === undefined && raw.endsWith('*')
    const tokens = sqlTokens(raw)
    if (tokens.length === 0) continue
    const parts = tokens.map(quote)
    if (prefix) parts[parts.length - 1] = `${parts[parts.length - 1] as string}:*`
    let term = parts.length === 1 ? parts[0] as string : `(${parts.join(' <-> ')})`
    if (negate) term = `!${term}`
    if (pendingOr && terms.length > 0) {
      terms.push(`(${terms.pop() as string} | ${term})`)
    } else {
      terms.push(term)
    }
    pendingOr = false
  }
  return terms.length === 0 ? null : terms.join(' & ')
}
