// The Arrow Sluice serves is laid out as Snowflake lays out its own results, down to the IPC
// buffer lengths (connector 3.x's nanoarrow reads a padded offsets buffer as one offset too
// many). What the drivers make of it end to end is in python-arrow.test.ts; these pin the
// layout itself.
import { MessageHeader, MessageReader, tableFromIPC, Type, type RecordBatch } from 'apache-arrow'
import { describe, expect, it } from 'vitest'
import { arrowFromRows } from '../../src/warehouses/snowflake/arrow-encode.js'
import { rowsFromArrow } from '../../src/warehouses/snowflake/arrow.js'
import type { RowTypeEntry } from '../../src/warehouses/snowflake/query-data.js'

/** The buffer lengths the record batch message declares, in order. */
function declaredBufferLengths (ipc: Uint8Array): number[] {
  const reader = new MessageReader(ipc)
  for (let message = reader.readMessage(); message !== null; message = reader.readMessage()) {
    if (message.headerType === MessageHeader.RecordBatch) {
      return (message.header() as unknown as RecordBatch & { buffers: Array<{ length: number }> }).buffers.map((b) => Number(b.length))
    }
    if (message.bodyLength > 0) reader.readMessageBody(message.bodyLength)
  }
  throw new Error('no record batch')
}

