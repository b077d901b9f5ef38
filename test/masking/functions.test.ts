// Each mask function, and type preservation per warehouse type: a masked value must still be
// a valid value of its column's type in that warehouse's neutral representation (Snowflake:
// rowset text; BigQuery: text / number / boolean / Buffer / object / array; Postgres: text or JS).
import { describe, expect, test } from 'vitest'
import { compileMask, type MaskFunctionName } from '../../src/masking/functions.js'
import { classOf, defaultValue, type WarehouseKind } from '../../src/masking/types.js'
import type { ColumnMeta } from '../../src/pipeline/types.js'

const secrets = { salt: 'salt-of-connection-a', tokenKey: 'token-key-0123456789' }
const mask = (fn: MaskFunctionName, column: Partial<ColumnMeta> & { type: string }, value: unknown, kind?: WarehouseKind, options = {}): unknown =>
  compileMask({ fn, column: { name: 'c', ...column }, kind, secrets, options })(value)

describe('string functions', () => {
  test('redact, nullify, default', () => {
    expect(mask('redact', { type: 'STRING' }, 'alice')).toBe('****')
    expect(mask('redact', { type: 'STRING' }, 'alice', 'bigquery', { replacement: '[hidden]' })).toBe('[hidden]')
    expect(mask('nullify', { type: 'STRING' }, 'alice')).toBeNull()
    expect(mask('default', { type: 'STRING' }, 'alice')).toBe('')
  })

  test('last4 / first4 follow BigQuery: XXXXX + four characters, short values hashed', () => {
    expect(mask('last4', { type: 'STRING' }, '4111-1111-1111-1234')).toBe('XXXXX1234')
    expect(mask('first4', { type: 'STRING' }, '4111-1111-1111-1234')).toBe('4111XXXXX')
    const short = mask('last4', { type: 'STRING' }, 'abc')
    expect(short).toMatch(/^[0-9a-f]{64}$/)
  })

  test('email keeps the domain; a non-email is hashed', () => {
    expect(mask('email', { type: 'STRING' }, 'alice.smith@example.co.uk')).toBe('XXXXX@example.co.uk')
    expect(mask('email', { type: 'STRING' }, 'not an email')).toMatch(/^[0-9a-f]{64}$/)
  })

  test('partial keeps the configured ends and hides everything when keep covers the value', () => {
    expect(mask('partial', { type: 'STRING' }, '123-45-6789', 'postgres', { keep: { first: 0, last: 4 } })).toBe('*******6789')
    expect(mask('partial', { type: 'STRING' }, 'Alexandra', 'postgres', { keep: { first: 1, last: 1 }, fill: '#' })).toBe('A#######a')
    expect(mask('partial', { type: 'STRING' }, 'abc', 'postgres', { keep: { first: 2, last: 2 } })).toBe('***')
  })

  test('sha256 is salted per connection; token is keyed and stable across calls', () => {
    const a = mask('sha256', { type: 'STRING' }, 'alice')
    const b = compileMask({ fn: 'sha256', column: { name: 'c', type: 'STRING' }, secrets: { ...secrets, salt: 'salt-of-connection-b' } })('alice')
    expect(a).toMatch(/^[0-9a-f]{64}$/)
    expect(a).not.toBe(b)
    const t1 = mask('token', { type: 'STRING' }, 'alice@example.com')
    const t2 = mask('token', { type: 'STRING' }, 'alice@example.com')
    expect(t1).toBe(t2)
    expect(t1).toMatch(/^tok_[0-9a-f]{32}$/)
    expect(mask('token', { type: 'STRING' }, 'bob@example.com')).not.toBe(t1)
  })
})

