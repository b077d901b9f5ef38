// An upstream answer read with its inline rowset as bytes gives what parsing it whole gave: the
// same envelope around the rows, the same rows at every slice size and for every range of
// them asked for, and only the slices holding a range are parsed; what JSON.parse refuses, or
// a rowset that is not rows, is refused too.
import { describe, expect, it } from 'vitest'
import { inlineOf, inlineRows, readEnvelope } from '../../src/warehouses/snowflake/inline-rowset.js'
import { rowsFromRowset } from '../../src/warehouses/snowflake/rowset.js'
import type { QueryData } from '../../src/warehouses/snowflake/query-data.js'
import { random } from '../support/seeded-random.js'
import { rowsOf, text, value } from './gen-rows.js'

class Refused extends Error {}
const fail = (what: string): Error => new Refused(what)

interface Envelope { success?: boolean, code?: string | null, data?: QueryData | null, [key: string]: unknown }

function read (body: string, sliceBytes: number): Envelope {
  return readEnvelope<Envelope>(Buffer.from(body), fail, sliceBytes)
}

const space = (next: () => number): string => (next() < 0.25 ? [' ', '\n', '\r\n', '\t'][Math.floor(next() * 4)] as string : '')

/** An envelope's text with its members in a generated order, spacing and extra members. */
function envelopeText (rows: unknown[][], next: () => number): string {
  const members = (entries: Array<[string, string]>): string => {
    const order = entries.map((e) => [next(), e] as const).sort((a, b) => a[0] - b[0]).map(([, e]) => e)
    return `{${order.map(([k, v]) => `${space(next)}${JSON.stringify(k)}${space(next)}:${space(next)}${v}${space(next)}`).join(',')}}`
  }
  const rowset = `[${rows.map((r) => space(next) + JSON.stringify(r, null, next() < 0.1 ? 1 : undefined) + space(next)).join(',')}${space(next)}]`
  const data: Array<[string, string]> = [
    ['queryId', JSON.stringify(`01q-${text(next)}`)],
    ['rowset', rowset],
    ['rowtype', JSON.stringify([{ name: text(next), type: 'text' }])],
    ['total', String(rows.length + Math.floor(next() * 1000))],
    ['chunks', JSON.stringify([{ url: `https://s/${text(next)}`, rowCount: 3 }])]
  ]
  // Members that look like a rowset without being one: a nested `rowset`, an escaped key.
  if (next() < 0.5) data.push(['parameters', JSON.stringify([{ name: 'rowset', value: { rowset: [['x']] } }])])
  if (next() < 0.3) data.push(['\\u0072owsetX', JSON.stringify(value(next))])
  const top: Array<[string, string]> = [['success', 'true'], ['code', 'null'], ['message', JSON.stringify(text(next))], ['data', members(data)]]
  if (next() < 0.3) top.push(['rowset', '[["not", "the inline rows"]]'])
  return `${space(next)}${members(top)}${space(next)}`
}

/** What the answer means parsed whole: the envelope, and its rows as Sluice decodes them. */
function parsedWhole (body: string): { envelope: Envelope, rows: unknown[][] } {
  const envelope = JSON.parse(body) as Envelope
  const rows = rowsFromRowset((envelope.data?.rowset ?? []) as unknown[][])
  delete envelope.data?.rowset
  return { envelope, rows }
}

describe('an upstream answer read with its inline rowset as bytes', () => {
  it('gives the envelope and rows JSON.parse gives, for 300 generated answers at slice sizes from 1 byte up', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed)
      const rows = rowsOf(next)
      const body = envelopeText(rows, next)
      const { envelope: whole, rows: expected } = parsedWhole(body)
      for (const size of [1, 17, 256, 4096, 1 << 20]) {
        const envelope = read(body, size)
        const data = envelope.data as QueryData
        expect(inlineOf(data).total, `seed ${seed}`).toBe(expected.length)
        expect(inlineRows(data), `seed ${seed}, slice ${size}: ${body.slice(0, 200)}`).toEqual(expected)
        const { inline, ...rest } = data
        expect({ ...envelope, data: rest }, `seed ${seed}`).toEqual(whole)
        // Any range of the rows, as a first page or a re-read inline page asks for them.
        const from = Math.floor(next() * (expected.length + 2))
        const to = from + Math.floor(next() * (expected.length + 2))
        expect(inlineRows(data, from, to), `seed ${seed}, rows ${from}–${to}`).toEqual(expected.slice(from, to))
      }
    }
  })

  it('parses only the slices that hold the rows asked for', () => {
    // Row 5,000 is cut well-formed but does not parse: a first page of 1,000 rows never reads it.
    const rows = Array.from({ length: 6000 }, (_, i) => `["${i}","user${i}@example.com"]`)
    rows[5000] = '[tru]'
    const data = read(`{"success":true,"data":{"queryId":"q","rowset":[${rows.join(',')}]}}`, 4096).data as QueryData
    expect(inlineOf(data).total).toBe(6000)
    expect(inlineRows(data, 0, 1000)).toHaveLength(1000)
    expect(inlineRows(data, 1000, 4900).at(-1)).toEqual(['4899', 'user4899@example.com'])
    expect(() => inlineRows(data, 4000, 6000)).toThrow(/a row that is not JSON/)
  })

  it('reads a rowset named with an escaped key as JSON.parse does', () => {
    expect(inlineRows(read('{"data":{"\\u0072owset":[["a"],["b"]]}}', 1).data as QueryData)).toEqual([['a'], ['b']])
  })

  it('reads an answer without a rowset, an empty one and a null one as before', () => {
    for (const body of ['{"success":true,"data":null}', '{"success":false,"code":"390112","message":"expired"}', '{"data":{"rowset":null,"total":0}}', '{"data":{"rowset":[]}}', '{}']) {
      const envelope = read(body, 64)
      const whole = JSON.parse(body) as Envelope
      expect(inlineRows(envelope.data ?? {}), body).toEqual([])
      if (whole.data?.rowset !== undefined && whole.data.rowset !== null) delete whole.data.rowset
      if (envelope.data !== null && envelope.data !== undefined) delete envelope.data.inline
      expect(envelope, body).toEqual(whole)
    }
  })

  it('refuses what JSON.parse refuses, and a rowset that is not rows', () => {
    const bad = [
      '', 'x', '{"data":{"rowset":[["a"],]}}', '{"data":{"rowset":[["a"]["b"]]}}', '{"data":{"rowset":["a"]}}',
      '{"data":{"rowset":[["a"]}}', '{"data":{"rowset":[["a"]]}} x', '{"data":{"rowset":[["a"]],"rowset":[["b"]]}}',
      '{"data":{"rowset":[["a"]]},"data":{"rowset":[["b"]]}}', '{"data":{"rowset":[["a\\"]]}}', '{"data":{"rowset":[[1}]}}'
    ]
    // Refused when read, or, for a row the cut does not read (`[1}`), when its slice is parsed.
    for (const body of bad) expect(() => inlineRows(read(body, 1).data ?? {}), body).toThrow()
    // The two that JSON.parse would have taken, as the last member, are refused for what they are.
    expect(() => read('{"data":{"rowset":[["a"]],"rowset":[["b"]]}}', 1)).toThrow(/two rowset members/)
    expect(() => read('{"data":{"rowset":[]},"data":{"rowset":[["b"]]}}', 1)).toThrow(/two data members/)
    expect(() => read('{"data":{"rowset":[["a"]]},"data":null}', 1)).toThrow(/two data members/)
  })
})
