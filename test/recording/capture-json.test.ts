// The capture's JSON (its byte budget and its stored form) is the same whichever way it is
// written: plain rows skip JSON.stringify's replacer, rows with bytes, bigints or objects keep it.
import { describe, expect, it } from 'vitest'
import { CaptureCollector, compressCapture, type CapturedResult } from '../../src/recording/capture.js'

// The capture format's reference: bigints as text, bytes as base64 (a Buffer's own toJSON first).
function reference (_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  return value
}

// A small deterministic generator: every kind of value a neutral row can hold.
function generator (seed: number): () => number {
  let s = seed
  return () => { s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff; return s / 0x80000000 }
}
const VALUES: Array<(r: () => number) => unknown> = [
  (r) => `text ${Math.floor(r() * 1e6)} é "quoted" \\ \n ✓`,
  () => null,
  () => undefined,
  (r) => r() * 1e9,
  () => Number.NaN,
  () => Number.POSITIVE_INFINITY,
  () => -0,
  (r) => r() < 0.5,
  (r) => BigInt(Math.floor(r() * 1e15)) * 1000n,
  (r) => new Uint8Array([Math.floor(r() * 256), 0, 255]),
  (r) => Buffer.from([Math.floor(r() * 256), 1]),
  (r) => new Date(Math.floor(r() * 1e12)),
  (r) => ({ a: BigInt(7), b: new Uint8Array([1, 2]), c: 'x' }),
  (r) => [1, 'two', null, BigInt(Math.floor(r() * 10))],
  () => '\u0000\u001f\ud800'
]

function rowsOf (seed: number, plainOnly: boolean, n: number): unknown[][] {
  const r = generator(seed)
  const kinds = plainOnly ? VALUES.slice(0, 8) : VALUES
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * 6) }, () => (kinds[Math.floor(r() * kinds.length)] as (r: () => number) => unknown)(r)))
}

describe('capture JSON', () => {
  it('counts every row at the size of its replacer JSON and stops at the same row', () => {
    for (let seed = 1; seed <= 200; seed++) {
      // Up to several sizing batches, cut anywhere: inside the first batch, at a later one.
      const rows = rowsOf(seed, seed % 2 === 0, 60 + seed * 5)
      const budget = 200 + seed * seed * 9
      const c = new CaptureCollector([{ name: 'a', type: 'TEXT' }], budget)
      c.add(rows)
      let used = 2 + JSON.stringify([{ name: 'a', type: 'TEXT' }]).length
      let kept = 0
      for (const row of rows) {
        const size = Buffer.byteLength(JSON.stringify(row, reference)) + 1
        if (used + size > budget) break
        used += size
        kept++
      }
      expect(c.rows.length, `seed ${seed}`).toBe(kept)
      expect(c.truncated).toBe(kept < rows.length)
    }
  })

  it('keeps exactly the rows that fit when the budget ends on a row boundary, or a byte short of it', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rows = rowsOf(seed, seed % 4 !== 0, 1200)
      const k = (seed * 97) % rows.length
      const base = 2 + JSON.stringify([{ name: 'a', type: 'TEXT' }]).length
      const upTo = base + rows.slice(0, k).reduce((n, row) => n + Buffer.byteLength(JSON.stringify(row, reference)) + 1, 0)
      for (const [budget, kept] of [[upTo, k], [upTo - 1, Math.max(0, k - 1)]] as const) {
        if (k === 0 && budget < upTo) continue
        const c = new CaptureCollector([{ name: 'a', type: 'TEXT' }], budget)
        c.add(rows)
        expect(c.rows.length, `seed ${seed}, budget ${budget}`).toBe(kept)
      }
    }
  })

  it('stores the same bytes as the replacer JSON, plain rows or not', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rows = rowsOf(seed, seed % 3 !== 0, seed % 5 === 0 ? 400 : 20)
      const capture: CapturedResult = { columns: [{ name: 'a', type: 'TEXT' }], rows, rowsReleased: rows.length, truncated: false }
      const expected = JSON.stringify(capture, reference)
      const stored = await compressCapture(capture)
      if (expected.length < 8192) expect(stored?.bytes.toString('utf8'), `seed ${seed}`).toBe(expected)
      else expect((await import('node:zlib')).gunzipSync(stored!.bytes).toString('utf8'), `seed ${seed}`).toBe(expected)
    }
  })
})