describe('type preservation: Snowflake (rowset text)', () => {
  const sf = (fn: MaskFunctionName, type: string, v: unknown, nullable = true): unknown => mask(fn, { type, nullable }, v, 'snowflake')
  test('FIXED / REAL stay numeric text', () => {
    for (const fn of ['redact', 'default', 'sha256', 'token', 'last4', 'partial'] as const) {
      expect(String(sf(fn, 'FIXED', '123456789'))).toMatch(/^\d+$/)
    }
    expect(sf('last4', 'FIXED', '4111111111111234')).toBe('1234')
    expect(sf('redact', 'REAL', '3.25')).toBe('0')
  })
  test('DATE is days since the epoch; year keeps it a date', () => {
    // 19723 = 2024-01-01; 19850 = 2024-05-07
    expect(sf('year', 'DATE', '19850')).toBe('19723')
    expect(sf('default', 'DATE', '19850')).toBe('0')
    expect(String(sf('token', 'DATE', '19850'))).toMatch(/^\d+$/)
  })
  test('TIMESTAMP_* keep "seconds.fraction[ offset]"', () => {
    expect(sf('year', 'TIMESTAMP_NTZ', '1715040000.123000000')).toBe('1704067200.000000000')
    expect(sf('year', 'TIMESTAMP_TZ', '1715040000.123000000 1560')).toBe('1704067200.000000000 1560')
    expect(sf('default', 'TIMESTAMP_LTZ', '1715040000.123000000')).toBe('0.000000000')
    expect(String(sf('sha256', 'TIMESTAMP_NTZ', '1715040000.1'))).toMatch(/^\d+\.000000000$/)
  })
  test('TEXT, BOOLEAN, BINARY', () => {
    expect(sf('redact', 'TEXT', 'x')).toBe('****')
    expect(sf('redact', 'BOOLEAN', '1')).toBe('0')
    expect(['0', '1']).toContain(sf('token', 'BOOLEAN', '1'))
    expect(sf('sha256', 'BINARY', 'DEADBEEF')).toMatch(/^[0-9A-F]{64}$/)
  })
  test('VARIANT / OBJECT / ARRAY: JSON text with every leaf masked, shape kept', () => {
    const out = JSON.parse(String(sf('redact', 'VARIANT', '{"email":"a@b.c","age":42,"tags":["x"],"ok":true}')))
    expect(out).toEqual({ email: '****', age: 0, tags: ['****'], ok: false })
    expect(sf('nullify', 'OBJECT', '{"a":1}')).toBeNull()
    expect(sf('nullify', 'OBJECT', '{"a":1}', false)).toBe('null')
    expect(JSON.parse(String(sf('token', 'ARRAY', '["a","b"]')))).toHaveLength(2)
  })
  test('a REQUIRED (not nullable) column never becomes NULL', () => {
    expect(sf('nullify', 'FIXED', '12', false)).toBe('0')
    expect(sf('nullify', 'TEXT', 'x', false)).toBe('')
    expect(sf('nullify', 'DATE', '19850', false)).toBe('0')
  })
})

describe('type preservation: BigQuery', () => {
  const bq = (fn: MaskFunctionName, column: Partial<ColumnMeta> & { type: string }, v: unknown): unknown => mask(fn, column, v, 'bigquery')
  test('INT64 / NUMERIC as text, FLOAT64 number, BOOL boolean, BYTES Buffer', () => {
    expect(bq('redact', { type: 'INT64' }, '42')).toBe('0')
    expect(bq('token', { type: 'INT64' }, '42')).toMatch(/^\d+$/)
    expect(bq('sha256', { type: 'NUMERIC' }, '12.50')).toMatch(/^\d+$/)
    expect(typeof bq('token', { type: 'FLOAT64' }, 1.5)).toBe('number')
    expect(typeof bq('token', { type: 'BOOL' }, true)).toBe('boolean')
    expect(bq('default', { type: 'BOOL' }, true)).toBe(false)
    const bytes = bq('sha256', { type: 'BYTES' }, Buffer.from('secret'))
    expect(Buffer.isBuffer(bytes)).toBe(true)
    expect((bytes as Buffer).length).toBe(32)
    expect(bq('default', { type: 'BYTES' }, Buffer.from('x'))).toEqual(Buffer.alloc(0))
  })
  test('DATE, DATETIME, TIMESTAMP keep their text layout; year truncates', () => {
    expect(bq('year', { type: 'DATE' }, '2024-05-07')).toBe('2024-01-01')
    expect(bq('year', { type: 'DATETIME' }, '2024-05-07T12:34:56.789')).toBe('2024-01-01T00:00:00.000')
    expect(bq('year', { type: 'TIMESTAMP' }, '2024-05-07T12:34:56.123456Z')).toBe('2024-01-01T00:00:00.000000Z')
    expect(bq('default', { type: 'DATE' }, '2024-05-07')).toBe('1970-01-01')
    expect(bq('default', { type: 'TIMESTAMP' }, '2024-05-07T12:34:56.123456Z')).toBe('1970-01-01T00:00:00.000000Z')
    expect(bq('token', { type: 'DATE' }, '2024-05-07')).toMatch(/^\d{4}-\d\d-\d\d$/)
    expect(bq('token', { type: 'TIMESTAMP' }, '2024-05-07T12:34:56.123456Z')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$/)
  })
  test('RECORD masks each field by its own type; REQUIRED fields get defaults', () => {
    const column: ColumnMeta = {
      name: 'address', type: 'RECORD', fields: [
        { name: 'street', type: 'STRING' }, { name: 'zip', type: 'INT64', mode: 'REQUIRED' }, { name: 'since', type: 'DATE' }
      ]
    }
    expect(bq('redact', column, { street: '1 Main St', zip: '75001', since: '2020-02-03' })).toEqual({ street: '****', zip: '0', since: '1970-01-01' })
    expect(bq('nullify', column, { street: 'x', zip: '1', since: null })).toBeNull()
    expect(bq('nullify', { ...column, mode: 'REQUIRED' }, { street: 'x', zip: '1', since: null })).toEqual({ street: null, zip: '0', since: null })
  })
  test('REPEATED stays an array, nullify gives [] not NULL', () => {
    expect(bq('redact', { type: 'STRING', mode: 'REPEATED' }, ['a', 'b'])).toEqual(['****', '****'])
    expect(bq('nullify', { type: 'STRING', mode: 'REPEATED' }, ['a', 'b'])).toEqual(['', ''])
    expect(bq('redact', { type: 'STRING', mode: 'REPEATED' }, null)).toEqual([])
    const cards: ColumnMeta = { name: 'cards', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'holder', type: 'STRING' }, { name: 'number', type: 'STRING' }] }
    expect(bq('last4', cards, [{ holder: 'Ann Lee', number: '4111111111111234' }])).toEqual([{ holder: 'XXXXX Lee', number: 'XXXXX1234' }])
  })
  test('GEOGRAPHY, JSON, INTERVAL defaults', () => {
    expect(bq('default', { type: 'GEOGRAPHY' }, 'POINT(1 2)')).toBe('POINT(0 0)')
    expect(bq('default', { type: 'JSON' }, '{"a":1}')).toBe('null')
    expect(defaultValue('interval', 'bigquery')).toBe('0-0 0 0:0:0')
  })
})

