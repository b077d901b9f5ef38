// Parse failures, told apart: a typo, or a statement the warehouse runs that the parser lacks.
//
// sqlparser cannot read every statement a warehouse accepts (UNDROP, PUT/GET, CREATE TASK,
// BigQuery LOAD DATA, scripting loops …; the `gap` entries of test/sql/corpus/*.yaml). Such a
// statement is not a syntax error, and answering it as one would tell the agent its valid SQL is
// wrong: the analyser reports it `unknown` with the construct it cannot read, and the policy
// decides (deny-unknown in the shipped default). Every other parse failure is `unparsed`: a syntax
// error with the parser's message and position, refused without running.
//
// The constructs are matched on the statement the parser stopped in (between top-level `;`), or
// for scripting blocks on the input's first statement; the match only chooses the wording of a
// refusal, never what runs.
import type { Dialect, ParseFailure } from './types.js'

interface Construct {
  /** Tested against the upper-cased head of the statement (comments removed, spaces collapsed). */
  head?: RegExp
  /** Tested against the statement text as written, for constructs that are not at its head. */
  body?: RegExp
  /** Tested against the head of the whole input: blocks whose inner `;` split them. */
  block?: RegExp
  /** What the parser cannot read, for the refusal; `$1 $2` name the verb and object type. */
  what: string
}

// CREATE / ALTER / DROP / DESCRIBE of object types the parser does not know, after modifiers.
const MODIFIERS = '(?:OR REPLACE |OR ALTER |SECURE |TEMP |TEMPORARY |TRANSIENT |VOLATILE |EXTERNAL |IF NOT EXISTS |IF EXISTS )*'
const objects = (verbs: string, types: string): RegExp => new RegExp(`^(${verbs}) ${MODIFIERS}(${types})\\b`)

