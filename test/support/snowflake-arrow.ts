// Arrow IPC streams in Snowflake's own result layout (what rowsetBase64 and Arrow result chunks
// carry, per the Python connector's ArrowIterator): FIXED as scaled Int64, DATE as Int32 days,
// TIMESTAMP_* as {epoch, fraction[, timezone]} structs or scaled Int64, with field metadata.
import {
  Bool, Field, Int32, Int64, makeData, RecordBatch, Schema, Struct, Table, tableToIPC, Utf8, vectorFromArray, type DataType
} from 'apache-arrow'

function field (name: string, type: DataType, logicalType: string, scale = 0): Field {
  return new Field(name, type, true, new Map([['logicalType', logicalType], ['scale', String(scale)], ['precision', '38']]))
}

/** Two rows covering the layouts above. */
export function snowflakeArrow (): Uint8Array {
  const tsType = new Struct([new Field('epoch', new Int64(), false), new Field('fraction', new Int32(), false)])
  const tzType = new Struct([new Field('epoch', new Int64(), false), new Field('fraction', new Int32(), false), new Field('timezone', new Int32(), false)])
  const fields = [
    field('ID', new Int64(), 'FIXED'),
    field('BALANCE', new Int64(), 'FIXED', 2),
    field('EMAIL', new Utf8(), 'TEXT'),
    field('SIGNED_UP', new Int32(), 'DATE'),
    field('LAST_SEEN', tsType, 'TIMESTAMP_NTZ', 9),
    field('AT_TZ', tzType, 'TIMESTAMP_TZ', 9),
    field('SCALED_TS', new Int64(), 'TIMESTAMP_LTZ', 3),
    field('ACTIVE', new Bool(), 'BOOLEAN')
  ]
  const vectors = [
    vectorFromArray([1n, 2n], new Int64()),
    vectorFromArray([1050n, -150n], new Int64()),
    vectorFromArray(['ada@example.com', null], new Utf8()),
    vectorFromArray([19723, 0], new Int32()),
    vectorFromArray([{ epoch: 1704103200n, fraction: 123000000 }, { epoch: -1n, fraction: 500000000 }], tsType),
    vectorFromArray([{ epoch: 1704096000n, fraction: 0, timezone: 1560 }, { epoch: 0n, fraction: 1, timezone: 1440 }], tzType),
    vectorFromArray([1704103200123n, 5n], new Int64()),
    vectorFromArray([true, false], new Bool())
  ]
  const schema = new Schema(fields)
  const data = makeData({ type: new Struct(fields), length: 2, nullCount: 0, children: vectors.map((v) => v.data[0]!) })
  return tableToIPC(new Table([new RecordBatch(schema, data)]), 'stream')
}


/** A simple (ID FIXED, EMAIL TEXT) Arrow stream, for inline results and Arrow chunks. */
export function idEmailArrow (rows: Array<[bigint, string | null]>): Uint8Array {
  const fields = [field('ID', new Int64(), 'FIXED'), field('EMAIL', new Utf8(), 'TEXT')]
  const vectors = [vectorFromArray(rows.map((r) => r[0]), new Int64()), vectorFromArray(rows.map((r) => r[1]), new Utf8())]
  const data = makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children: vectors.map((v) => v.data[0]!) })
  return tableToIPC(new Table([new RecordBatch(new Schema(fields), data)]), 'stream')
}