describe('Arrow in Snowflake\'s layout', () => {
  it('declares each buffer at its own length, not rounded up to 8 bytes (connector 3.x reads the offsets by it)', () => {
    // Two text rows: 3 offsets (12 bytes) and 4 data bytes; the writer pads both to 8 in the body.
    const ipc = arrowFromRows([{ name: 'NAME', type: 'text', length: 100 }], [['ab'], ['cd']])!
    expect(declaredBufferLengths(ipc)).toEqual([0, 12, 4])
    const four = arrowFromRows([{ name: 'NAME', type: 'text' }], [['a'], ['bb'], [null], ['dddd']])!
    // validity (1 byte), 5 offsets (20 bytes), 7 data bytes
    expect(declaredBufferLengths(four)).toEqual([1, 20, 7])
    expect(rowsFromArrow(four, [{ name: 'NAME', type: 'text' }])).toEqual([['a'], ['bb'], [null], ['dddd']])
    // BOOLEAN values are a bitmap; a struct has only its validity, its children their own buffers.
    const mixed = arrowFromRows([{ name: 'B', type: 'boolean' }, { name: 'TS', type: 'timestamp_ntz', scale: 9 }, { name: 'N', type: 'fixed', scale: 0 }],
      [['1', '1.000000001', '1'], ['0', null, '2'], [null, '-1.5', '3']])!
    expect(declaredBufferLengths(mixed)).toEqual([1, 1, 1, 0, 24, 0, 12, 0, 3])
  })

  it('writes NUMBER in the narrowest integer that holds the batch, Decimal128 past 64 bits, with the scale in the metadata', () => {
    const rowtype: RowTypeEntry[] = [
      { name: 'TINY', type: 'fixed', scale: 0, precision: 38 },
      { name: 'SMALL', type: 'fixed', scale: 2, precision: 10 },
      { name: 'INT', type: 'fixed', scale: 0, precision: 38 },
      { name: 'BIG', type: 'fixed', scale: 0, precision: 38 },
      { name: 'HUGE', type: 'fixed', scale: 0, precision: 38 }
    ]
    const rows = [['1', '10.50', '100000', '9000000000', '99999999999999999999'], ['-2', '-1.25', null, '-1', '-5']]
    const table = tableFromIPC(arrowFromRows(rowtype, rows)!)
    expect(table.schema.fields.map((f) => String(f.type))).toEqual(['Int8', 'Int16', 'Int32', 'Int64', 'Decimal[38e0]'])
    expect(table.schema.fields.map((f) => f.metadata.get('physicalType'))).toEqual(['SB1', 'SB2', 'SB4', 'SB8', 'SB16'])
    expect(table.schema.fields[1]?.metadata.get('scale')).toBe('2')
    expect(rowsFromArrow(arrowFromRows(rowtype, rows)!, rowtype)).toEqual(rows)
  })

  it('lays out a result served in several pieces by its declaration, so every piece has one schema', () => {
    // The Python connector's core reads the inline rowset and every chunk as one Arrow stream
    // with the first piece's schema: a chunk in Int32 after an Int16 inline rowset is misread.
    const rowtype: RowTypeEntry[] = [
      { name: 'TINY', type: 'fixed', scale: 0, precision: 2 },
      { name: 'SMALL', type: 'fixed', scale: 2, precision: 4 },
      { name: 'MID', type: 'fixed', scale: 0, precision: 9 },
      { name: 'ID', type: 'fixed', scale: 0, precision: 38 },
      { name: 'N', type: 'fixed', scale: 0 }
    ]
    const first = [['1', '1.00', '1', '1', '1']]
    const later = [['-99', '99.99', '999999999', '40000', '9223372036854775807'], [null, null, null, null, null]]
    const layout = (rows: Array<Array<string | null>>): string[] =>
      tableFromIPC(arrowFromRows(rowtype, rows, { stableWidths: true })!).schema.fields.map((f) => `${String(f.type)} ${f.metadata.get('physicalType')}`)
    expect(layout(first)).toEqual(['Int8 SB1', 'Int16 SB2', 'Int32 SB4', 'Int64 SB8', 'Int64 SB8'])
    expect(layout(later)).toEqual(layout(first))
    expect(rowsFromArrow(arrowFromRows(rowtype, later, { stableWidths: true })!, rowtype)).toEqual(later)
    // A value past 64 bits, or past the width its declaration promised, has no place in that
    // schema: not encoded.
    expect(arrowFromRows(rowtype, [['1', '1.00', '1', '9223372036854775808', '1']], { stableWidths: true })).toBeUndefined()
    expect(arrowFromRows(rowtype, [['200', '1.00', '1', '1', '1']], { stableWidths: true })).toBeUndefined()
  })

  it('writes DATE as date32, TIME by scale, timestamps as scaled int64 or Snowflake\'s structs, with Snowflake\'s field metadata', () => {
    const rowtype: RowTypeEntry[] = [
      { name: 'D', type: 'date' },
      { name: 'T3', type: 'time', scale: 3 },
      { name: 'T9', type: 'time', scale: 9 },
      { name: 'NTZ3', type: 'timestamp_ntz', scale: 3 },
      { name: 'NTZ9', type: 'timestamp_ntz', scale: 9 },
      { name: 'LTZ', type: 'timestamp_ltz' },
      { name: 'TZ3', type: 'timestamp_tz', scale: 3 },
      { name: 'TZ9', type: 'timestamp_tz', scale: 9 },
      { name: 'B', type: 'boolean' },
      { name: 'R', type: 'real' },
      { name: 'RAW', type: 'binary', length: 8, byteLength: 8 },
      { name: 'V', type: 'variant' }
    ]
    const rows = [['19724', '45296.123', '45296.123456789', '1704103200.123', '1704103200.123456789', '-0.500000000', '1704096000.123 1500', '1704096000.000000001 1560', '1', '1.5', 'ABCD', '{"a":[1,2]}']]
    const ipc = arrowFromRows(rowtype, rows)!
    const fields = tableFromIPC(ipc).schema.fields
    expect(fields.map((f) => String(f.type))).toEqual([
      'Date32<DAY>', 'Int32', 'Int64', 'Int64', 'Struct<{epoch:Int64, fraction:Int32}>', 'Struct<{epoch:Int64, fraction:Int32}>',
      'Struct<{epoch:Int64, timezone:Int32}>', 'Struct<{epoch:Int64, fraction:Int32, timezone:Int32}>', 'Bool', 'Float64', 'Binary', 'Utf8'
    ])
    expect(fields[0]?.type.typeId).toBe(Type.Date)
    // A rowtype without a scale (fakesnow's timestamps) gets Snowflake's default, 9.
    expect(fields[5]?.metadata.get('scale')).toBe('9')
    expect(fields[6]?.metadata.get('byteLength')).toBe('8')
    expect(fields[7]?.metadata.get('byteLength')).toBe('16')
    expect([...(fields[10]?.metadata.keys() ?? [])].sort()).toEqual(['byteLength', 'charLength', 'finalType', 'logicalType', 'precision', 'scale'])
    expect(fields.map((f) => f.metadata.get('logicalType'))).toEqual(rowtype.map((r) => r.type.toUpperCase()))
    expect(rowsFromArrow(ipc, rowtype)).toEqual(rows)
  })

  it('falls back to JSON for a type it does not lay out rather than guess', () => {
    expect(arrowFromRows([{ name: 'M', type: 'map' }], [['{}']])).toBeUndefined()
    expect(arrowFromRows([{ name: 'D', type: 'date' }], [['2024-01-02']])).toBeUndefined()
  })
})
