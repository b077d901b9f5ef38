// BigQuery answers read with their rows as bytes, a slice at a time, give what parsing the
// whole answer gave: the same rows, the same answer around them, and (released, encoded and
// spliced into the response) the same bytes the whole-page path sent; what is not well-formed
// is refused before any row is released, and a page that fails part way sends and records none.
import { describe, expect, it } from 'vitest'
import { readRowsAnswer, type UpstreamRows } from '../../src/warehouses/bigquery/upstream-rows.js'
import { answerBytes, EncodedRows } from '../../src/warehouses/bigquery/encoded-rows.js'
import { releaseRows } from '../../src/warehouses/bigquery/results.js'
import { decodeRows, encodeRows, type TimestampForm } from '../../src/warehouses/bigquery/codec.js'
import type { RoundTrip } from '../../src/pipeline.js'
import { StatementRun } from '../../src/pipeline/run.js'
import type { Admission, NeutralResult, ResultPage, Statement } from '../../src/pipeline/types.js'
import type { TableFieldSchema, TableRow } from '../../src/warehouses/bigquery/wire.js'
import { answerOf, bodyOf, random, rowOf, fieldsOf } from './gen-answers.js'

class Refused extends Error {}
const fail = (what: string): Error => new Refused(what)

type Answer = Record<string, unknown> & { rows?: UpstreamRows }

function read (body: string, sliceBytes: number): Answer {
  return readRowsAnswer<Answer>(Buffer.from(body), fail, sliceBytes)
}

/** A run whose release masks STRING cells of the first column (as a mask stage would) and counts rows. */
/** A real run over a pipeline whose release masks the first STRING column and counts rows. */
function fakeRun (fields: TableFieldSchema[]): StatementRun {
  const pipeline = {
    release (_statement: unknown, _admission: unknown, result: NeutralResult, trip: RoundTrip): NeutralResult {
      trip.rowsReturned = 0
      trip.capture = [] as unknown as RoundTrip['capture']
      async function * masked (): AsyncIterable<ResultPage> {
        for await (const page of result.pages) {
          const rows = page.rows.map((row) => mask(fields, row))
          trip.rowsReturned = (trip.rowsReturned ?? 0) + rows.length
          yield { rows }
        }
      }
      return { ...result, pages: masked() }
    },
    releaseError: (_s: unknown, _a: unknown, message: string) => message
  }
  const admission = { decision: { limits: {} }, analysis: { statements: [] } } as unknown as Admission
  return new StatementRun(pipeline, {} as Statement, admission, {})
}

function mask (fields: TableFieldSchema[], row: unknown[]): unknown[] {
  return fields[0]?.type === 'STRING' && typeof row[0] === 'string' ? ['***', ...row.slice(1)] : row
}

/** What the whole-page path sent: every row decoded, masked and encoded at once, stringified by fastify. */
function wholePageBytes (whole: Record<string, unknown>, fields: TableFieldSchema[], timestamps: TimestampForm, limit = Infinity): string {
  const rows = (whole.rows as TableRow[] | null | undefined) ?? []
  const neutral = decodeRows(fields, rows.slice(0, limit), { int64Timestamps: true }).map((row) => mask(fields, row))
  return JSON.stringify({ ...whole, rows: encodeRows(fields, neutral, { timestamps }) })
}

const SIZES = [1, 17, 256, 4096, 1 << 20]

