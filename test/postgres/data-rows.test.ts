// DataRow chunks (src/frontends/postgres/data-rows.ts) read back by pg-protocol's own parser,
// the one node-postgres uses: generated rows of every value shape (NULL, empty, ASCII,
// multi-byte UTF-8, binary bytes, values larger than a chunk) across many chunk boundaries
// decode to exactly what was added, in order.
import { PassThrough } from 'node:stream'
import { parse } from 'pg-protocol'
import { expect, test } from 'vitest'
import { DataRowChunks, type WireValue } from '../../src/frontends/postgres/data-rows.js'

const SHAPES: Array<(n: number) => WireValue> = [
  () => null,
  () => '',
  (n) => `row-${n}`,
  (n) => 'ü€😀'.repeat(n % 7),
  (n) => Buffer.from([n & 0xff, 0, 0xff, (n >> 8) & 0xff]),
  (n) => n % 97 === 0 ? 'x'.repeat(70_000 + n) : 'y'
]

function rowOf (n: number, columns: number): WireValue[] {
  return Array.from({ length: columns }, (_, c) => (SHAPES[(n + c) % SHAPES.length] as (n: number) => WireValue)(n))
}

const asText = (v: WireValue): string | null => v === null ? null : typeof v === 'string' ? v : v.toString('utf8')

async function decode (buffers: Buffer[]): Promise<Array<Array<string | null>>> {
  const stream = new PassThrough()
  const rows: Array<Array<string | null>> = []
  const done = parse(stream, (msg) => {
    expect(msg.name).toBe('dataRow')
    rows.push((msg as unknown as { fields: Array<string | null> }).fields)
  })
  for (const b of buffers) stream.write(b)
  stream.end()
  await done
  return rows
}

for (const columns of [1, 3, 6, 17]) {
  test(`${columns} column(s): every row decodes as added, across chunk boundaries`, async () => {
    const chunks = new DataRowChunks()
    const out: Buffer[] = []
    const copies: Buffer[] = []
    const keep = (b: Buffer): void => { out.push(b); copies.push(Buffer.from(b)) }
    const added: WireValue[][] = []
    for (let n = 0; n < 3000; n++) {
      const row = rowOf(n, columns)
      chunks.add(row)
      added.push(row)
      // Taken at irregular points, as the sender flushes by size.
      if (chunks.bytes >= 60 * 1024 || n % 251 === 0) keep(chunks.take() as Buffer)
    }
    const last = chunks.take()
    if (last !== undefined) keep(last)
    expect(chunks.take()).toBeUndefined()
    // A buffer handed over (the socket may still hold it) is never written again by later rows.
    expect(out.every((b, i) => b.equals(copies[i] as Buffer))).toBe(true)
    const decoded = await decode(out)
    expect(decoded).toEqual(added.map((r) => r.map(asText)))
  })
}
