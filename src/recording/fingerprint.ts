// What turns a statement into searchable, shareable evidence without leaking its values: a
// fingerprint that groups statements differing only in literals, and bind parameters with the
// sensitive ones redacted by rule before they ever reach the store.

/**
 * Normalized SQL: literals (strings, numbers, booleans-as-numbers) and placeholders become `?`,
 * comments go, whitespace collapses, unquoted text is lower-cased, and a list of placeholders
 * `(?, ?, ?)` becomes `(?)` so an IN list of any length has one fingerprint. Quoted identifiers
 * keep their case: in every dialect we serve, "Email" and email are different columns.
 */
export function sqlFingerprint (sql: string): string {
  // Built as a list of pieces and joined once: `+=` makes a rope, and asking a rope whether it
  // ends with a space flattens it every time, which made this quadratic (400 KB took seconds).
  const out: string[] = []
  let endsWithSpace = false
  let i = 0
  const n = sql.length
  const emit = (text: string): void => {
    if (text === ' ') {
      if (out.length > 0 && !endsWithSpace) {
        out.push(' ')
        endsWithSpace = true
      }
      return
    }
    out.push(text)
    endsWithSpace = text.endsWith(' ')
  }
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = i
    return re.exec(sql)?.[0]
  }
  while (i < n) {
    const c = sql[i] as string
    const next = sql[i + 1]
    if (c === '-' && next === '-') {
      while (i < n && sql[i] !== '\n') i++
      emit(' ')
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? n : end + 2
      emit(' ')
    } else if (c === "'") {
      i = skipQuoted(sql, i, "'")
      emit('?')
    } else if (c === '$' && next !== undefined && /[A-Za-z_$]/.test(next) && /\$[A-Za-z_]*\$/.test(sql.slice(i, i + 64))) {
      // Postgres dollar quoting: $$…$$ or $tag$…$tag$.
      const tag = match(DOLLAR_TAG) ?? '$$'
      const end = sql.indexOf(tag, i + tag.length)
      i = end === -1 ? n : end + tag.length
      emit('?')
    } else if (c === '"' || c === '`') {
      const start = i
      i = skipQuoted(sql, i, c)
      emit(sql.slice(start, i))
    } else if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i] as string)) i++
      emit(' ')
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      i += match(NUMBER)?.length ?? 1
      emit('?')
    } else if ((c === '$' || c === ':' || c === '@') && next !== undefined && /[0-9A-Za-z_]/.test(next) && sql[i - 1] !== ':') {
      // $1, :name, @name placeholders; `::type` casts are left alone.
      i += match(PLACEHOLDER)?.length ?? 1
      emit('?')
    } else if (/[A-Za-z_]/.test(c)) {
      const word = match(WORD) ?? c
      i += word.length
      emit(word.toLowerCase())
    } else {
      i++
      emit(c === '?' ? '?' : c)
    }
  }
  return collapsePlaceholderLists(out.join('').trim()
    .replace(/ ?, ?/g, ', ')
    .replace(/\( /g, '(')
    .replace(/ \)/g, ')'))
    .replace(/ ?;+$/, '')
}

// Sticky: matched at `lastIndex` in the statement itself, never on a copy of its tail.
const DOLLAR_TAG = /\$[A-Za-z_]*\$/y
const NUMBER = /0x[0-9a-f]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?/iy
const PLACEHOLDER = /.[0-9A-Za-z_]+/y
const WORD = /[A-Za-z_][A-Za-z0-9_$]*/y

/**
 * `(?, ?, ?)` → `(?)`, in one pass. A regular expression with a repeated group backtracks
 * over every element and overflowed the stack on a multi-megabyte IN list.
 */
function collapsePlaceholderLists (text: string): string {
  const parts: string[] = []
  let from = 0
  let at = text.indexOf('(?, ?', from)
  while (at !== -1) {
    let j = at + 2
    while (text.startsWith(', ?', j)) j += 3
    if (text[j] === ')') {
      parts.push(text.slice(from, at), '(?)')
      from = j + 1
      at = text.indexOf('(?, ?', from)
    } else {
      at = text.indexOf('(?, ?', at + 1)
    }
  }
  if (from === 0) return text
  parts.push(text.slice(from))
  return parts.join('')
}

function skipQuoted (sql: string, start: number, quote: string): number {
  let i = start + 1
  while (i < sql.length) {
    if (sql[i] === '\\' && quote === "'") {
      i += 2
      continue
    }
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) {
        i += 2
        continue
      }
      return i + 1
    }
    i++
  }
  return sql.length
}

export interface RedactionRules {
  /** Globs over parameter names (`password`, `*ssn*`); positional parameters are named 1, 2… */
  names: string[]
  /** Regular expressions; a string parameter matching any is redacted whatever its name. */
  values: string[]
}

export const REDACTED = '[redacted]'

export type ParamRedactor = (params: unknown) => unknown

function globToRegExp (glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')
  return new RegExp(`^${body}$`, 'i')
}

/** Compiles the rules once; the returned function leaves its input untouched. */
export function createParamRedactor (rules: RedactionRules): ParamRedactor {
  const names = rules.names.map(globToRegExp)
  const values = rules.values.map((v) => new RegExp(v))
  const byName = (name: string): boolean => names.some((re) => re.test(name))
  const byValue = (value: unknown): boolean => typeof value === 'string' && values.some((re) => re.test(value))
  const one = (name: string, value: unknown): unknown => {
    if (byName(name) || byValue(value)) return REDACTED
    // Snowflake binds arrive as {type, value}: judge the value, keep the type.
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'value' in value) {
      const v = (value as { value: unknown }).value
      return byValue(v) ? { ...value, value: REDACTED } : value
    }
    return value
  }
  return (params) => {
    if (params === undefined || params === null) return null
    if (Array.isArray(params)) return params.map((v, i) => one(String(i + 1), v))
    if (typeof params === 'object') {
      return Object.fromEntries(Object.entries(params as Record<string, unknown>).map(([k, v]) => [k, one(k, v)]))
    }
    return one('1', params)
  }
}
