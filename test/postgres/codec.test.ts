// The value codec of the PostgreSQL front end: upstream text ↔ neutral values (arrays as JS
// arrays so masks apply per element), and the binary forms Sluice writes and reads.
import { describe, expect, test } from 'vitest'
import { binaryEncodable, decodeBinaryParam, encodeBinary, toNeutral, toText } from '../../src/warehouses/postgres/codec.js'
import { completionTag } from '../../src/frontends/postgres/results.js'
import { OID } from '../../src/warehouses/postgres/types.js'

describe('text', () => {
  test('arrays become JS arrays and are written back as array literals', () => {
    expect(toNeutral('{a,"b c",NULL,"x\\"y"}', 1009)).toEqual(['a', 'b c', null, 'x"y'])
    expect(toText(['a', 'b c', null, 'x"y', '', 'NULL'])).toBe('{a,"b c",NULL,"x\\"y","","NULL"}')
    expect(toText([['1', '2'], ['3', '4']])).toBe('{{1,2},{3,4}}')
  })
  test('masked replacements of other JS types keep PostgreSQL text forms', () => {
    expect(toText(0)).toBe('0')
    expect(toText(12n)).toBe('12')
    expect(toText(true)).toBe('t')
    expect(toText(new Date('2024-01-01T00:00:00Z'))).toBe('2024-01-01 00:00:00.000+00')
    expect(toText({ a: 1 })).toBe('{"a":1}')
    expect(toText(null)).toBeNull()
  })
})

describe('binary', () => {
  const round = (text: string, oid: number): string | Buffer => decodeBinaryParam(encodeBinary(text, oid), oid)
  test('scalar types round-trip', () => {
    expect(round('42', OID.int4)).toBe('42')
    expect(round('-7', OID.int2)).toBe('-7')
    expect(round('9007199254740993', OID.int8)).toBe('9007199254740993')
    expect(round('1.5', OID.float8)).toBe('1.5')
    expect(round('t', OID.bool)).toBe('t')
    expect(round('{"a": 1}', OID.jsonb)).toBe('{"a": 1}')
    expect(round('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', OID.uuid)).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
    expect(round('1961-03-17', OID.date)).toBe('1961-03-17')
    expect(round('2024-05-07 12:34:56.789', OID.timestamp)).toBe('2024-05-07 12:34:56.789000')
    expect(round('2024-05-07 12:34:56.5+02', OID.timestamptz)).toBe('2024-05-07 10:34:56.500000+00')
  })
  test('bytea text is hex; types without an encoder are refused, never guessed', () => {
    expect(encodeBinary('\\x00ff', OID.bytea)).toEqual(Buffer.from([0, 255]))
    expect(binaryEncodable(OID.numeric)).toBe(false)
    expect(binaryEncodable(1009)).toBe(false)
    expect(() => decodeBinaryParam(Buffer.alloc(4), OID.numeric)).toThrow(/send the parameter in text format/)
  })
})

test('SELECT tags count the rows of the Execute that finished the portal', () => {
  expect(completionTag('SELECT 0', 100)).toBe('SELECT 100')
  expect(completionTag('INSERT 0 3', 0)).toBe('INSERT 0 3')
  expect(completionTag(undefined, 5)).toBe('SELECT 5')
})
