// The fingerprint is linear in the statement's size and says exactly what it said before it was
// made linear. The reference below is the earlier (quadratic) implementation, kept verbatim to
// compare outputs on statements small enough for it; the work check counts what `endsWith`
// scans, which grew with the square of the statement before (a 400 KB statement took seconds).
import { afterEach, describe, expect, it } from 'vitest'
import { sqlFingerprint } from '../../src/recording/fingerprint.js'
import { sqlSearchVector, sqlTokens } from '../../src/recording/fulltext.js'

function referenceFingerprint (sql: string): string {
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

const SHAPES = [
  "SELECT *\n  FROM Orders WHERE id = 42 AND name = 'O''Brien'   -- why\n",
  'select a from t where x in (1, 2, 3) and y in ( ?, ? ,? ) and z in ($1, $2);',
  'SELECT "Email", `b c`, "unterminated ',
  "select $$it's$$, $tag$ x $tag$, /* c */ 'x', 1.5e3, 0x1F, .5, a::text, :name, @p",
  'WITH c AS (SELECT 1 AS n) INSERT INTO t SELECT n FROM c; UPDATE t SET a = \'x\' WHERE b = 1;;',
  'select f( a , b ) , g(( 1 )) from s.t\twhere a <> b -- end',
  '/* unterminated comment'
]

function statementOf (size: number, seed: number): string {
  const parts: string[] = []
  let n = 0
  for (let k = 0; n < size; k++) {
    const p = SHAPES[(seed + k) % SHAPES.length] as string
    parts.push(k % 3 === 0 ? p : `${p} ${k}, 'v${k}'`)
    n += p.length
  }
  return parts.join('\n')
}

const realEndsWith = String.prototype.endsWith

afterEach(() => {
  String.prototype.endsWith = realEndsWith
})

describe('sqlFingerprint is linear and unchanged', () => {
  it('says what the earlier implementation said, on mixed statements of several sizes', () => {
    for (const shape of SHAPES) expect(sqlFingerprint(shape)).toBe(referenceFingerprint(shape))
    for (const size of [0, 10, 100, 1000, 10_000, 50_000]) {
      for (let seed = 0; seed < SHAPES.length; seed++) {
        const sql = statementOf(size, seed)
        expect(sqlFingerprint(sql)).toBe(referenceFingerprint(sql))
      }
    }
  })

  it('scans each character a bounded number of times (the work does not grow with the square)', () => {
    let scanned = 0
    String.prototype.endsWith = function (this: string, ...args: [string, number?]) {
      scanned += this.length
      return realEndsWith.apply(this, args)
    }
    const sql = statementOf(200_000, 1)
    sqlFingerprint(sql)
    String.prototype.endsWith = realEndsWith
    // The quadratic version asked the whole output so far on every token: ~10^9 characters here.
    expect(scanned).toBeLessThan(4 * sql.length)
  })

  it('fingerprints a 2 MB IN list to the short form', () => {
    for (const count of [300_000]) {
      const sql = `SELECT * FROM t WHERE id IN (${Array.from({ length: count }, (_, k) => String(k)).join(', ')}) AND "Name" = 'x'`
      expect(sqlFingerprint(sql)).toBe('select * from t where id in (?) and "Name" = ?')
    }
  })
})

describe('full-text tokens of a large statement', () => {
  it('tokenizes a 2 MB statement with a bounded vector', () => {
    const sql = `SELECT * FROM analytics.public.orders WHERE id IN (${Array.from({ length: 300_000 }, (_, k) => `'v${k}'`).join(', ')})`
    expect(sqlTokens(sql).length).toBeGreaterThan(300_000)
    const vector = sqlSearchVector(sql) as string
    expect(vector).toContain("'orders':")
    expect(vector.split(' ').length).toBeLessThanOrEqual(2000)
  })
})
