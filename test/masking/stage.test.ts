// The mask stage through the real pipeline: plan from lineage, fail closed, exempt roles,
// warehouse source metadata, detectors (mask / flag), exact counts, and a canary that never
// leaves in any encoding for a role that sees its column masked.
import { beforeAll, describe, expect, test } from 'vitest'
import { createMaskStage, type MaskingStage } from '../../src/masking/stage.js'
import { analyzeStage } from '../../src/pipeline/compose.js'
import { passThroughDecide, refuseApprovals } from '../../src/pipeline/stages.js'
import { Pipeline, type RoundTrip } from '../../src/pipeline.js'
import type { ColumnMeta, ResultPage, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { SqlAnalyzer } from '../../src/sql/types.js'
import type { MaskingConfig } from '../../src/config/types.js'

const POLICY = `
version: 1
masking:
  - { id: pii, columns: ['analytics.public.customers.ssn', 'analytics.public.customers.email'], function: redact, exemptRoles: [support] }
  - { id: tok, columns: ['analytics.public.customers.phone'], function: token, allowEquality: true }
  - { id: prod-only, columns: ['analytics.public.orders.amount'], function: nullify, connections: ['*-prod'] }
`
const rules = parsePolicySet([{ name: 'p.yaml', text: POLICY }]).masking
const CANARY = 'CanaryZebra-8812'

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer() })

function statement (sql: string, roles = ['agent'], connection = 'sf-prod'): Statement {
  return {
    requestId: 'r1', frontEnd: 'test', sql, client: {},
    principal: { subject: 'alice', type: 'human', groups: [], roles } as unknown as Statement['principal'],
    connection: { name: connection, kind: 'snowflake', defaults: { database: 'analytics', schema: 'public' } }
  }
}

function pipeline (settings: Partial<MaskingConfig> = {}): { p: Pipeline, stage: MaskingStage } {
  const stage = createMaskStage({ rules: () => rules, settings, connections: { 'sf-flag': { masking: { detectors: { mode: 'flag' } } } } })
  return { p: new Pipeline({ analyze: analyzeStage(analyzer), decide: passThroughDecide, hold: refuseApprovals, mask: stage }), stage }
}

async function run (sql: string, columns: ColumnMeta[], rows: unknown[][], opts: { roles?: string[], connection?: string, settings?: Partial<MaskingConfig> } = {}): Promise<{ rows: unknown[][], trip: RoundTrip }> {
  const { p } = pipeline(opts.settings)
  const trip: RoundTrip = {}
  const st = statement(sql, opts.roles, opts.connection)
  const admission = await p.admit(st, trip)
  async function * pages (): AsyncIterable<ResultPage> {
    // Two pages: masking must hold on every one.
    yield { rows: rows.slice(0, 1).map((r) => [...r]) }
    yield { rows: rows.slice(1).map((r) => [...r]) }
  }
  const released = p.release(st, admission, { schema: { columns }, pages: pages() }, trip)
  const out: unknown[][] = []
  for await (const page of released.pages) out.push(...page.rows)
  return { rows: out, trip }
}

const T = (name: string): ColumnMeta => ({ name, type: 'TEXT' })

describe('plan from lineage', () => {
  test('masks derived columns and counts values actually masked (NULLs are not)', async () => {
    const { rows, trip } = await run('SELECT id, UPPER(email) AS e, phone FROM customers',
      [T('ID'), T('E'), T('PHONE')], [['1', 'A@X.COM', '555'], ['2', null, '556']])
    expect(rows[0]?.[1]).toBe('****')
    expect(rows[1]?.[1]).toBeNull()
    expect(rows[0]?.[2]).toMatch(/^tok_/)
    expect(trip.maskedColumns).toEqual([
      expect.objectContaining({ column: 'E', rule: 'pii', values: 1 }),
      expect.objectContaining({ column: 'PHONE', rule: 'tok', values: 2 })
    ])
  })

  test('an exempt role sees clear values', async () => {
    const { rows } = await run('SELECT ssn FROM customers', [T('SSN')], [[CANARY], [CANARY]], { roles: ['support'] })
    expect(rows).toEqual([[CANARY], [CANARY]])
  })

  test('a rule limited to some connections does not mask elsewhere', async () => {
    expect((await run('SELECT amount FROM orders', [T('AMOUNT')], [['12'], ['13']], { connection: 'sf-prod' })).rows).toEqual([[null], [null]])
    expect((await run('SELECT amount FROM orders', [T('AMOUNT')], [['12'], ['13']], { connection: 'sf-dev' })).rows).toEqual([['12'], ['13']])
  })

  test('warehouse source metadata adds sources lineage could not see', async () => {
    const { rows } = await run('SELECT x FROM TABLE(my_udtf(1))', [{ name: 'SSN', type: 'TEXT', source: { table: 'ANALYTICS.PUBLIC.CUSTOMERS', column: 'SSN' } }], [[CANARY], ['b']])
    expect(rows).toEqual([['****'], ['****']])
  })
})