describe('type preservation: Postgres', () => {
  const pg = (fn: MaskFunctionName, type: string, v: unknown): unknown => mask(fn, { type }, v, 'postgres')
  test('int4 / int8 / numeric keep their JS type', () => {
    expect(pg('redact', 'int4', 42)).toBe(0)
    expect(typeof pg('token', 'int8', 42n)).toBe('bigint')
    expect(pg('token', 'int8', '9007199254740993')).toMatch(/^\d+$/)
    expect(pg('last4', 'numeric', '4111111111111234')).toBe('1234')
  })
  test('date / timestamptz / text / bool / jsonb / arrays', () => {
    expect(pg('year', 'date', '2024-05-07')).toBe('2024-01-01')
    expect(pg('year', 'timestamptz', '2024-05-07 12:34:56.789+02')).toBe('2024-01-01 00:00:00.000+02')
    expect(pg('default', 'timestamptz', '2024-05-07 12:34:56+02')).toBe('1970-01-01 00:00:00+00')
    expect(pg('year', 'timestamptz', new Date('2024-05-07T12:00:00Z'))).toEqual(new Date('2024-01-01T00:00:00Z'))
    expect(pg('redact', 'text', 'x')).toBe('****')
    expect(pg('redact', 'bool', true)).toBe(false)
    expect(pg('redact', 'bool', 't')).toBe('f')
    expect(JSON.parse(String(pg('redact', 'jsonb', '{"a":"b"}')))).toEqual({ a: '****' })
    expect(pg('redact', '_text', ['a', 'b'])).toEqual(['****', '****'])
    expect(pg('redact', 'int4[]', [1, 2])).toEqual([0, 0])
  })
  test('classOf reads Postgres spellings', () => {
    expect(classOf({ type: 'timestamp with time zone' }, 'postgres')).toBe('timestamp')
    expect(classOf({ type: 'character varying(20)' }, 'postgres')).toBe('string')
    expect(classOf({ type: 'TIMESTAMP' }, 'bigquery')).toBe('timestamp')
    expect(classOf({ type: 'TIMESTAMP' }, 'postgres')).toBe('datetime')
  })
})

test('NULL stays NULL in a nullable column, for every function', () => {
  for (const fn of ['redact', 'nullify', 'default', 'sha256', 'token', 'last4', 'first4', 'email', 'year', 'partial'] as const) {
    expect(mask(fn, { type: 'STRING' }, null)).toBeNull()
  }
})
