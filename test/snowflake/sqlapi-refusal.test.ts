// The SQL API's refusals read only the statement's first words: the same answer as reading
// the whole text whitespace-collapsed, for every generated head, however long the rest is.
import { describe, expect, it } from 'vitest'
import { leadingWords, sqlApiRefusal } from '../../src/warehouses/snowflake/sqlapi-wire.js'
import { random } from '../support/seeded-random.js'

/** The refusal as it read the statement before: the whole text collapsed and upper-cased. */
function wholeTextHead (text: string): string {
  return text.replace(/\s+/g, ' ').trim().toUpperCase()
}

const WORDS = ['create', 'or', 'replace', 'local', 'global', 'temp', 'temporary', 'volatile', 'table', 'view', 'stage', 'alter', 'session', 'set', 'start', 'transaction', 'begin', 'use', 'select', 'x', 't(a int)', '1;']
const SPACE = [' ', '  ', '\n', '\t', '\r\n', ' \n\t ']

describe('SQL API refusals read the first words only', () => {
  it('answer as the whole collapsed text did, for 3,000 generated statements', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const next = random(seed)
      const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)] as T
      const words = Array.from({ length: 1 + Math.floor(next() * 9) }, () => pick(WORDS))
      const text = (next() < 0.3 ? pick(SPACE) : '') + words.map((w) => w + pick(SPACE)).join('') + (next() < 0.5 ? 'x '.repeat(Math.floor(next() * 500)) : '')
      const keyword = (words[0] ?? '').toUpperCase()
      const head = wholeTextHead(text)
      // The checks before, on the whole head; the function now, on its first words.
      const before = ((): string | undefined => {
        if (keyword === 'USE' || keyword === 'SET' || keyword === 'UNSET' || ['BEGIN', 'COMMIT', 'ROLLBACK'].includes(keyword) || head.startsWith('START TRANSACTION') || head.startsWith('ALTER SESSION')) return 'refused'
        return /^CREATE (?:OR REPLACE )?(?:LOCAL |GLOBAL )?(TEMP|TEMPORARY|VOLATILE) (\w+)/.test(head) ? 'refused' : undefined
      })()
      expect(sqlApiRefusal(keyword, text) === undefined ? undefined : 'refused', `seed ${seed}: ${JSON.stringify(text.slice(0, 120))}`).toBe(before)
    }
  })

  it('names the object kind it read, however the words are spaced', () => {
    expect(sqlApiRefusal('CREATE', 'create\n\n  or   replace\tglobal temporary\n table t(a int)')).toMatch(/^CREATE TEMPORARY TABLE is not supported/)
  })

  it('read a 1 MB statement without rewriting it', () => {
    const text = `SELECT * FROM t WHERE id IN (${'1,'.repeat(500_000)}1)`
    expect(leadingWords(text, 3)).toBe('SELECT * FROM')
    expect(sqlApiRefusal('SELECT', text)).toBeUndefined()
  })
})
