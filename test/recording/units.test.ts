// The pure parts: fingerprints, parameter redaction, result capture, canonical encoding.
import { describe, expect, it } from 'vitest'
import { CaptureCollector, compressCapture, decompressCapture } from '../../src/recording/capture.js'
import { canonicalJson, eventDigest, isoMicros, storable } from '../../src/recording/chain.js'
import { createParamRedactor, REDACTED, sqlFingerprint } from '../../src/recording/fingerprint.js'
import { csvCell } from '../../src/recording/export.js'

describe('sqlFingerprint', () => {
  it('replaces literals and normalizes whitespace and case', () => {
    expect(sqlFingerprint("SELECT *\n  FROM Orders WHERE id = 42 AND name = 'O''Brien'   -- why\n")).toBe('select * from orders where id = ? and name = ?')
    expect(sqlFingerprint('select a from t where x in (1, 2, 3)')).toBe(sqlFingerprint('SELECT a FROM t WHERE x IN (7)'))
    expect(sqlFingerprint('select 1.5e3, 0x1F, .5')).toBe('select ?, ?, ?')
  })

  it('keeps quoted identifiers and casts, hides placeholders and dollar quotes', () => {
    expect(sqlFingerprint('SELECT "Email" FROM t WHERE a = $1 AND b = :name AND c::text = @p')).toBe('select "Email" from t where a = ? and b = ? and c::text = ?')
    expect(sqlFingerprint("select $$it's$$, /* c */ 'x'")).toBe('select ?, ?')
  })
})

describe('parameter redaction', () => {
  const redact = createParamRedactor({ names: ['*password*', 'ssn'], values: ['^\\d{4}-\\d{4}-\\d{4}-\\d{4}$'] })

  it('redacts by name and by value, positional and named, and Snowflake typed binds', () => {
    expect(redact({ user: 'a', db_password: 'x', SSN: '123' })).toEqual({ user: 'a', db_password: REDACTED, SSN: REDACTED })
    expect(redact(['4111-1111-1111-1111', 5])).toEqual([REDACTED, 5])
    expect(redact({ 1: { type: 'TEXT', value: '4111-1111-1111-1111' } })).toEqual({ 1: { type: 'TEXT', value: REDACTED } })
    expect(redact(undefined)).toBeNull()
  })
})

describe('result capture', () => {
  it('captures up to the budget, marks truncation, and round-trips through gzip', async () => {
    const c = new CaptureCollector([{ name: 'ID', type: 'NUMBER' }], 60)
    c.add([[1], [2], [3]])
    c.add(Array.from({ length: 50 }, (_, i) => [i]))
    const result = c.result()
    expect(result.truncated).toBe(true)
    expect(result.rowsReleased).toBe(53)
    expect(result.rows.length).toBeLessThan(53)
    const packed = await compressCapture(result)
    expect(packed?.truncated).toBe(true)
    expect(await decompressCapture(packed?.bytes)).toEqual(result)
  })

  it('stores a small capture as its JSON and a large one gzipped, both read back whole', async () => {
    for (const rows of [3, 2000]) {
      const c = new CaptureCollector([{ name: 'ID', type: 'NUMBER' }, { name: 'NOTE', type: 'TEXT' }], 1024 * 1024)
      c.add(Array.from({ length: rows }, (_, i) => [i, `note ${i}`]))
      const packed = await compressCapture(c.result())
      expect(packed?.bytes[0]).toBe(rows === 3 ? '{'.charCodeAt(0) : 0x1f)
      expect(await decompressCapture(packed?.bytes)).toEqual(c.result())
    }
  })

  it('is not truncated under the budget', () => {
    const c = new CaptureCollector([{ name: 'A', type: 'TEXT' }], 1024 * 1024)
    c.add([['x'], ['y']])
    expect(c.result()).toMatchObject({ truncated: false, rows: [['x'], ['y']] })
  })
})

describe('canonical encoding', () => {
  it('sorts keys at every level, so jsonb key reordering cannot change a digest', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}')
    expect(eventDigest({ requestId: 'r', analysis: { b: 1, a: 2 } })).toEqual(eventDigest({ analysis: { a: 2, b: 1 }, requestId: 'r' }))
  })

  it('makes strings Postgres refuses storable', () => {
    expect(storable({ s: 'a\u0000b\ud800c', n: 5n, x: [Infinity] })).toEqual({ s: 'a\uFFFDb\uFFFDc', n: '5', x: [null] })
  })

  it('formats microseconds', () => {
    expect(isoMicros(1_700_000_000_123_456)).toBe('2023-11-14T22:13:20.123456Z')
  })

  it('writes CSV cells a spreadsheet will not execute', () => {
    expect(csvCell('=cmd()')).toBe(`"'=cmd()"`)
    expect(csvCell('a,"b"')).toBe('"a,""b"""')
    expect(csvCell(['x'])).toBe('"[""x""]"')
  })
})

describe('sqlFingerprint spacing', () => {
  it('keeps words apart from parentheses', () => {
    expect(sqlFingerprint('SELECT count( * ) FROM t WHERE x IN ( 1 ,2 );')).toBe('select count(*) from t where x in (?)')
  })
})

describe('SQL full-text tokens', () => {
  it('builds a tsvector literal with positions, dotted names split, quotes escaped', async () => {
    const { sqlSearchVector, searchQuery } = await import('../../src/recording/fulltext.js')
    expect(sqlSearchVector("SELECT customer_id FROM analytics.public.orders WHERE n = 'O''Brien'")).toBe(
      "'select':1 'customer_id':2 'from':3 'analytics':4 'public':5 'orders':6 'where':7 'n':8 'o':9 'brien':10")
    expect(sqlSearchVector("select 'it\\'s'")).toContain("'it':2")
    expect(sqlSearchVector(null)).toBeNull()
    expect(searchQuery('orders -customers')).toBe("'orders' & !'customers'")
    expect(searchQuery('"public.orders" or invoices')).toBe("(('public' <-> 'orders') | 'invoices')")
    expect(searchQuery('ord* customer_id')).toBe("'ord':* & 'customer_id'")
    expect(searchQuery("o'brien")).toBe("('o' <-> 'brien')")
    expect(searchQuery('  -- ')).toBeNull()
  })
})
