// Every Snowflake column type through Sluice to both Python connector generations — 3.13.2 (what
// Snowpark 1.28 and mcp-snowflake-server pin) and 5.2.0 — read with fetchall(),
// fetch_pandas_all() and fetch_arrow_all(), for 0, 1, 2, 3 and many rows (many: Sluice-served
// Arrow chunks), masked (agent) and in clear (data steward). The reference is the same driver
// reading the same statement in JSON (the rowset text Snowflake sends, which the driver's own
// converters turn into Python values): Arrow must give exactly those values and Python types,
// and pandas / pyarrow the types Snowflake's own Arrow gives (DATE a date, not a day number).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { PYTHON, PYTHON_CONNECTOR3, runPython } from '../support/snowflake-python.js'

type Value = [string, string]
interface Read {
  fetchall: Value[][] | { error: { msg: string } }
  format?: string
  pandas: { dtypes: string[], rows: Value[][] } | { error: { msg: string } }
  arrow: { types: string[], rows: Value[][] } | { error: { msg: string } }
  json: { format: string, rows: Value[][] } | { error: { msg: string } }
}
interface Outcome { version: string, queries: Record<string, Read> }

const T = `${SEED_DATABASE}.${SEED_SCHEMA}.TYPES`
const MANY = `${SEED_DATABASE}.${SEED_SCHEMA}.MANY`
const MANY_ROWS = 2500
const COLUMNS = 'ID, N, F, S, B, BO, D, T, NTZ, LTZ, TZ, V, O, A'

/** Every type of the issue, 3 rows: ordinary values, nulls in every column but ID, edge values. */
const SEED = [
  `CREATE OR REPLACE TABLE ${T} (ID NUMBER(38,0), N NUMBER(10,2), F FLOAT, S VARCHAR, B BINARY, BO BOOLEAN, D DATE, T TIME,
    NTZ TIMESTAMP_NTZ, LTZ TIMESTAMP_LTZ, TZ TIMESTAMP_TZ, V VARIANT, O OBJECT, A ARRAY)`,
  `INSERT INTO ${T} SELECT 1, 12.50, 1.5, 'ada@example.com', TO_BINARY('ABCD', 'HEX'), TRUE, '2024-01-02'::DATE, '13:14:15.123'::TIME,
    '2024-01-02 10:00:00.123'::TIMESTAMP_NTZ, '2024-01-02 10:00:00.5'::TIMESTAMP_LTZ, '2024-01-02 10:00:00 +02:00'::TIMESTAMP_TZ,
    PARSE_JSON('{"k": [1, 2]}'), PARSE_JSON('{"a": "b"}'), PARSE_JSON('[1, "two"]')`,
  `INSERT INTO ${T} (ID) VALUES (2)`,
  `INSERT INTO ${T} SELECT 3, -0.05, -2.25e10, 'grace@example.com', TO_BINARY('00FF', 'HEX'), FALSE, '1969-12-31'::DATE, '00:00:00'::TIME,
    '1969-12-31 23:59:59.5'::TIMESTAMP_NTZ, '1970-01-01 00:00:00'::TIMESTAMP_LTZ, '1999-12-31 23:59:59 -05:00'::TIMESTAMP_TZ,
    PARSE_JSON('"text"'), PARSE_JSON('{}'), PARSE_JSON('[]')`
]

const QUERIES: Record<string, string> = {
  rows0: `SELECT ${COLUMNS} FROM ${T} WHERE ID = 0`,
  rows1: `SELECT ${COLUMNS} FROM ${T} WHERE ID = 1`,
  rows2: `SELECT ${COLUMNS} FROM ${T} WHERE ID <= 2 ORDER BY ID`,
  rows3: `SELECT ${COLUMNS} FROM ${T} ORDER BY ID`,
  many: `SELECT ID, S, D, N FROM ${MANY} ORDER BY ID`,
  literal: "SELECT '2024-01-02'::DATE AS D, 1 AS N"
}

const POLICY = `version: 1
rules:
  - id: agents-read
    effect: allow
    match:
      roles: [agent]
      kinds: [select]
masking:
  - id: mask-types
    columns: ['*.*.types.n', '*.*.types.f', '*.*.types.s', '*.*.types.b', '*.*.types.bo', '*.*.types.d', '*.*.types.t',
      '*.*.types.ntz', '*.*.types.ltz', '*.*.types.tz', '*.*.types.v', '*.*.types.o', '*.*.types.a', '*.*.many.s']
    function: sha256
    exemptRoles: [data-steward]
`