describe('BigQuery answers read with their rows as bytes', () => {
  it('give the rows and the answer JSON.parse gives, for 300 generated answers at slice sizes from 1 byte up', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed)
      const { answer } = answerOf(next)
      const body = bodyOf(answer, next)
      const whole = JSON.parse(body) as Record<string, unknown>
      for (const size of SIZES) {
        const sliced = read(body, size)
        const label = `seed ${seed}, slice ${size}`
        expect(Object.keys(sliced), label).toEqual(Object.keys(whole))
        expect({ ...sliced, rows: undefined }, label).toEqual({ ...whole, rows: undefined })
        const rows = sliced.rows as UpstreamRows
        expect(rows.length, label).toBe((whole.rows as unknown[]).length)
        expect([...rows.slices()].flat(), label).toEqual(whole.rows)
        for (const n of [0, 1, 7, 1000]) expect([...rows.first(n).slices()].flat(), label).toEqual((whole.rows as unknown[]).slice(0, n))
      }
    }
  })

  it('send the bytes the whole-page path sent, released and encoded a slice at a time, in every timestamp form and cut', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed)
      const { fields, answer } = answerOf(next)
      const body = bodyOf(answer, next)
      const whole = JSON.parse(body) as Record<string, unknown>
      const timestamps = (['float', 'int64', 'iso'] as const)[seed % 3] as TimestampForm
      const limit = seed % 4 === 0 ? Math.floor(next() * 30) : Infinity
      for (const size of [1, 300, 1 << 20]) {
        const sliced = read(body, size)
        const run = fakeRun(fields)
        const rows = await releaseRows(run, { fields, rows: (sliced.rows as UpstreamRows).first(limit), timestamps })
        const sent = answerBytes({ ...sliced, rows })?.toString('utf8')
        expect(sent, `seed ${seed}, slice ${size}`).toBe(wholePageBytes(whole, fields, timestamps, limit))
        expect(run.trip.rowsReturned).toBe(Math.min(limit, (whole.rows as unknown[]).length))
      }
    }
  })

  it('splice encoded rows into an answer exactly where JSON.stringify puts them, undefined members left out', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const next = random(seed)
      const fields = fieldsOf(next)
      const rows = Array.from({ length: Math.floor(next() * 5) }, () => rowOf(next, fields))
      const encoded = new EncodedRows()
      for (let i = 0; i < rows.length; i += 2) encoded.add(rows.slice(i, i + 2))
      if (next() < 0.3) encoded.add([])
      const before = next() < 0.5 ? { kind: 'k', gone: undefined } : {}
      const after = next() < 0.5 ? { totalRows: '3', fn: () => 1, pageToken: 't"' } : {}
      const answer = { ...before, rows: encoded, ...after }
      expect(answerBytes(answer)?.toString('utf8')).toBe(JSON.stringify({ ...before, rows, ...after }))
    }
    // No encoded rows: left to fastify's own stringify.
    expect(answerBytes({ kind: 'k', jobComplete: false })).toBeUndefined()
  })

  it('read rows: null as no rows, an empty body as an empty answer, and a byte order mark as text reading drops it', () => {
    expect([...(read('{"kind":"k","rows":null,"totalRows":"0"}', 1).rows as UpstreamRows).slices()].flat()).toEqual([])
    expect(Object.keys(read('{"kind":"k","rows" : null}', 1))).toEqual(['kind', 'rows'])
    expect(read(' \n', 1)).toEqual({})
    const bom = readRowsAnswer<Answer>(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"rows":[{"f":[{"v":"1"}]}]}')]), fail)
    expect([...(bom.rows as UpstreamRows).slices()].flat()).toEqual([{ f: [{ v: '1' }] }])
    // A key spelled with escapes names the same member JSON.parse sees.
    const escaped = read('{"r\\u006fws":[{"f":[]},{"f":[{"v":null}]}],"k":1}', 1)
    expect([...(escaped.rows as UpstreamRows).slices()].flat()).toEqual([{ f: [] }, { f: [{ v: null }] }])
    expect(escaped.k).toBe(1)
  })

  it('refuse, before handing out any row, an answer that is not well-formed', () => {
    const bad = [
      '{"rows":[{"f":[]},]}', '{"rows":[{"f":[]}', '{"rows":[{"f":[{"v":"a}]}]}', '{"rows":[1,2]}', '{"rows":["x"]}',
      '{"rows":"x"}', '{"rows":{}}', '{"rows":[],"rows":[]}', '{"rows":[{"f":[]}{"f":[]}]}', '{"rows":[,{"f":[]}]}',
      '{"kind":x,"rows":[]}', '{"kind":"k" "rows":[]}', '{"rows":[]} x', '{"rows":[]}}', '[{"f":[]}]', '"rows"',
      '{"rows":[{"f":[]}],', '{"rows"', '{"kind":"k","rows":[{"f":[]}]'
    ]
    for (const body of bad) {
      for (const size of [1, 1 << 20]) expect(() => read(body, size), body).toThrow(Refused)
    }
  })

  it('fail a page whose later slice does not parse, with no rows recorded and no cell text in the error', async () => {
    const fields: TableFieldSchema[] = [{ name: 'email', type: 'STRING', mode: 'NULLABLE' }]
    const rows = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ f: [{ v: `torn${i}@example.com` }] })).join(',')
    const sliced = read(`{"kind":"k","rows":[${rows},{"f":[{"v":tru}]}],"totalRows":"2001"}`, 1024)
    expect(sliced.rows?.length).toBe(2001)
    const run = fakeRun(fields)
    const failed = releaseRows(run, { fields, rows: sliced.rows as UpstreamRows, timestamps: 'float' })
    await expect(failed).rejects.toThrow(Refused)
    await expect(failed).rejects.not.toThrow(/torn|tru/)
    expect(run.trip.rowsReturned).toBe(0)
    expect(run.trip.capture).toBeUndefined()
  })
})
