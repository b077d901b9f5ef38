// An Arrow IPC stream written the way Snowflake writes its own results: each buffer's length in
// the record batch metadata is the length of its contents (offsets (n+1)×4, bitmaps ⌈n/8⌉ bytes,
// values n×width), with padding only between buffers. The apache-arrow writer records every
// length rounded up to 8 bytes; newer readers shrug that off, but the nanoarrow inside
// snowflake-connector-python 3.x reads an offsets buffer of 16 bytes (3 offsets + padding, a
// 2-row text column) as 4 offsets and fails to open the stream ("Expected element size >= 0").
// Only the declared lengths change; the body bytes and every offset stay as the writer laid
// them out.
import { RecordBatch, RecordBatchStreamWriter, Table, Type, type Field, type Schema, type Vector } from 'apache-arrow'
import { BufferRegion, type FieldNode } from 'apache-arrow/ipc/metadata/message'

/** How many buffers follow a field's validity bitmap, for the types Sluice writes. */
function valueBuffers (field: Field): number {
  switch (field.type.typeId) {
    case Type.Struct: return 0
    case Type.Utf8: case Type.Binary: return 2
    default: return 1
  }
}

/**
 * The exact length of every buffer, walking fields, nodes and buffers in the writer's order
 * (depth first: a node per field, its validity bitmap, then its own buffers, then children).
 */
function exactLengths (fields: readonly Field[], nodes: readonly FieldNode[], buffers: readonly ArrayBufferView[]): number[] {
  const lengths = buffers.map((b) => b.byteLength)
  let n = 0
  let b = 0
  const bitmap = (rows: number, i: number): void => { if ((lengths[i] ?? 0) > 0) lengths[i] = Math.ceil(rows / 8) }
  const visit = (field: Field): void => {
    const rows = Number(nodes[n++]?.length ?? 0)
    bitmap(rows, b++)
    // Bool values are a bitmap too, padded like the validity one.
    if (field.type.typeId === Type.Bool) bitmap(rows, b)
    b += valueBuffers(field)
    for (const child of field.type.children ?? []) visit(child)
  }
  for (const field of fields) visit(field)
  return lengths
}

class ExactLengthWriter extends RecordBatchStreamWriter {
  protected override _assembleRecordBatch (batch: RecordBatch | Vector): ReturnType<RecordBatchStreamWriter['_assembleRecordBatch']> {
    const assembled = super._assembleRecordBatch(batch)
    if (!(batch instanceof RecordBatch)) return assembled
    const lengths = exactLengths(batch.schema.fields, assembled.nodes, assembled.buffers)
    const bufferRegions = assembled.bufferRegions.map((region, i) => new BufferRegion(region.offset, lengths[i] ?? region.length))
    return { ...assembled, bufferRegions }
  }
}

/** The stream (schema message, one record batch, end marker) for `batch`. */
export function ipcStream (schema: Schema, batch: RecordBatch): Uint8Array {
  // Not the static writeAll: it builds a plain RecordBatchStreamWriter, not this class.
  const writer = new ExactLengthWriter()
  writer.write(new Table(schema, batch))
  writer.finish()
  return writer.toUint8Array(true)
}
