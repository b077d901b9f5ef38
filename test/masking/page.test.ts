// The page masker on nested results: BigQuery RECORD and REPEATED columns (rules on a field of
// a record, on a REPEATED column, on fields of a repeated record), semi-structured JSON paths,
// shapes kept valid, and a table read by `SELECT *` without a catalogue (tabledata.list).
import { beforeAll, describe, expect, test } from 'vitest'
import { createMaskStage } from '../../src/masking/stage.js'
import type { Admission, ColumnMeta, ResultSchema, Statement } from '../../src/pipeline/types.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'
import type { SqlAnalyzer } from '../../src/sql/types.js'

const T = 'proj.crm'
const rules = parsePolicySet([{
  name: 'bq.yaml',
  text: `
version: 1
masking:
  - { id: contact, columns: ['${T}.customers.email'], function: email }
  - { id: nested, columns: ['${T}.profiles.address.ssn', '${T}.profiles.phones', '${T}.profiles.cards.number'], function: last4 }
  - { id: holder, columns: ['${T}.profiles.cards.holder'], function: redact }
  - { id: json, columns: ['${T}.events.payload.user.email'], function: redact }
`
}]).masking

let analyzer: SqlAnalyzer
beforeAll(async () => { analyzer = await createSqlAnalyzer() })

const PROFILES: ColumnMeta[] = [
  { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
  { name: 'address', type: 'RECORD', fields: [{ name: 'street', type: 'STRING' }, { name: 'ssn', type: 'STRING' }, { name: 'zip', type: 'INTEGER' }] },
  { name: 'phones', type: 'STRING', mode: 'REPEATED' },
  { name: 'cards', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'holder', type: 'STRING' }, { name: 'number', type: 'STRING', mode: 'REQUIRED' }] }
]

function masked (sql: string, schema: ResultSchema, rows: unknown[][]): { rows: unknown[][], counts: unknown } {
  const stage = createMaskStage({ rules: () => rules })
  const statement: Statement = {
    requestId: 'r', frontEnd: 'bigquery', sql, client: {},
    principal: { subject: 'a', type: 'human', groups: [], roles: ['agent'] } as unknown as Statement['principal'],
    connection: { name: 'bq', kind: 'bigquery', defaults: { database: 'proj', schema: 'crm' } }
  }
  const admission: Admission = { analysis: analyzer.analyze(sql, 'bigquery', statement.connection.defaults), decision: { effect: 'allow', ruleId: 'x', reason: 'x', limits: {} } }
  stage.check(statement, admission)
  const plan = stage.plan(statement, admission, schema)
  const page = stage.mask(plan, { rows })
  return { rows: page.rows, counts: plan.counts }
}

const ROW = [
  '7',
  { street: '1 Main St', ssn: '123-45-6789', zip: '75001' },
  ['+33 1 23 45 67 89', '+1 415 555 0100'],
  [{ holder: 'Ann Lee', number: '4111111111111234' }, { holder: 'Bo Li', number: '5500000000000004' }]
]

describe('BigQuery RECORD / REPEATED', () => {
  test('SELECT * over a table without a catalogue (tabledata.list) masks nested fields and keeps shapes', () => {
    const { rows, counts } = masked(`SELECT * FROM \`${T}.profiles\``, { columns: PROFILES }, [structuredClone(ROW)])
    expect(rows[0]).toEqual([
      '7',
      { street: '1 Main St', ssn: 'XXXXX6789', zip: '75001' },
      ['XXXXX7 89', 'XXXXX0100'], // the last four characters, separators included
      [{ holder: '****', number: 'XXXXX1234' }, { holder: '****', number: 'XXXXX0004' }]
    ])
    expect(counts).toEqual(expect.arrayContaining([
      expect.objectContaining({ column: 'address.ssn', rule: 'nested', values: 1 }),
      expect.objectContaining({ column: 'phones', rule: 'nested', values: 1 }),
      expect.objectContaining({ column: 'cards.number', rule: 'nested', values: 2 }),
      expect.objectContaining({ column: 'cards.holder', rule: 'holder', values: 2 })
    ]))
  })

  test('a field selected alone, and a REPEATED column nulled, stay valid', () => {
    const { rows } = masked(`SELECT address.ssn AS s, phones FROM ${T}.profiles`, {
      columns: [{ name: 's', type: 'STRING' }, { name: 'phones', type: 'STRING', mode: 'REPEATED' }]
    }, [['123-45-6789', null]])
    expect(rows[0]).toEqual(['XXXXX6789', []])
  })

  test('a value computed from a record holding a masked field is masked whole', () => {
    const { rows } = masked(`SELECT TO_JSON_STRING(address) AS a FROM ${T}.profiles`, { columns: [{ name: 'a', type: 'STRING' }] }, [['{"ssn":"123-45-6789"}']])
    expect(rows[0]?.[0]).not.toContain('123-45')
  })
})

describe('semi-structured paths', () => {
  test('a JSON column keeps its other keys; the masked path is masked at any array depth', () => {
    const payload = JSON.stringify({ user: [{ email: 'a@b.co', name: 'A' }], kind: 'signup' })
    const { rows } = masked(`SELECT payload FROM ${T}.events`, { columns: [{ name: 'payload', type: 'JSON' }] }, [[payload]])
    expect(JSON.parse(String(rows[0]?.[0]))).toEqual({ user: [{ email: '****', name: 'A' }], kind: 'signup' })
  })

  test('the masked path selected alone', () => {
    const { rows } = masked(`SELECT JSON_VALUE(payload.user.email) AS e FROM ${T}.events`, { columns: [{ name: 'e', type: 'STRING' }] }, [['a@b.co']])
    expect(rows[0]).toEqual(['****'])
  })
})

test('detectors do not touch rule-covered columns, and do scan uncovered nested strings', () => {
  const { rows, counts } = masked(`SELECT email, notes FROM ${T}.customers`, {
    columns: [{ name: 'email', type: 'STRING' }, { name: 'notes', type: 'RECORD', mode: 'REPEATED', fields: [{ name: 'text', type: 'STRING' }] }]
  }, [['ann@example.com', [{ text: 'ssn 123-45-6789' }, { text: 'ok' }]]])
  expect(rows[0]).toEqual(['XXXXX@example.com', [{ text: 'ssn [redacted:ssn]' }, { text: 'ok' }]])
  expect(counts).toEqual(expect.arrayContaining([expect.objectContaining({ column: 'notes', rule: 'detector:ssn', values: 1 })]))
})
