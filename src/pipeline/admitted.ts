// A statement admitted by one replica, as the store keeps it so that any replica can serve its
// later pages (a poll, a partition, a chunk, a BigQuery page) under the same decision. Only what
// masking and recording need is kept: the statement without its bind values (the trail records
// those, redacted by rule; a handle row has no business holding them) and the decision as it
// was made. The analysis is not stored: it is made again from the text on the replica that
// needs it (Pipeline.resume), off the event loop, and comes out the same for the same text and
// connection defaults; the decision is never made again, so a policy change between the
// statement and its last page cannot change what the client was allowed.
import type { Principal } from '../identity/principal.js'
import type { Decision } from '../policy/types.js'
import type { Admission, Statement } from './types.js'

export interface AdmittedRecord {
  statement: Statement
  decision: Decision
  /** The admitted statement's recording id, when its admitted event was committed. */
  statementId?: string
}

export function admittedRecord (statement: Statement, admission: Admission): AdmittedRecord {
  const { params: _binds, ...kept } = statement
  const record: AdmittedRecord = { statement: kept, decision: admission.decision }
  if (admission.statementId !== undefined) record.statementId = admission.statementId
  return record
}

/** JSON text for a store column (`text` or `jsonb` via `$n::text::jsonb`). */
export function encodeAdmitted (record: AdmittedRecord): string {
  return JSON.stringify(record)
}

/**
 * Accepts the text or an already parsed jsonb value; revives the principal's expiry. A parsed
 * value is the store row's own, fresh from the driver, so it is revived in place (a copy cost
 * 1.3% of the CPU at c=16); reviving it twice changes nothing.
 */
export function decodeAdmitted (stored: string | AdmittedRecord): AdmittedRecord {
  const record = (typeof stored === 'string' ? JSON.parse(stored) : stored) as AdmittedRecord
  const principal = record.statement.principal as Principal & { expiresAt: Date | string }
  principal.expiresAt = new Date(principal.expiresAt)
  return record
}