describe('fail closed', () => {
  const SQL = 'SELECT c.id, f.x FROM customers c, TABLE(my_udtf(c.id)) f'
  test('an untraceable column on a statement reading a masked table is masked, and says why', async () => {
    const { rows, trip } = await run(SQL, [T('ID'), T('X')], [['1', CANARY], ['2', 'y']])
    expect(rows).toEqual([['1', '****'], ['2', '****']])
    const count = trip.maskedColumns?.[0] as { rule: string, reason?: string }
    expect(count.rule).toBe('pii')
    expect(count.reason).toMatch(/^fail closed: lineage unresolved \(table function my_udtf is not traced\)/)
  })

  test('or the statement is denied when masking.unresolved is deny', async () => {
    await expect(run(SQL, [T('ID'), T('X')], [], { settings: { unresolved: 'deny' } })).rejects.toMatchObject({ code: 'SLUICE_MASKING_UNRESOLVED' })
  })

  test('a result the lineage cannot align is masked whole', async () => {
    const { rows } = await run('SELECT id, name FROM customers', [T('ID'), T('NAME'), T('EXTRA')], [['1', 'n', CANARY], ['2', 'm', 'z']])
    expect(rows[0]).toEqual(['****', '****', '****'])
  })

  test('a statement touching no masked table is not masked for failing lineage', async () => {
    const { rows } = await run('SELECT seq4() AS x FROM TABLE(GENERATOR(ROWCOUNT => 2))', [T('X')], [['clear'], ['too']])
    expect(rows).toEqual([['clear'], ['too']])
  })
  test('a table function Sluice cannot see into may read any table: its columns fail closed', async () => {
    const { rows, trip } = await run('SELECT x FROM TABLE(my_udtf(1))', [T('X')], [['secret'], ['too']])
    expect(rows).toEqual([['****'], ['****']])
    expect(trip.maskedColumns).toEqual([expect.objectContaining({ column: 'X', reason: expect.stringContaining('table function MY_UDTF') })])
    await expect(run('SELECT x FROM TABLE(my_udtf(1))', [T('X')], [['secret']], { settings: { unresolved: 'deny' } })).rejects.toMatchObject({ code: 'SLUICE_MASKING_UNRESOLVED' })
  })
})

describe('inference resistance at admission', () => {
  test('denied before the upstream runs, naming the rule', async () => {
    await expect(run("SELECT id FROM customers WHERE ssn LIKE '123%'", [T('ID')], [])).rejects.toMatchObject({
      code: 'SLUICE_MASKING_INFERENCE',
      message: expect.stringMatching(/^denied by masking rule pii: WHERE matches analytics\.public\.customers\.ssn against a pattern/)
    })
  })
  test('equality on a deterministic token is allowed; exempt roles may filter', async () => {
    await expect(run("SELECT id FROM customers WHERE phone = '555'", [T('ID')], [['1'], ['2']])).resolves.toBeDefined()
    await expect(run("SELECT id FROM customers WHERE ssn LIKE '1%'", [T('ID')], [['1'], ['2']], { roles: ['support'] })).resolves.toBeDefined()
  })
})

describe('value detectors on uncovered columns', () => {
  test('mask findings and count them per detector', async () => {
    const { rows, trip } = await run('SELECT note FROM tickets', [T('NOTE')], [['mail bob@example.com'], ['nothing here']])
    expect(rows).toEqual([['mail [redacted:email]'], ['nothing here']])
    expect(trip.maskedColumns).toEqual([expect.objectContaining({ column: 'NOTE', rule: 'detector:email', values: 1, action: 'masked' })])
  })
  test('a flag-only connection reports without changing values', async () => {
    const { rows, trip } = await run('SELECT note FROM tickets', [T('NOTE')], [['ssn 123-45-6789'], ['x']], { connection: 'sf-flag' })
    expect(rows[0]).toEqual(['ssn 123-45-6789'])
    expect(trip.maskedColumns).toEqual([expect.objectContaining({ rule: 'detector:ssn', action: 'flagged', values: 1 })])
  })
  test('detectors can be turned off', async () => {
    const { rows } = await run('SELECT note FROM tickets', [T('NOTE')], [['bob@example.com'], ['x']], { settings: { detectors: { mode: 'off' } } })
    expect(rows[0]).toEqual(['bob@example.com'])
  })
})

