// The MCP catalogue tools put schema and table names into Snowflake information_schema queries as
// string literals. Snowflake reads backslash escapes in single-quoted strings, so every name —
// generated over quotes, backslashes and SQL punctuation — must come back from the literal as
// exactly itself, with nothing after the literal's end: no name can become SQL that reads data.
import { describe, expect, it } from 'vitest'
import { snowflakeLiteral } from '../../src/warehouses/port.js'

/** Reads one Snowflake single-quoted literal at the start of `sql`: its value and what follows. */
function readLiteral (sql: string): { value: string, rest: string } {
  if (sql[0] !== "'") throw new Error('not a literal')
  let value = ''
  for (let i = 1; i < sql.length; i++) {
    const c = sql[i] as string
    if (c === '\\') {
      const next = sql[i + 1]
      if (next === undefined) throw new Error('unterminated escape')
      value += next === 'n' ? '\n' : next === 't' ? '\t' : next === '0' ? '\0' : next
      i++
    } else if (c === "'") {
      if (sql[i + 1] === "'") { value += "'"; i++ } else return { value, rest: sql.slice(i + 1) }
    } else {
      value += c
    }
  }
  throw new Error('unterminated literal')
}

const ALPHABET = ['\\', "'", 'a', '"', ';', '-', ' ', 'n']

function * names (length: number): Generator<string> {
  if (length === 0) { yield ''; return }
  for (const head of ALPHABET) for (const tail of names(length - 1)) yield head + tail
}

describe('Snowflake catalogue literals', () => {
  it('give back every name exactly, ending where the literal ends', () => {
    let n = 0
    for (let length = 0; length <= 4; length++) {
      for (const name of names(length)) {
        const literal = snowflakeLiteral(name)
        expect(readLiteral(literal), JSON.stringify(name)).toEqual({ value: name, rest: '' })
        n++
      }
    }
    expect(n).toBe(1 + 8 + 64 + 512 + 4096)
  })

  it('keep an injection attempt inside the string', () => {
    const attempt = "PUBLIC\\' ) UNION SELECT EMAIL, SSN FROM CUSTOMERS --"
    expect(readLiteral(`${snowflakeLiteral(attempt)}) ORDER BY 1`)).toEqual({ value: attempt, rest: ') ORDER BY 1' })
  })
})
