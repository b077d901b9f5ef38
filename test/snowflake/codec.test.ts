// Wire codecs and small pure parts of the Snowflake front ends: Arrow (Snowflake's own layout,
// per the Python connector's ArrowIterator) and JSON rowsets to neutral rows, the leading
// keyword of a statement, connection settings validation and routing.
import { describe, expect, it } from 'vitest'
import type { ConnectionConfig } from '../../src/config/types.js'
import { rowsFromArrow, scaled } from '../../src/warehouses/snowflake/arrow.js'
import { arrowFromRows, unscaled } from '../../src/warehouses/snowflake/arrow-encode.js'
import { selectConnection, snowflakeSettings } from '../../src/warehouses/snowflake/config.js'
import { rowsFromJsonChunk } from '../../src/warehouses/snowflake/result.js'
import { rowsetFromRows, rowsFromRowset, schemaFromRowtype } from '../../src/warehouses/snowflake/rowset.js'
import { leadingKeyword } from '../../src/warehouses/snowflake/leading-keyword.js'
import { allowedContext } from '../../src/warehouses/snowflake/runtime.js'
import { snowflakeArrow } from '../support/snowflake-arrow.js'

describe('snowflake codecs', () => {
  it('decodes Snowflake-layout Arrow into the JSON rowset text encoding', () => {
    const rowtype = ['ID', 'BALANCE', 'EMAIL', 'SIGNED_UP', 'LAST_SEEN', 'AT_TZ', 'SCALED_TS', 'ACTIVE'].map((name) => ({ name, type: 'text' }))
    expect(rowsFromArrow(snowflakeArrow(), rowtype)).toEqual([
      ['1', '10.50', 'ada@example.com', '19723', '1704103200.123000000', '1704096000.000000000 1560', '1704103200.123', '1'],
      ['2', '-1.50', null, '0', '-0.500000000', '0.000000001 1440', '0.005', '0']
    ])
  })

  it('re-encodes masked rows as Snowflake-layout Arrow that decodes to the same text', () => {
    const rowtype = [
      { name: 'ID', type: 'fixed', scale: 0, precision: 38 },
      { name: 'BALANCE', type: 'fixed', scale: 2, precision: 10 },
      { name: 'EMAIL', type: 'text', length: 100 },
      { name: 'RATE', type: 'real' },
      { name: 'SIGNED_UP', type: 'date' },
      { name: 'AT', type: 'time', scale: 9 },
      { name: 'LAST_SEEN', type: 'timestamp_ntz', scale: 9 },
      { name: 'SEEN_MS', type: 'timestamp_ltz', scale: 3 },
      { name: 'AT_TZ', type: 'timestamp_tz', scale: 9 },
      { name: 'ACTIVE', type: 'boolean' },
      { name: 'RAW', type: 'binary' },
      { name: 'DOC', type: 'variant' }
    ]
    const rows = [
      ['1', '10.50', '****', '1.5', '19723', '45296.000000000', '1704103200.123000000', '1704103200.123', '1704096000.000000000 1560', '1', 'ABCD', '{"a":1}'],
      ['2', '-1.50', null, null, '0', '0.000000001', '-0.500000000', '-1.500', '0.000000001 1440', '0', null, null]
    ]
    const ipc = arrowFromRows(rowtype, rows)
    expect(ipc).toBeDefined()
    expect(rowsFromArrow(ipc!, rowtype)).toEqual(rows)
  })

  it('falls back (undefined) when a masked value no longer fits its column type', () => {
    expect(arrowFromRows([{ name: 'SSN', type: 'fixed', scale: 0 }], [['***-**-6789']])).toBeUndefined()
    // Past 64 bits is Decimal128, as from Snowflake; past 38 digits nothing holds it.
    expect(arrowFromRows([{ name: 'N', type: 'fixed', scale: 0 }], [['1'.repeat(39)]])).toBeUndefined()
    expect(unscaled('12.5', 2)).toBe(1250n)
    expect(unscaled('-0.05', 3)).toBe(-50n)
  })

  it('reads an empty rowsetBase64 as no rows', () => {
    expect(rowsFromArrow(new Uint8Array(0), [])).toEqual([])
  })

  it('scales integers exactly, signs and leading zeros included', () => {
    expect(scaled(5n, 3)).toBe('0.005')
    expect(scaled(-150n, 2)).toBe('-1.50')
    expect(scaled(12345678901234567890n, 0)).toBe('12345678901234567890')
  })

  it('round-trips JSON rowsets and chunk bodies', () => {
    const rowset = [['1', 'a@example.com', null], ['2', 'b', '{"k":1}']]
    expect(rowsetFromRows(rowsFromRowset(rowset))).toEqual(rowset)
    expect(rowsFromJsonChunk(Buffer.from('["3","c",null],["4","d","x"]'))).toEqual([['3', 'c', null], ['4', 'd', 'x']])
    expect(rowsetFromRows([[1, true, { a: 1 }, undefined]])).toEqual([['1', '1', '{"a":1}', null]])
  })

  it('maps a rowtype to the neutral schema with lineage when the warehouse names it', () => {
    const schema = schemaFromRowtype([
      { name: 'EMAIL', type: 'text', nullable: true, database: 'DB', schema: 'S', table: 'CUSTOMERS' },
      { name: 'N', type: 'fixed', nullable: false, database: '', schema: '', table: '' }
    ])
    expect(schema.columns).toEqual([
      { name: 'EMAIL', type: 'TEXT', nullable: true, source: { table: 'DB.S.CUSTOMERS', column: 'EMAIL' } },
      { name: 'N', type: 'FIXED', nullable: false }
    ])
  })
})