describe('canary: never in any byte, in any encoding, for a masked role', () => {
  const encodings = (s: string): string[] => [
    s, s.toUpperCase(), s.toLowerCase(), [...s].reverse().join(''),
    Buffer.from(s).toString('hex'), Buffer.from(s).toString('hex').toUpperCase(), Buffer.from(s).toString('base64').slice(0, 12)
  ]
  const queries = [
    'SELECT * FROM customers',
    'SELECT ssn, email FROM customers',
    'SELECT LOWER(ssn) AS s, REVERSE(email) AS e FROM customers',
    'WITH c AS (SELECT ssn AS x FROM customers) SELECT x FROM c',
    'SELECT OBJECT_CONSTRUCT(*) AS o FROM customers',
    'SELECT ARRAY_AGG(ssn) AS a FROM customers'
  ]
  const CUSTOMERS = ['ID', 'NAME', 'EMAIL', 'SSN', 'PHONE']
  test.each(queries)('%s', async (sql) => {
    const names = sql === 'SELECT * FROM customers' ? CUSTOMERS : sql.includes('ssn, email') ? ['SSN', 'EMAIL'] : sql.includes('LOWER') ? ['S', 'E'] : sql.includes('OBJECT') ? ['O'] : sql.includes('ARRAY') ? ['A'] : ['X']
    const value = (n: string): unknown => (n === 'ID' ? '1' : n === 'NAME' ? 'Ann' : n === 'O' ? JSON.stringify({ SSN: CANARY }) : n === 'A' ? JSON.stringify([CANARY]) : CANARY)
    const row = names.map(value)
    const { rows } = await run(sql, names.map((n) => ({ name: n, type: n === 'O' ? 'OBJECT' : n === 'A' ? 'ARRAY' : 'TEXT' })), [row, row])
    const bytes = JSON.stringify(rows)
    for (const e of encodings(CANARY)) expect(bytes).not.toContain(e)
    // Exempt from `pii`: the role sees its columns in clear, inside whole-row objects too (each
    // field is masked by its own rule, so the token-masked phone would still be masked there).
    const clear = await run(sql, names.map((n) => ({ name: n, type: n === 'O' ? 'OBJECT' : n === 'A' ? 'ARRAY' : 'TEXT' })), [row, row], { roles: ['support'] })
    expect(JSON.stringify(clear.rows)).toContain(CANARY)
  })
})

describe('statements lineage cannot see into', () => {
  test('a procedure call may return any table: masked while rules are in force', async () => {
    const { rows, trip } = await run('CALL export_customers()', [T('EMAIL')], [[CANARY], ['x']])
    expect(rows).toEqual([['****'], ['****']])
    expect((trip.maskedColumns?.[0] as { reason?: string }).reason).toMatch(/not analysable/)
  })
  test('SHOW / DESCRIBE return metadata, not values: not failed closed', async () => {
    const { rows } = await run('DESCRIBE TABLE customers', [T('name'), T('type')], [['SSN', 'VARCHAR'], ['EMAIL', 'VARCHAR']])
    expect(rows).toEqual([['SSN', 'VARCHAR'], ['EMAIL', 'VARCHAR']])
  })
})

describe('routes around the masker are refused', () => {
  test.each([
    'COPY INTO @my_stage FROM customers',
    "COPY INTO @my_stage FROM (SELECT ssn FROM customers)",
    'MERGE INTO archive a USING customers c ON a.id = c.id WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (c.id, c.ssn)',
    'CREATE TABLE leak CLONE customers'
  ])('%s', async (sql) => {
    await expect(run(sql, [], [])).rejects.toMatchObject({ code: 'SLUICE_MASKING_INFERENCE' })
  })
  test('a role exempt from one rule is still refused while another rule guards the table; a table without rules is not', async () => {
    await expect(run('COPY INTO @my_stage FROM customers', [], [], { roles: ['support', 'agent'] })).rejects.toMatchObject({ code: 'SLUICE_MASKING_INFERENCE' })
    await expect(run('COPY INTO @my_stage FROM tickets', [], [])).resolves.toBeDefined()
  })
})

test('a lineage walk that fails refuses statements touching masked data (fail closed)', () => {
  const stage = createMaskStage({ rules: () => rules, schemaOf: () => { throw new RangeError('catalogue unavailable') } })
  const sql = 'SELECT id FROM customers'
  const st = statement(sql)
  const admission = { analysis: analyzer.analyze(sql, 'snowflake', st.connection.defaults), decision: { effect: 'allow' as const, ruleId: 'x', reason: 'x', limits: {} } }
  expect(() => stage.check(st, admission)).toThrow(/lineage failed: catalogue unavailable/)
})