function ok<T extends object> (value: T | { error: { msg: string } }): T {
  if ('error' in value) throw new Error(`the driver failed: ${value.error.msg}`)
  return value
}

describe('Python connector 3.x and 5.x read every type through Sluice as from Snowflake (fakesnow)', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let dir: string
  const runs: Record<string, Outcome> = {}

  beforeAll(async () => {
    fakesnow = await startFakesnow()
    for (const sql of SEED) await fakesnow.sql(sql)
    await fakesnow.sql(`CREATE OR REPLACE TABLE ${MANY} (ID NUMBER(38,0), S VARCHAR, D DATE, N NUMBER(12,2))`)
    const values = Array.from({ length: MANY_ROWS }, (_, i) => `(${i}, 'row-${i}', '2024-01-01'::DATE + ${i % 400}, ${i}.25)`)
    await fakesnow.sql(`INSERT INTO ${MANY} VALUES ${values.join(', ')}`)
    dir = await mkdtemp(join(tmpdir(), 'sluice-arrow-policies-'))
    await writeFile(join(dir, 'types.yaml'), POLICY)
    gw = await startSnowflakeGateway({
      connections: {
        fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, partitionRows: 1000 }
      },
      stages: 'configured',
      policiesDirectory: dir
    })
    const agent = await gw.token('alice')
    const steward = await gw.token('stella', ['stewards'])
    const jobs = [
      ['3.x masked', PYTHON_CONNECTOR3, agent], ['3.x clear', PYTHON_CONNECTOR3, steward],
      ['5.x masked', PYTHON, agent], ['5.x clear', PYTHON, steward]
    ] as const
    for (const [name, python, token] of jobs) {
      runs[name] = await runPython('test/snowflake/python/arrow_client.py', { account: 'fake', port: gw.port, token, queries: QUERIES }, 300_000, python) as unknown as Outcome
    }
  }, 900_000)

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('runs the connector generations the issue names', () => {
    expect(runs['3.x clear']?.version).toBe('3.13.2')
    expect(runs['5.x clear']?.version).toBe('5.2.0')
  })

  const cases = Object.keys(QUERIES).flatMap((query) => ['3.x masked', '3.x clear', '5.x masked', '5.x clear'].map((run) => [run, query] as const))

  it.each(cases)('%s, %s: served as Arrow; fetchall() gives what the JSON rowset gives', (run, query) => {
    const read = runs[run]!.queries[query]!
    const rows = ok(read.fetchall as never) as Value[][]
    expect(read.format).toBe('arrow')
    const json = ok(read.json)
    expect(json.format).toBe('json')
    expect(rows.map((r) => r.map(same(run)))).toEqual(json.rows.map((r) => r.map(same(run))))
    expect(rows).toHaveLength(query === 'many' ? MANY_ROWS : query === 'literal' ? 1 : Number(query.slice(4)))
  })

  it.each(cases)('%s, %s: fetch_pandas_all() and fetch_arrow_all() hold the same values', (run, query) => {
    const rows = (ok(runs[run]!.queries[query]!.fetchall as never) as Value[][]).map((r) => r.map(loose))
    expect(ok(runs[run]!.queries[query]!.pandas).rows.map((r) => r.map(loose))).toEqual(rows)
    expect(ok(runs[run]!.queries[query]!.arrow).rows.map((r) => r.map(loose))).toEqual(rows)
  })

  it.each(['3.x masked', '3.x clear', '5.x masked', '5.x clear'])('%s: pandas and pyarrow get Snowflake\'s types (DATE a date, NUMBER an integer or float, timestamps datetime64)', (run) => {
    const pandas = ok(runs[run]!.queries.rows3!.pandas)
    expect(pandas.dtypes).toEqual(['int8', 'float64', 'float64', 'object', 'object', 'object', 'object', 'object',
      'datetime64[ns]', 'datetime64[ns, Etc/UTC]', 'datetime64[ns, Etc/UTC]', 'object', 'object', 'object'])
    expect(pandas.rows[0]?.[6]?.[0]).toBe('date')
    expect(pandas.rows[0]?.[7]?.[0]).toBe('time')
    const arrow = ok(runs[run]!.queries.rows3!.arrow)
    // TIME is time64[us] because fakesnow's rowtype says TIME(6); Snowflake's TIME(9) would be ns.
    expect(arrow.types).toEqual(['int8', 'double', 'double', 'string', 'binary', 'bool', 'date32[day]', 'time64[us]',
      'timestamp[ns]', 'timestamp[ns, tz=Etc/UTC]', 'timestamp[ns, tz=Etc/UTC]', 'string', 'string', 'string'])
    // The repro: '2024-01-02'::DATE was 19724 in pandas with connector 3.13.2.
    expect(ok(runs[run]!.queries.literal!.pandas)).toEqual({ dtypes: ['object', 'int8'], rows: [[['date', '2024-01-02'], ['int', '1']]] })
    // A result in chunks has one Arrow schema for all its pieces, so NUMBER takes the width its
    // declaration holds (ID NUMBER(38,0): int64), not the narrowest its first values fit: the
    // 5.x connector reads every chunk with the first piece's schema (arrow-encode.ts).
    expect(ok(runs[run]!.queries.many!.pandas).dtypes).toEqual(['int64', 'object', 'object', 'float64'])
  })

  it.each(['3.x clear', '5.x clear'])('%s: the values are the seeded ones, nulls included', (run) => {
    const rows = ok(runs[run]!.queries.rows3!.fetchall as never) as Value[][]
    expect(rows.map((r) => r.map(same(run)))).toEqual([
      [['int', '1'], ['Decimal', '12.50'], ['float', '1.5'], ['str', 'ada@example.com'], ['bytes', 'ABCD'], ['bool', 'True'],
        ['date', '2024-01-02'], ['time', '13:14:15.123000'], ['datetime', '2024-01-02T10:00:00.123000'],
        ['datetime', '2024-01-02T10:00:00.500000+00:00'], ['datetime', '2024-01-02T08:00:00+00:00'],
        ['str', '{"k":[1,2]}'], ['str', '{"a":"b"}'], ['str', '[1,"two"]']],
      [['int', '2'], ...Array.from({ length: 13 }, () => ['None', 'None'])],
      [['int', '3'], ['Decimal', '-0.05'], ['float', '-22500000000.0'], ['str', 'grace@example.com'], ['bytes', '00FF'], ['bool', 'False'],
        ['date', '1969-12-31'], ['time', '00:00:00'], ['datetime', '1969-12-31T23:59:59.500000'],
        ['datetime', '1970-01-01T00:00:00+00:00'], ['datetime', '2000-01-01T04:59:59+00:00'],
        ['str', '"text"'], ['str', '{}'], ['str', '[]']]
    ])
    const many = ok(runs[run]!.queries.many!.fetchall as never) as Value[][]
    expect(many[MANY_ROWS - 1]).toEqual([['int', String(MANY_ROWS - 1)], ['str', `row-${MANY_ROWS - 1}`], ['date', '2024-04-09'], ['Decimal', `${MANY_ROWS - 1}.25`]])
  })

  it.each(['3.x masked', '5.x masked'])('%s: masked columns never carry a seeded value, in any reading', (run) => {
    const { rows1, rows2, rows3, many } = runs[run]!.queries
    const types = JSON.stringify([rows1, rows2, rows3])
    for (const value of ['ada@example.com', 'grace@example.com', '12.50', '2024-01-02', '1969-12-31', 'ABCD', '13:14:15', '"two"']) {
      expect(types).not.toContain(value)
    }
    expect(JSON.stringify(many)).not.toMatch(/row-\d/)
  })
})

/** Exact comparison, except where the driver itself differs between its readers on Snowflake. */
function same (run: string) {
  return ([type, text]: Value): Value => {
    // The Arrow reader hands BINARY back as bytearray, the JSON one as bytes (as from Snowflake).
    if (type === 'bytearray') return ['bytes', text]
    // A sha256 mask writes NUMBER without its scale digits in the JSON rowset; same value.
    if (type === 'Decimal' && run.includes('masked')) return [type, String(Number(text))]
    return [type, text]
  }
}

/** Values across fetchall / pandas / pyarrow, which box them differently (Decimal vs float64, Timestamp vs datetime). */
function loose ([type, text]: Value): string {
  if (type === 'None') return 'None'
  if (/^(int|float|Decimal|u?int\d+|float\d+)$/.test(type)) return `number:${Number(text)}`
  if (type === 'bytes' || type === 'bytearray') return `bytes:${text}`
  if (type === 'Timestamp' || type === 'datetime') return `datetime:${text}`
  if (type === 'bool' || type === 'bool_') return `bool:${text}`
  return `${type}:${text}`
}

