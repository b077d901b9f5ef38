import { describe, expect, it } from 'vitest'
import { columnsOf, decodeRows, encodeRows } from '../../src/warehouses/bigquery/codec.js'
import { isoToMicros, microsToIso, microsToSeconds, secondsToMicros, wireTimestampToMicros } from '../../src/warehouses/bigquery/timestamps.js'
import type { TableFieldSchema, TableRow } from '../../src/warehouses/bigquery/wire.js'

const fields: TableFieldSchema[] = [
  { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
  { name: 'email', type: 'STRING' },
  { name: 'created', type: 'TIMESTAMP' },
  { name: 'address', type: 'RECORD', fields: [{ name: 'city', type: 'STRING' }, { name: 'ssn', type: 'STRING' }] },
  { name: 'phones', type: 'STRING', mode: 'REPEATED' },
  {
    name: 'cards',
    type: 'RECORD',
    mode: 'REPEATED',
    fields: [{ name: 'number', type: 'STRING' }, { name: 'exp', type: 'DATE' }, { name: 'seen', type: 'TIMESTAMP', mode: 'REPEATED' }]
  },
  { name: 'score', type: 'FLOAT' },
  { name: 'active', type: 'BOOLEAN' },
  { name: 'blob', type: 'BYTES' },
  { name: 'amount', type: 'NUMERIC' }
]

const wireRows: TableRow[] = [
  {
    f: [
      { v: '1' }, { v: 'alice@example.com' }, { v: '1704164645123456' },
      { v: { f: [{ v: 'Paris' }, { v: '123-45-6789' }] } },
      { v: [{ v: '+33 1' }, { v: '+33 2' }] },
      { v: [{ v: { f: [{ v: '4111111111111111' }, { v: '2027-01-01' }, { v: [{ v: '0' }, { v: '1704164645123456' }] }] } }] },
      { v: '1.5' }, { v: 'true' }, { v: 'aGVsbG8=' }, { v: '12.340000000' }
    ]
  },
  { f: [{ v: '2' }, { v: null }, { v: null }, { v: null }, { v: [] }, { v: [] }, { v: 'NaN' }, { v: null }, { v: null }, { v: null }] }
]

describe('bigquery f/v codec', () => {
  it('maps the schema, nested fields and modes to neutral columns', () => {
    const columns = columnsOf(fields)
    expect(columns[0]).toEqual({ name: 'id', type: 'INTEGER', mode: 'REQUIRED', nullable: false })
    expect(columns[3]?.fields?.map((c) => c.name)).toEqual(['city', 'ssn'])
    expect(columns[5]?.mode).toBe('REPEATED')
    expect(columns[5]?.fields?.[2]?.mode).toBe('REPEATED')
  })

  it('decodes RECORD, REPEATED, repeated RECORD and NULL into plain values', () => {
    const [first, second] = decodeRows(fields, wireRows, { int64Timestamps: true })
    expect(first).toEqual([
      '1', 'alice@example.com', '2024-01-02T03:04:05.123456Z',
      { city: 'Paris', ssn: '123-45-6789' },
      ['+33 1', '+33 2'],
      [{ number: '4111111111111111', exp: '2027-01-01', seen: ['1970-01-01T00:00:00.000000Z', '2024-01-02T03:04:05.123456Z'] }],
      1.5, true, Buffer.from('hello'), '12.340000000'
    ])
    expect(second?.slice(0, 6)).toEqual(['2', null, null, null, [], []])
    expect(Number.isNaN(second?.[6])).toBe(true)
  })

  it('round-trips every row unchanged in both timestamp forms', () => {
    const neutral = decodeRows(fields, wireRows, { int64Timestamps: true })
    expect(encodeRows(fields, neutral, { timestamps: 'int64' })).toEqual(wireRows)
    const asFloat = encodeRows(fields, neutral, { timestamps: 'float' })
    expect(asFloat[0]?.f[2]?.v).toBe('1704164645.123456')
    expect(decodeRows(fields, asFloat, { int64Timestamps: false })).toEqual(neutral)
    const asIso = encodeRows(fields, neutral, { timestamps: 'iso' })
    expect(asIso[0]?.f[2]?.v).toBe('2024-01-02T03:04:05.123456Z')
    expect(decodeRows(fields, asIso, { int64Timestamps: true })).toEqual(neutral)
  })

  it('keeps a masked value valid for its declared type', () => {
    const masked = [['***', '***', '***', '***', '***', '***', '***', 'yes', '***', 'n/a']]
    const [row] = encodeRows(fields, masked, { timestamps: 'int64' })
    expect(row?.f.map((c) => c.v)).toEqual([
      '0', // REQUIRED INTEGER → the type's zero value
      '***', // STRING carries the mask
      null, // NULLABLE TIMESTAMP → null
      null, // RECORD that is not an object → null
      [], // REPEATED → an array
      [],
      null, // FLOAT
      null, // BOOLEAN
      Buffer.from('***').toString('base64'), // BYTES carry the mask's bytes
      null // NUMERIC
    ])
  })

  it('keeps masked nested and repeated values valid field by field', () => {
    const masked = [['1', null, null, { city: 'Paris', ssn: null }, ['***', null], [{ number: '****', exp: 'never', seen: 'x' }], null, null, null, null]]
    const [row] = encodeRows(fields, masked, { timestamps: 'int64' })
    expect(row?.f[3]?.v).toEqual({ f: [{ v: 'Paris' }, { v: null }] })
    expect(row?.f[4]?.v).toEqual([{ v: '***' }, { v: '' }])
    expect(row?.f[5]?.v).toEqual([{ v: { f: [{ v: '****' }, { v: null }, { v: [] }] } }])
  })

  it('gives a REQUIRED record and its REQUIRED fields zero values', () => {
    const required: TableFieldSchema[] = [{
      name: 'r',
      type: 'STRUCT',
      mode: 'REQUIRED',
      fields: [{ name: 'n', type: 'INT64', mode: 'REQUIRED' }, { name: 'd', type: 'DATE', mode: 'REQUIRED' }, { name: 'o', type: 'STRING' }, { name: 'l', type: 'STRING', mode: 'REPEATED' }]
    }]
    expect(encodeRows(required, [[null]], { timestamps: 'float' })[0]?.f[0]?.v)
      .toEqual({ f: [{ v: '0' }, { v: '1970-01-01' }, { v: null }, { v: [] }] })
  })
})

describe('bigquery timestamps', () => {
  it('reads float seconds exactly, including scientific notation', () => {
    expect(secondsToMicros('1.704164645123456E9')).toBe(1704164645123456n)
    expect(secondsToMicros('1704164645.123456')).toBe(1704164645123456n)
    expect(secondsToMicros('-1.5')).toBe(-1500000n)
    expect(secondsToMicros('1.4163408E9')).toBe(1416340800000000n)
  })

  it('reads int64 microseconds only when they were asked for', () => {
    expect(wireTimestampToMicros('1704164645123456', true)).toBe(1704164645123456n)
    expect(wireTimestampToMicros('1704164645', false)).toBe(1704164645000000n)
  })

  it('reads ISO and canonical text forms', () => {
    expect(isoToMicros('2024-01-02 03:04:05.123456 UTC')).toBe(1704164645123456n)
    expect(isoToMicros('2024-01-02T05:04:05.123456+02:00')).toBe(1704164645123456n)
    expect(isoToMicros('0001-01-01T00:00:00Z')).toBe(-62135596800000000n)
    expect(isoToMicros('2024-02-30T00:00:00Z')).toBeUndefined()
  })

  it('writes both wire forms from the neutral form, before 1970 too', () => {
    expect(microsToIso(-1n)).toBe('1969-12-31T23:59:59.999999Z')
    expect(microsToSeconds(-1500000n)).toBe('-1.5')
    expect(microsToSeconds(1704164645000000n)).toBe('1704164645')
  })
})
