// The analysis contract: what the policy stage (and later masking) knows about a request's SQL.
// Produced by a real multi-dialect parser; what it cannot read is `unknown`, never guessed.

import type { Reread } from './rereads.js'

export type Dialect = 'snowflake' | 'bigquery' | 'postgres'

export type StatementKind =
  | 'select' | 'insert' | 'update' | 'delete' | 'merge'
  | 'ddl' | 'dcl'
  | 'copy' // COPY INTO, UNLOAD, EXPORT DATA, PUT/GET file transfers
  | 'call' // CALL, EXECUTE IMMEDIATE, EXECUTE
  | 'transaction' | 'session' // session: USE, SET, ALTER SESSION, DECLARE
  | 'show' // SHOW, DESCRIBE, EXPLAIN
  | 'notify' // PostgreSQL LISTEN, UNLISTEN, NOTIFY
  | 'scripting' // BEGIN … END blocks, procedural scripts
  | 'unknown'

export interface StatementAnalysis {
  kind: StatementKind
  /** The statement's own text, as split by the parser. */
  text: string
  /** Fully qualified (connection defaults applied), lower-cased unless quoted, dot-joined. */
  tablesRead: string[]
  tablesWritten: string[]
  /** Function names called, lower-cased. */
  functions: string[]
  /** For select-like statements: whether the outermost query already has a LIMIT / TOP / FETCH. */
  hasLimit: boolean
  /** Why the parser could not read the statement, when kind is `unknown`. */
  parseError?: string
  /**
   * Tables and table functions it reads that re-read results or other sessions' SQL
   * (RESULT_SCAN, QUERY_HISTORY, INFORMATION_SCHEMA.JOBS, anonymous datasets…): see rereads.ts.
   */
  rereads?: Reread[]
  /**
   * Functions it calls that act rather than read (SYSTEM$CANCEL_QUERY, pg_terminate_backend,
   * set_config…): see system-functions.ts. They make a select (or session) statement a `call`.
   */
  acting?: string[]
  /**
   * Set when the parser could not read the text at all and it is not a statement Sluice knows
   * the parser lacks (see unsupported.ts): a syntax error, answered as one and never run.
   * Absent for `unknown` statements the parser read but the analyser could not classify, and
   * for valid warehouse statements the parser does not support; the policy decides those.
   */
  unparsed?: ParseFailure
}

/** Where and why the parser stopped reading a statement. */
export interface ParseFailure {
  /** The parser's own words, without its "sql parser error:" prefix and its position. */
  message: string
  /** 1-based line and column where the parser stopped (the end of the text at end of input). */
  line: number
  column: number
}

export interface Analysis {
  dialect: Dialect
  statements: StatementAnalysis[]
  /**
   * Set when the statements' texts are not each exactly one statement: `unread` — the parser could
   * not read the input (a syntax error, a statement it lacks), so the one `unknown` statement is
   * the whole input, however many statements that holds; `empty` — the input holds no statement
   * (blanks, comments, semicolons), which the one `unknown` statement stands for; `unattributed`
   * — the parser read the statements, but where one ends in the text had to be guessed (split.ts).
   * Absent: each statement's `text` is exactly one statement of the input, in order: what a front
   * end that runs a request statement by statement sends, so the policy decided on what runs.
   */
  undelimited?: 'unread' | 'empty' | 'unattributed'
}

/** Connection defaults used to qualify bare table names. */
export interface QualifyDefaults {
  /** Snowflake / Postgres database, BigQuery project. */
  database?: string
  /** Snowflake / Postgres schema, BigQuery dataset. */
  schema?: string
}

export interface SqlAnalyzer {
  analyze (sql: string, dialect: Dialect, defaults?: QualifyDefaults): Analysis
}
