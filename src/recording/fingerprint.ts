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
  let out = ''
  let i = 0
  const n = sql.length
  const emit = (text: string): void => {
    if (text === ' ') {
      if (out !== '' && !out.endsWith(' ')) out += ' '
      return
    }
    out += text
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
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))?.[0] ?? '$$'
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
      const m = /^(0x[0-9a-f]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)/i.exec(sql.slice(i))
      i += m?.[0].length ?? 1
      emit('?')
    } else if ((c === '$' || c === ':' || c === '@') && next !== undefined && /[0-9A-Za-z_]/.test(next) && sql[i - 1] !== ':') {
      // $1, :name, @name placeholders; `::type` casts are left alone.
      const m = /^.[0-9A-Za-z_]+/.exec(sql.slice(i))
      i += m?.[0].length ?? 1
      emit('?')
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))
      const word = m?.[0] ?? c
      i += word.length
      emit(word.toLowerCase())
    } else {
      i++
      emit(c === '?' ? '?' : c)
    }
  }
  return out.trim()
    .replace(/ ?, ?/g, ', ')
    .replace(/\( /g, '(')
    .replace(/ \)/g, ')')
    .replace(/\(\?(, \?)+\)/g, '(?)')
    .replace(/ ?;+$/, '')
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
