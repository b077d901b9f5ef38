// Generated families behind the masking escape hatches of black-box testing, through the real
// analyzer, lineage, planner and page masker (the pipeline's mask stage):
// - every rearranging function of each dialect over every format-keeping mask gets a
//   keep-nothing mask, while the value itself (alias, text cast, MIN/MAX, CTE, UNION) keeps its mask;
// - structured values (OBJECT / STRUCT / arrays / row JSON) are masked field by field, stay valid,
//   and leave uncovered fields alone; what cannot be taken apart is replaced whole;
// - a role exempt from a nested field sees it in clear at any depth (detectors skip it).
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { MaskingConfig } from '../../src/config/types.js'
import { createMaskStage } from '../../src/masking/stage.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline, type RoundTrip } from '../../src/pipeline.js'
import type { ColumnMeta, ResultPage, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import { createPooledAnalyzer, type AsyncSqlAnalyzer } from '../../src/sql/pooled-analyzer.js'
import type { Dialect, QualifyDefaults, SqlAnalyzer } from '../../src/sql/types.js'

type Fn = 'email' | 'partial' | 'last4' | 'first4'
const FORMAT_KEEPING: Fn[] = ['email', 'partial', 'last4', 'first4']

function policy (fn: Fn, derived?: string): string {
  return `version: 1
masking:
  - id: secret
    columns: ['*.*.people.secret']
    function: ${fn}
    ${fn === 'partial' ? 'keep: { first: 2, last: 4 }' : ''}
    ${derived === undefined ? '' : `derived: ${derived}`}
  - id: other
    columns: ['*.*.people.other']
    function: last4
  - id: contact-email
    columns: ['*.*.profiles.contact.email', '*.*.profiles.contact.work.email']
    function: email
    exemptRoles: [support]
`
}

const SECRET = 'zed.quartz-9931@hidden-example.org'

// The in-thread analyzer, and the gateway's pooled one whose parse trees reach lineage as JSON
// from a worker: the families below run through both (the direct family, where the tree matters most).
let inThread: SqlAnalyzer
let pooled: AsyncSqlAnalyzer
let analyzer: SqlAnalyzer | AsyncSqlAnalyzer
beforeAll(async () => {
  inThread = await createSqlAnalyzer()
  pooled = createPooledAnalyzer({ workers: 1 })
  analyzer = inThread
})
afterAll(async () => { await pooled?.close() })

const KIND: Record<Dialect, 'snowflake' | 'bigquery' | 'postgres'> = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' }
const DEFAULTS: Record<Dialect, { database: string, schema: string }> = {
  snowflake: { database: 'db', schema: 'app' }, bigquery: { database: 'proj', schema: 'app' }, postgres: { database: 'db', schema: 'app' }
}

const compiled = new Map<string, ReturnType<typeof parsePolicySet>['masking']>()

async function run (dialect: Dialect, text: string, sql: string, columns: ColumnMeta[], rows: unknown[][], roles = ['agent'], settings: Partial<MaskingConfig> = {}, defaults: QualifyDefaults = DEFAULTS[dialect]): Promise<{ rows: unknown[][], trip: RoundTrip }> {
  let rules = compiled.get(text)
  if (rules === undefined) compiled.set(text, rules = parsePolicySet([{ name: 'p.yaml', text }]).masking)
  const stage = createMaskStage({ rules: () => rules as NonNullable<typeof rules>, settings })
  const p = new Pipeline({ analyze: analyzeStage(analyzer), decide: passThroughDecide, hold: refuseApprovals, mask: stage })
  const st: Statement = {
    requestId: 'r1', frontEnd: 'test', sql, client: {},
    principal: { subject: 'alice', type: 'human', groups: [], roles } as unknown as Statement['principal'],
    connection: { name: 'c', kind: KIND[dialect], defaults }
  }
  const trip: RoundTrip = {}
  const admission = await p.admit(st, trip)
  async function * pages (): AsyncIterable<ResultPage> { yield { rows: rows.map((r) => [...r]) } }
  const out: unknown[][] = []
  for await (const page of p.release(st, admission, { schema: { columns }, pages: pages() }, trip).pages) out.push(...page.rows)
  return { rows: out, trip }
}

const TEXT: ColumnMeta = { name: 'V', type: 'TEXT' }

// Rearranging / computing functions, per dialect; `c` is the masked column. Each output is
// something other than the value itself, so only a keep-nothing mask may apply.
const COMMON = [
  'REVERSE(c)', 'UPPER(c)', 'LOWER(c)', 'TRIM(c)', 'LTRIM(c)', 'RTRIM(c)', 'SUBSTR(c, 1, 8)', 'SUBSTRING(c, 2)',
  'LEFT(c, 5)', 'RIGHT(c, 5)', "LPAD(c, 60, '#')", "RPAD(c, 60, '#')", "REPLACE(c, '@', '#')", "TRANSLATE(c, '@', '#')",
  "REGEXP_REPLACE(c, 'a', 'b')", "CONCAT(c, '')", "CONCAT('x', c)", "c || ''", "'<' || c || '>'", 'CONCAT(c, c)',
  "CASE WHEN c IS NOT NULL THEN REVERSE(c) END", "COALESCE(REVERSE(c), '')", "NULLIF(REVERSE(c), '')",
  'CAST(REVERSE(c) AS VARCHAR)', 'LENGTH(c)', 'MD5(c)', "REPEAT(c, 2)"
]
const FAMILY: Record<Dialect, string[]> = {
  snowflake: [
    ...COMMON, "SPLIT_PART(c, '@', 2) || '@' || SPLIT_PART(c, '@', 1)", "INSERT(c, 1, 0, 'x')", 'INITCAP(c)', 'HEX_ENCODE(c)',
    'BASE64_ENCODE(c)', "REGEXP_SUBSTR(c, '[^@]+')", 'SHA2(c)', "LISTAGG(c, ',')", 'TO_VARCHAR(REVERSE(c))', "CONCAT_WS('-', c, c)",
    'TO_JSON(c)', 'c::VARCHAR(6)', "STRTOK(c, '@', 1)", "ARRAY_TO_STRING(ARRAY_CONSTRUCT(c, c), ',')", "IFF(TRUE, REVERSE(c), '')",
    "DECODE(1, 1, REVERSE(c))", 'SOUNDEX(c)', "SPLIT(c, '@')[0]::STRING"
  ],
  bigquery: [
    ...COMMON, "CONCAT(SPLIT(c, '@')[SAFE_OFFSET(1)], '@', SPLIT(c, '@')[SAFE_OFFSET(0)])", 'TO_HEX(CAST(c AS BYTES))',
    'TO_BASE64(CAST(c AS BYTES))', 'TO_JSON_STRING(c)', "STRING_AGG(c, ',')", "ARRAY_TO_STRING([c, c], ',')", "FORMAT('%s', c)",
    "REGEXP_EXTRACT(c, '[^@]+')", 'INITCAP(c)', 'CAST(c AS STRING(6))', "SPLIT(c, '@')[OFFSET(0)]", 'SAFE_CAST(REVERSE(c) AS STRING)',
    'CODE_POINTS_TO_STRING(TO_CODE_POINTS(c))', "IF(TRUE, REVERSE(c), '')"
  ],
  postgres: [
    ...COMMON, "SPLIT_PART(c, '@', 2) || '@' || SPLIT_PART(c, '@', 1)", "OVERLAY(c PLACING 'x' FROM 1 FOR 0)", 'INITCAP(c)',
    "ENCODE(CONVERT_TO(c, 'UTF8'), 'hex')", "ENCODE(c::bytea, 'base64')", "STRING_AGG(c, ',')", 'c::varchar(6)', 'c::char',
    "FORMAT('%s', c)", "CONCAT_WS('-', c, c)", 'TO_JSON(c)::text', "(REGEXP_MATCH(c, '[^@]+'))[1]", "ARRAY_TO_STRING(ARRAY[c, c], ',')",
    "SUBSTRING(c FROM 2 FOR 8)", 'BTRIM(c)', "TRANSLATE(c, 'abc', 'xyz')"
  ]
}

// The value itself: each may keep the rule's own (format-keeping) mask.
const DIRECT = ['c', 'c AS v', 't.c', '(c)', 'CAST(c AS VARCHAR)', 'MAX(c)', 'MIN(c)', 'ANY_VALUE(c)', 'COALESCE(c, c)']

const cases = (['snowflake', 'bigquery', 'postgres'] as const).flatMap((d) =>
  FORMAT_KEEPING.flatMap((fn) => FAMILY[d].map((expr) => [d, fn, expr] as const)))

describe('format-keeping masks apply only to the value itself', () => {
  test.each(cases)('%s %s: %s gets a keep-nothing mask', async (dialect, fn, expr) => {
    const sql = `SELECT ${expr.replace(/\bc\b/g, 'secret')} AS v FROM app.people t`
    // The upstream would return some rearrangement of the secret: here, the secret reversed.
    const { rows, trip } = await run(dialect, policy(fn), sql, [TEXT], [[[...SECRET].reverse().join('')]])
    expect(rows).toEqual([['****']])
    expect(trip.maskedColumns).toEqual([expect.objectContaining({ rule: 'secret', values: 1, reason: expect.stringMatching(/not the value itself/) })])
  })

  test.each(['redact', 'hash', 'nullify'] as const)('derived: %s chooses the keep-nothing mask', async (derived) => {
    const { rows } = await run('snowflake', policy('email', derived), 'SELECT REVERSE(secret) AS v FROM app.people', [TEXT], [['gro.elpmaxe@dez']])
    if (derived === 'redact') expect(rows).toEqual([['****']])
    if (derived === 'nullify') expect(rows).toEqual([[null]])
    if (derived === 'hash') expect(rows[0]?.[0]).toMatch(/^[0-9a-f]{64}$/)
  })

  const direct = (['in-thread', 'pooled'] as const).flatMap((a) => (['snowflake', 'bigquery', 'postgres'] as const).flatMap((d) => DIRECT.map((e) => [a, d, e] as const)))
  test.each(direct)('%s analyzer, %s: %s keeps the email mask', async (which, dialect, expr) => {
    analyzer = which === 'pooled' ? pooled : inThread
    try {
      const sql = `SELECT ${expr.replace(/\bc\b/g, 'secret')} FROM app.people t`
      const { rows } = await run(dialect, policy('email'), sql, [TEXT], [[SECRET]])
      expect(rows).toEqual([['XXXXX@hidden-example.org']])
    } finally { analyzer = inThread }
  })

  test.each([
    'WITH x AS (SELECT secret AS s FROM app.people) SELECT s FROM x',
    'SELECT s FROM (SELECT secret AS s FROM app.people) q',
    'SELECT secret FROM app.people UNION ALL SELECT secret FROM app.people'
  ])('%s keeps the email mask (the value passes unchanged)', async (sql) => {
    const { rows } = await run('snowflake', policy('email'), sql, [TEXT], [[SECRET]])
    expect(rows).toEqual([['XXXXX@hidden-example.org']])
  })

  test.each([
    'SELECT COALESCE(secret, other) FROM app.people',
    'SELECT secret FROM app.people UNION ALL SELECT other FROM app.people'
  ])('%s: a value of one of several masked columns gets a keep-nothing mask', async (sql) => {
    const { rows } = await run('snowflake', policy('email'), sql, [TEXT], [[SECRET]])
    expect(rows).toEqual([['****']])
  })
})

const OBJ: ColumnMeta = { name: 'O', type: 'OBJECT' }

describe('structured values are masked field by field and stay valid', () => {
  test('OBJECT_CONSTRUCT of fields with different rules, and a field no rule covers', async () => {
    const value = JSON.stringify({ s: SECRET, o: '4111111111111111', n: 'Zed' })
    const { rows, trip } = await run('snowflake', policy('email'), "SELECT OBJECT_CONSTRUCT('s', secret, 'o', other, 'n', name) AS o FROM app.people", [OBJ], [[value]])
    expect(JSON.parse(rows[0]?.[0] as string)).toEqual({ s: 'XXXXX@hidden-example.org', o: 'XXXXX1111', n: 'Zed' })
    expect(trip.maskedColumns).toEqual(expect.arrayContaining([
      expect.objectContaining({ column: 'O.s', rule: 'secret', values: 1 }),
      expect.objectContaining({ column: 'O.o', rule: 'other', values: 1 })
    ]))
  })

  test('OBJECT_CONSTRUCT(*) over a table without a catalogue: keys resolved by name, id untouched', async () => {
    const value = JSON.stringify({ ID: 7, SECRET, OTHER: '4111111111111111', NOTE: 'reach me at bob@example.com' })
    const { rows } = await run('snowflake', policy('email'), 'SELECT OBJECT_CONSTRUCT(*) AS o FROM app.people', [OBJ], [[value]])
    // The unmasked NOTE still passes the value detectors.
    expect(JSON.parse(rows[0]?.[0] as string)).toEqual({ ID: 7, SECRET: 'XXXXX@hidden-example.org', OTHER: 'XXXXX1111', NOTE: 'reach me at [redacted:email]' })
  })

  test.each([
    ['snowflake', 'SELECT TO_JSON(OBJECT_CONSTRUCT(*)) AS o FROM app.people'],
    ['bigquery', 'SELECT TO_JSON_STRING(t) AS o FROM app.people t'],
    ['postgres', 'SELECT row_to_json(t)::text AS o FROM app.people t'],
    ['postgres', "SELECT json_build_object('SECRET', secret, 'OTHER', other, 'ID', id)::text AS o FROM app.people"],
    ['snowflake', "SELECT OBJECT_CONSTRUCT('SECRET', secret, 'X', OBJECT_CONSTRUCT('OTHER', other), 'ID', id)::VARIANT AS o FROM app.people"]
  ] as const)('%s %s', async (dialect, sql) => {
    const nested = sql.includes("'X'")
    const value = JSON.stringify(nested ? { SECRET, X: { OTHER: '4111111111111111' }, ID: 7 } : { ID: 7, SECRET, OTHER: '4111111111111111' })
    const { rows } = await run(dialect, policy('email'), sql, [{ name: 'O', type: 'STRING' }], [[value]])
    const out = JSON.parse(rows[0]?.[0] as string)
    expect(out.SECRET).toBe('XXXXX@hidden-example.org')
    expect(nested ? out.X.OTHER : out.OTHER).toBe('XXXXX1111')
    expect(out.ID).toBe(7)
  })

  test('arrays by position, and each element of an aggregate', async () => {
    const arr = await run('snowflake', policy('email'), 'SELECT ARRAY_CONSTRUCT(secret, other, name) AS a FROM app.people', [{ name: 'A', type: 'ARRAY' }], [[JSON.stringify([SECRET, '4111111111111111', 'Zed'])]])
    expect(JSON.parse(arr.rows[0]?.[0] as string)).toEqual(['XXXXX@hidden-example.org', 'XXXXX1111', 'Zed'])
    const agg = await run('snowflake', policy('email'), "SELECT ARRAY_AGG(OBJECT_CONSTRUCT('s', secret)) AS a FROM app.people", [{ name: 'A', type: 'ARRAY' }], [[JSON.stringify([{ s: SECRET }, { s: 'amy@x.io' }])]])
    expect(JSON.parse(agg.rows[0]?.[0] as string)).toEqual([{ s: 'XXXXX@hidden-example.org' }, { s: 'XXXXX@x.io' }])
  })

  test('a BigQuery STRUCT and ARRAY_AGG(STRUCT) (records, not text)', async () => {
    const struct: ColumnMeta = { name: 's', type: 'RECORD', fields: [{ name: 'e', type: 'STRING' }, { name: 'o', type: 'STRING' }] }
    const one = await run('bigquery', policy('email'), 'SELECT STRUCT(secret AS e, other AS o) AS s FROM app.people', [struct], [[{ e: SECRET, o: '4111111111111111' }]])
    expect(one.rows).toEqual([[{ e: 'XXXXX@hidden-example.org', o: 'XXXXX1111' }]])
    const many = await run('bigquery', policy('email'), 'SELECT ARRAY_AGG(STRUCT(secret, other)) AS s FROM app.people', [{ ...struct, mode: 'REPEATED' }], [[[{ e: SECRET, o: '4111111111111111' }]]])
    expect(many.rows).toEqual([[[{ e: 'XXXXX@hidden-example.org', o: 'XXXXX1111' }]]])
  })

  test('what does not have the planned structure is replaced whole, never format-masked as a blob', async () => {
    const { rows } = await run('snowflake', policy('email'), "SELECT OBJECT_CONSTRUCT('s', secret) AS o FROM app.people", [{ name: 'O', type: 'TEXT' }], [[`not json ${SECRET}`]])
    expect(rows).toEqual([['****']])
  })

  test('a structured value of a computed key cannot be taken apart: masked whole', async () => {
    const { rows } = await run('snowflake', policy('email'), 'SELECT OBJECT_CONSTRUCT(name, secret) AS o FROM app.people', [{ name: 'O', type: 'TEXT' }], [[JSON.stringify({ Zed: SECRET })]])
    expect(JSON.stringify(rows)).not.toContain('zed.quartz')
  })
})

describe('exempt fields are shown in clear at every depth (detectors skip them)', () => {
  const contact: ColumnMeta = {
    name: 'contact', type: 'RECORD',
    fields: [{ name: 'email', type: 'STRING' }, { name: 'phone', type: 'STRING' }, { name: 'work', type: 'RECORD', fields: [{ name: 'email', type: 'STRING' }] }]
  }
  const value = { email: 'amy@example.com', phone: '+1-202-555-0199', work: { email: 'amy@work.example.com' } }

  test.each(['SELECT contact FROM app.profiles', 'SELECT * FROM app.profiles'])('%s, record column', async (sql) => {
    const exempt = await run('bigquery', policy('email'), sql, [contact], [[value]], ['support'])
    // Exempt fields in clear; the phone, which no rule covers, still goes through the detectors.
    expect(exempt.rows).toEqual([[{ email: 'amy@example.com', phone: '[redacted:phone]', work: { email: 'amy@work.example.com' } }]])
    const masked = await run('bigquery', policy('email'), sql, [contact], [[value]])
    expect(masked.rows).toEqual([[{ email: 'XXXXX@example.com', phone: '+1-202-555-0199', work: { email: 'XXXXX@work.example.com' } }]])
  })

  test('JSON text (a Snowflake VARIANT) and a whole-row object', async () => {
    const variant = await run('snowflake', policy('email'), 'SELECT contact FROM app.profiles', [{ name: 'CONTACT', type: 'VARIANT' }], [[JSON.stringify(value)]], ['support'])
    expect(JSON.parse(variant.rows[0]?.[0] as string)).toEqual({ ...value, phone: '[redacted:phone]' })
    const row = await run('snowflake', policy('email'), 'SELECT OBJECT_CONSTRUCT(*) AS o FROM app.profiles', [OBJ], [[JSON.stringify({ ID: 1, CONTACT: value })]], ['support'])
    expect(JSON.parse(row.rows[0]?.[0] as string)).toEqual({ ID: 1, CONTACT: { ...value, phone: '[redacted:phone]' } })
  })
})

describe('a table named without the parts the connection does not default', () => {
  // The warehouse fills the missing database / schema from its session: the name may be any.
  test.each([
    [{ database: 'db' }, 'SELECT secret FROM people'],
    [{}, 'SELECT secret FROM people'],
    [{}, 'SELECT secret FROM app.people'],
    [{ schema: 'app' }, 'SELECT p.secret FROM people p']
  ] as const)('defaults %j: %s is masked', async (defaults, sql) => {
    const exact = policy('email').replace("'*.*.people.secret'", "'db.app.people.secret'")
    const { rows } = await run('snowflake', exact, sql, [TEXT], [[SECRET]], ['agent'], {}, defaults)
    expect(rows).toEqual([['XXXXX@hidden-example.org']])
  })
})
