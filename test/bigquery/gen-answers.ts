// Generated BigQuery upstream answers for the sliced-rows tests: a random schema (nested
// RECORDs, REPEATED fields, every scalar kind), f/v rows whose values hold quotes, escapes,
// brackets, unicode and nulls, and an answer around them whose keys come in any order and
// whose text is spaced in any of the ways JSON allows.
import type { TableCell, TableFieldSchema, TableRow } from '../../src/warehouses/bigquery/wire.js'

export { random } from '../support/seeded-random.js'

const PIECES = ['a', 'Z', '0', ' ', '"', '\\', '\\"', '"]', '],[', '[', ']', '{', '}', '},{', '{"f":[', ',', ':', '\n', '\t', '\u0000', '\u001f', 'é', '日本', '😀', '\u2028', 'null', '\\u0041', '"rows":[']

export function text (next: () => number): string {
  let s = ''
  const n = Math.floor(next() * 10)
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)] as string
  return s
}

const pick = <T>(next: () => number, list: readonly T[]): T => list[Math.floor(next() * list.length)] as T

const SCALARS = ['STRING', 'INTEGER', 'FLOAT', 'BOOLEAN', 'TIMESTAMP', 'BYTES', 'JSON', 'DATE', 'NUMERIC'] as const

export function fieldsOf (next: () => number, depth = 0): TableFieldSchema[] {
  return Array.from({ length: 1 + Math.floor(next() * 4) }, (_, i) => {
    const mode = pick(next, ['NULLABLE', 'NULLABLE', 'REQUIRED', 'REPEATED'] as const)
    if (depth < 2 && next() < 0.2) return { name: `r${depth}_${i}`, type: 'RECORD', mode, fields: fieldsOf(next, depth + 1) }
    return { name: `c${depth}_${i}`, type: pick(next, SCALARS), mode }
  })
}

function scalar (next: () => number, type: string): unknown {
  // Now and then a value the type cannot carry: encoded as null or the zero value.
  if (next() < 0.05) return text(next)
  switch (type) {
    case 'INTEGER': return String(Math.floor((next() - 0.5) * 1e12))
    case 'NUMERIC': return `${Math.floor(next() * 1e6)}.${Math.floor(next() * 100)}`
    case 'FLOAT': return pick(next, ['1.5', '-0.25', 'NaN', 'Infinity', String(next() * 1e9), '1e-7'])
    case 'BOOLEAN': return pick(next, ['true', 'false'])
    case 'TIMESTAMP': return String(Math.floor(next() * 2e15))
    case 'BYTES': return Buffer.from(text(next)).toString('base64')
    case 'DATE': return '2024-02-29'
    case 'JSON': return JSON.stringify({ k: text(next), n: [1, null, { x: text(next) }] })
    default: return text(next)
  }
}

function cellValue (next: () => number, field: TableFieldSchema): unknown {
  const one = (): unknown => field.type === 'RECORD' ? rowOf(next, field.fields ?? []) : scalar(next, field.type)
  if (field.mode === 'REPEATED') return Array.from({ length: Math.floor(next() * 3) }, (): TableCell => ({ v: one() }))
  if (field.mode !== 'REQUIRED' && next() < 0.2) return null
  return one()
}

export function rowOf (next: () => number, fields: TableFieldSchema[]): TableRow {
  return { f: fields.map((field) => ({ v: cellValue(next, field) })) }
}

/** An upstream answer: its fields, rows, and the object the rows sit in (keys in any order). */
export function answerOf (next: () => number, maxRows = 60): { fields: TableFieldSchema[], answer: Record<string, unknown> } {
  const fields = fieldsOf(next)
  const rows = Array.from({ length: Math.floor(next() * maxRows) }, () => rowOf(next, fields))
  const members: Array<[string, unknown]> = [
    ['kind', 'bigquery#queryResponse'],
    ['jobReference', { projectId: 'p', jobId: `job_${text(next)}`, location: 'US' }],
    ['schema', { fields }],
    ['totalRows', String(rows.length + Math.floor(next() * 3))],
    ['jobComplete', true],
    ['rows', rows],
    ['cacheHit', next() < 0.5],
    // A nested member named rows is not the answer's rows.
    ['statistics', { rows: [{ f: [] }], text: text(next) }],
    [`odd ${text(next)}`, [text(next), { '"rows"': [] }]]
  ]
  if (next() < 0.6) members.push(['pageToken', `tok${Math.floor(next() * 1000)}`])
  for (let i = members.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    ;[members[i], members[j]] = [members[j] as [string, unknown], members[i] as [string, unknown]]
  }
  return { fields, answer: Object.fromEntries(members) }
}

/** The answer as an upstream might space it. */
export function bodyOf (answer: unknown, next: () => number): string {
  const indent = pick(next, [undefined, undefined, 1, 2, '\t'])
  const space = pick(next, ['', '', ' ', '\n', '\r\n\t '])
  return `${space}${JSON.stringify(answer, null, indent)}${space}`
}
