// A JSON result chunk read a slice at a time gives exactly the rows JSON.parse gives, whatever
// its values hold (quotes, escapes, brackets and commas inside strings, unicode, nested JSON
// values, whitespace), at every slice size; the encoders give the bytes the whole page gave;
// and anything that is not a sequence of rows is refused before any row is handed out.
import { describe, expect, it } from 'vitest'
import { chunkSliceRanges, chunkSlices, rowSlices } from '../../src/warehouses/snowflake/chunk-slices.js'
import { parseSlice } from '../../src/warehouses/json-rows.js'
import { ERR_UPSTREAM_FAILED } from '../../src/errors.js'
import { rowsFromRowset } from '../../src/warehouses/snowflake/rowset.js'
import { chunkEncoder, chunkBody, jsonRowsEncoder } from '../../src/warehouses/snowflake/wire.js'
import { resultSet, resultSetEncoder } from '../../src/warehouses/snowflake/sqlapi-wire.js'
import type { Handle } from '../../src/warehouses/snowflake/handles.js'
import type { StoredResult } from '../../src/warehouses/snowflake/manifest.js'
import { random } from '../support/seeded-random.js'
import { rowsOf, text } from './gen-rows.js'

/** The rows as a chunk body, in one of the shapes upstreams send (spacing varies too). */
function bodyOf (rows: unknown[][], next: () => number): string {
  const space = (): string => (next() < 0.2 ? [' ', '\n', '\r\n', '\t'][Math.floor(next() * 4)] as string : '')
  const wrapped = rows.length > 0 && next() < 0.3
  const joined = rows.map((r, i) => (wrapped && i === 0 ? '' : space()) + JSON.stringify(r, null, next() < 0.1 ? 1 : undefined) + space()).join(',')
  return wrapped ? `${space()}[${joined}]${space()}` : `${space()}${joined}${space()}`
}

/** What the chunk means: the same test rowsFromJsonChunk always made. */
function parsedWhole (body: string): unknown[][] {
  const t = body.trim()
  if (t === '') return []
  return rowsFromRowset(JSON.parse(t.startsWith('[[') || t === '[]' ? t : `[${t}]`) as unknown[][])
}

describe('JSON result chunks read a slice at a time', () => {
  it('give exactly the rows of the whole chunk, for 400 generated chunks at slice sizes from 1 byte up', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const next = random(seed)
      const rows = rowsOf(next)
      const body = bodyOf(rows, next)
      const buffer = Buffer.from(body)
      const expected = parsedWhole(body)
      for (const size of [1, 7, 64, 1024, 1 << 20]) {
        const slices = [...chunkSlices(buffer, 'sf', Infinity, size)]
        expect(slices.flat(), `seed ${seed}, slice ${size}: ${body.slice(0, 200)}`).toEqual(expected)
        // Every slice but the last holds at least `size` bytes: the cut follows the size asked for.
        const ranges = chunkSliceRanges(buffer, 'sf', size)
        for (const [from, to] of ranges.slice(0, -1)) expect(to - from).toBeGreaterThanOrEqual(size)
      }
    }
  })

  it('cut only between rows: each slice parses on its own into whole rows', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => [String(i), `he said "],[" \\ at ${i}`, i % 7 === 0 ? null : '{"a":[1,{"b":"]"}]}'])
    const buffer = Buffer.from(rows.map((r) => JSON.stringify(r)).join(','))
    const ranges = chunkSliceRanges(buffer, 'sf', 4096)
    expect(ranges.length).toBeGreaterThan(10)
    const back = ranges.flatMap((range) => rowsFromRowset(parseSlice(buffer, range) as unknown[][]))
    expect(back).toEqual(rows)
  })

  it('stop at the row limit (a page cut at the row cap)', () => {
    const rows = Array.from({ length: 1000 }, (_, i) => [String(i), 'x'.repeat(i % 50)])
    const buffer = Buffer.from(rows.map((r) => JSON.stringify(r)).join(','))
    for (const limit of [0, 1, 333, 999, 1000, 5000]) {
      const out = [...chunkSlices(buffer, 'sf', limit, 512)].flat()
      expect(out).toEqual(rows.slice(0, limit))
    }
  })

  it('read an empty chunk as no rows', () => {
    for (const body of ['', '  ', '[]', ' [] \n']) expect([...chunkSlices(Buffer.from(body), 'sf')].flat()).toEqual([])
  })

  it('refuse, before handing out any row, whatever is not JSON rows', () => {
    const bad = ['["a"],', '["a"]["b"]', '["a"],,["b"]', '["a", "b"', '["a"],["b', '"a","b"', '["a"]]', 'x', '["a"],x,["b"]', '{"a":1}', ',["a"]']
    for (const body of bad) {
      expect(() => chunkSliceRanges(Buffer.from(body), 'sf', 1), body).toThrow(/not JSON rows/)
    }
    // A token the cut does not read (an unknown literal) fails when its slice is parsed: as the
    // upstream's failure, naming no cell (JSON.parse's message would quote the text), and
    // before any row of that slice is handed on.
    for (const body of ['["a"],[tru]', '[tru],["a"]', '["a"],[1e],["b"]', '["\\x"]']) {
      const out: unknown[][] = []
      const read = (): void => { for (const slice of chunkSlices(Buffer.from(body), 'sf', Infinity, 1)) out.push(...slice) }
      expect(read, body).toThrow(ERR_UPSTREAM_FAILED)
      expect(read, body).toThrow(/not JSON rows: a row that is not JSON$/)
      expect(out.every((row) => row[0] === 'a'), body).toBe(true)
    }
  })

  it('hand rows in memory on in slices of the size asked for', () => {
    const rows = Array.from({ length: 1201 }, (_, i) => [String(i)])
    const slices = [...rowSlices(rows, 500)]
    expect(slices.map((s) => s.length)).toEqual([500, 500, 201])
    expect(slices.flat()).toEqual(rows)
  })
})