const CONSTRUCTS: Record<Dialect, Construct[]> = {
  snowflake: [
    { head: /^UNDROP\b/, what: 'UNDROP' },
    { head: /^(PUT|GET)\b/, what: '$1 file transfers' },
    { head: /^UNSET\b/, what: 'UNSET' },
    { head: objects('CREATE|ALTER|DROP|DESCRIBE|DESC', 'WAREHOUSE|TASK|STREAM|PIPE|ACCOUNT|PROCEDURE|NETWORK POLICY|TAG|ALERT|RESOURCE MONITOR|(?:STORAGE |API |NOTIFICATION |SECURITY )?INTEGRATION|SHARE|MASKING POLICY|ROW ACCESS POLICY|EXTERNAL TABLE|FUNCTION'), what: '$1 $2' },
    { block: /^DECLARE\b/, what: 'Snowflake Scripting blocks (DECLARE … BEGIN … END)' }
  ],
  bigquery: [
    { head: /^LOAD DATA\b/, what: 'LOAD DATA' },
    { head: /^EXPORT MODEL\b/, what: 'EXPORT MODEL' },
    { head: /^(?:GRANT|REVOKE) `/, what: 'GRANT and REVOKE of IAM roles' },
    { head: objects('CREATE|ALTER|DROP', 'MODEL|PROCEDURE|TABLE FUNCTION|ROW ACCESS POLICY|ALL ROW ACCESS POLICIES|SEARCH INDEX|VECTOR INDEX|CAPACITY|RESERVATION|ASSIGNMENT'), what: '$1 $2' },
    { head: /^ALTER (?:TABLE|VIEW|MATERIALIZED VIEW|SCHEMA)\b.*\bSET OPTIONS\b/, what: 'ALTER … SET OPTIONS' },
    { block: /^(?:WHILE|LOOP|REPEAT|FOR)\b/, what: 'scripting loops (WHILE, LOOP, REPEAT, FOR … IN)' },
    { body: /\b(?:FROM|JOIN)\s+[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+\*/i, what: 'wildcard tables written without backticks (write `dataset.events_*`)' },
    { body: /\bML\.\w+\s*\(\s*MODEL\b/i, what: 'BigQuery ML functions over a MODEL' }
  ],
  postgres: [
    { head: /^REFRESH MATERIALIZED VIEW\b/, what: 'REFRESH MATERIALIZED VIEW' },
    { head: /^(DO|CLUSTER|REINDEX)\b/, what: '$1' },
    { head: /^(?:GRANT|REVOKE) (?!ALL\b|SELECT\b|INSERT\b|UPDATE\b|DELETE\b|TRUNCATE\b|REFERENCES\b|TRIGGER\b|USAGE\b|CREATE\b|CONNECT\b|TEMP|EXECUTE\b)[\w"]+(?:\s*,\s*[\w"]+)* (?:TO|FROM)\b/, what: 'GRANT and REVOKE of role membership' }
  ]
}

const POSITION = /\s+at Line: (\d+), Column: (\d+)\s*$/

/** The parser's error, split into its message and where it stopped (the end at end of input). */
export function parseFailure (sql: string, error: string): ParseFailure {
  const text = error.replace(/^sql parser error:\s*/i, '')
  const at = POSITION.exec(text)
  if (at !== null) return { message: text.slice(0, at.index), line: Number(at[1]), column: Number(at[2]) }
  const lines = sql.split('\n')
  return { message: text, line: lines.length, column: (lines[lines.length - 1] ?? '').length + 1 }
}

/** What the parser lacks, when the failure is in a statement the warehouse runs; else undefined. */
export function unsupportedConstruct (sql: string, failure: ParseFailure, dialect: Dialect): string | undefined {
  const offset = offsetOf(sql, failure.line, failure.column)
  const { start, end } = statementAround(sql, offset, dialect)
  const statement = sql.slice(start, end)
  const head = headOf(statement, dialect)
  const first = headOf(sql.slice(0, statementAround(sql, 0, dialect).end), dialect)
  for (const c of CONSTRUCTS[dialect]) {
    const m = c.head?.exec(head)
    if (m !== null && m !== undefined) return c.what.replace(/\$(\d)/g, (_, n: string) => m[Number(n)] ?? '')
    if (c.body?.test(statement) === true || c.block?.test(first) === true) return c.what
  }
  return undefined
}

function offsetOf (sql: string, line: number, column: number): number {
  let offset = 0
  for (let l = 1; l < line; l++) {
    const next = sql.indexOf('\n', offset)
    if (next === -1) return sql.length
    offset = next + 1
  }
  return Math.min(sql.length, offset + Math.max(0, column - 1))
}

/** The statement (between top-level semicolons) that contains `offset`. */
function statementAround (sql: string, offset: number, dialect: Dialect): { start: number, end: number } {
  let start = 0
  let i = 0
  while (i < sql.length) {
    const c = sql[i] as string
    const next = sql[i + 1]
    if ((c === '-' && next === '-') || (c === '#' && dialect === 'bigquery')) {
      const eol = sql.indexOf('\n', i)
      i = eol === -1 ? sql.length : eol + 1
    } else if (c === '/' && next === '*') {
      const close = sql.indexOf('*/', i + 2)
      i = close === -1 ? sql.length : close + 2
    } else if (c === '$' && next === '$' && dialect !== 'bigquery') {
      const close = sql.indexOf('$$', i + 2)
      i = close === -1 ? sql.length : close + 2
    } else if (c === '\'' || c === '"' || c === '`') {
      i++
      while (i < sql.length && sql[i] !== c) i += sql[i] === '\\' ? 2 : 1
      i++
    } else if (c === ';') {
      if (i >= offset) return { start, end: i }
      start = i + 1
      i++
    } else {
      i++
    }
  }
  return { start, end: sql.length }
}

function headOf (statement: string, dialect: Dialect): string {
  const comments = dialect === 'bigquery' ? /--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\//g : /--[^\n]*|\/\*[\s\S]*?\*\//g
  return statement
    .replace(comments, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 400)
    .toUpperCase()
}
