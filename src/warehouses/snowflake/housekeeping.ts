// Statements a client sends about its own Sluice session, which Sluice answers itself instead
// of sending them upstream (where they would act on Sluice's upstream session). Only the exact
// shape Snowpark sends on close is recognised; any other use of SYSTEM$CANCEL_ALL_QUERIES goes
// through the pipeline, where the analyzer makes it a call (src/sql/system-functions.ts).
import { syntheticResult, type StoredResult } from './manifest.js'

const CANCEL_ALL = /^\s*select\s+system\$cancel_all_queries\s*\(\s*(\d{1,16})\s*\)\s*;?\s*$/i

/** `select system$cancel_all_queries(<id>)` naming this session's own id. */
export function cancelsOwnSession (sql: string, sessionId: number): boolean {
  const match = CANCEL_ALL.exec(sql)
  return match !== null && Number(match[1]) === sessionId
}

/** Snowflake's answer: one text column named after the call, "<n> cancelled.". */
export function cancelAllResult (sessionId: number, cancelled: number): StoredResult {
  const name = `SYSTEM$CANCEL_ALL_QUERIES(${sessionId})`
  const rowtype = [{ name, type: 'text', nullable: true, length: 16777216, byteLength: 16777216, precision: null, scale: null, database: '', schema: '', table: '' }]
  return syntheticResult(rowtype, { columns: [{ name, type: 'TEXT' }] }, [[`${cancelled} cancelled.`]], { statementTypeId: 4096 })
}