describe('page encoders fed slice by slice', () => {
  const rowtype = [{ name: 'ID', type: 'fixed', nullable: false, scale: 0, precision: 38 }, { name: 'T', type: 'text', nullable: true }]
  const result = {
    manifest: { rowtype, total: 0, pages: [{ rows: 0, bytes: 0 }], parameters: [], final: {}, schema: { columns: [] } },
    firstPage: []
  } as unknown as StoredResult
  const handle = { id: '01234567-89ab-cdef-0123-456789abcdef', createdOn: 1700000000000 } as unknown as Handle

  it('give the bytes the whole page gave, however the rows are sliced (300 generated pages)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed)
      const rows = Array.from({ length: Math.floor(next() * 60) }, () => [String(Math.floor(next() * 1e6)), next() < 0.2 ? null : text(next)])
      const size = 1 + Math.floor(next() * 20)
      const whole = chunkBody(rows.map((r) => r.slice()))
      const json = jsonRowsEncoder()
      const chunk = chunkEncoder(result.manifest, undefined)
      for (const slice of rowSlices(rows, size)) { json.add(slice.map((r) => r.slice())); chunk.add(slice.map((r) => r.slice())) }
      expect(json.end().toString(), `seed ${seed}`).toBe(whole)
      expect(chunk.end()).toEqual({ body: Buffer.from(whole), arrow: false })

      for (const nullAsText of [false, true]) {
        const p = { statusUrl: 'https://sluice.example/api/v2/statements/x', nullAsText }
        for (const partition of [0, 1]) {
          const expected = JSON.stringify(resultSet(handle, result, p, partition, rows.map((r) => r.slice())))
          const encoder = resultSetEncoder(handle, result, p, partition)
          for (const slice of rowSlices(rows, size)) encoder.add(slice.map((r) => r.slice()))
          const body = encoder.end().toString()
          expect(body, `seed ${seed}, partition ${partition}, nullAsText ${String(nullAsText)}`).toBe(expected)
        }
      }
    }
  })

  it('build one Arrow stream of the whole page from its slices', () => {
    const rows = Array.from({ length: 1234 }, (_, i) => [String(i), i % 5 === 0 ? null : `t${i}`])
    const whole = chunkEncoder(result.manifest, 'arrow')
    whole.add(rows.map((r) => r.slice()))
    const sliced = chunkEncoder(result.manifest, 'arrow')
    for (const slice of rowSlices(rows, 100)) sliced.add(slice.map((r) => r.slice()))
    const a = whole.end()
    expect(a.arrow).toBe(true)
    expect(sliced.end()).toEqual(a)
  })
})