describe('leading keyword', () => {
  it('finds the leading keyword past comments', () => {
    expect(leadingKeyword('/* x */ -- y\n put file:///tmp/a @s')).toBe('PUT')
    expect(leadingKeyword('// z\nGET @~/x file:///data')).toBe('GET')
    expect(leadingKeyword('  ')).toBe('')
  })
})

describe('snowflake connection settings and routing', () => {
  const conn = (extra: Record<string, unknown>): ConnectionConfig => ({ kind: 'snowflake', default: false, ...extra })

  it('names the offending key in validation errors', () => {
    expect(() => snowflakeSettings('prod', conn({ account: 'a', user: 'u', password: 'p', pasword: 'typo' })))
      .toThrow(/\/connections\/prod\/pasword is not a Snowflake connection setting/)
    expect(() => snowflakeSettings('prod', conn({ account: 'a', user: 'u' }))).toThrow(/\/connections\/prod needs a credential/)
    expect(() => snowflakeSettings('prod', conn({ user: 'u', password: 'p' }))).toThrow(/\/connections\/prod\/account is required/)
    expect(() => snowflakeSettings('prod', conn({ account: 'a', user: 'u', privateKeyFile: '/nope.pem' }), () => { throw new Error('ENOENT') }))
      .toThrow(/\/connections\/prod\/privateKeyFile cannot be read/)
  })

  it('selects by connection name, alias or account, else the default', () => {
    const prod = snowflakeSettings('prod', conn({ account: 'acme-prod', user: 'u', password: 'p', default: true }))
    const dev = snowflakeSettings('dev', conn({ account: 'acme-dev', user: 'u', password: 'p', aliases: ['sandbox'] }))
    const all = [prod, dev]
    expect(selectConnection(all, 'DEV')?.name).toBe('dev')
    expect(selectConnection(all, 'sandbox')?.name).toBe('dev')
    expect(selectConnection(all, 'acme-dev')?.name).toBe('dev')
    expect(selectConnection(all, undefined)?.name).toBe('prod')
    expect(selectConnection(all, 'whatever')?.name).toBe('prod')
    expect(selectConnection([dev], undefined)?.name).toBe('dev')
    expect(selectConnection([dev, snowflakeSettings('x', conn({ account: 'x', user: 'u', password: 'p' }))], 'other')).toBeUndefined()
  })

  it('keeps a client within the context the connection allows', () => {
    const s = snowflakeSettings('prod', conn({ account: 'a', user: 'u', password: 'p', role: 'ANALYST', warehouse: 'WH', allowedWarehouses: ['WH', 'WH_BIG'] }))
    expect(allowedContext(s, { role: 'analyst', warehouse: 'wh_big', database: 'ANY' })).toEqual({ role: 'analyst', warehouse: 'wh_big', database: 'ANY' })
    expect(allowedContext(s, {})).toEqual({ role: 'ANALYST', warehouse: 'WH' })
    expect(() => allowedContext(s, { role: 'ACCOUNTADMIN' })).toThrow(/role ACCOUNTADMIN is not allowed on connection prod; allowed: ANALYST/)
    expect(() => allowedContext(s, { warehouse: 'HUGE' })).toThrow(/warehouse HUGE is not allowed/)
  })
})
