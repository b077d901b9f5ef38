// A statement the warehouse refused, with the warehouse's own text kept apart until the pipeline
// released it (it can quote cell values).
import { ERR_SNOWFLAKE_STATEMENT_FAILED } from '../../errors.js'

export type StatementFailedError = Error & {
  snowflakeCode?: string | undefined
  sqlState?: string | undefined
  upstreamQueryId?: string | undefined
  /** The warehouse's own text, until the pipeline released it; absent on a released error. */
  upstream?: { connection: string, message: string }
}

/**
 * A statement the warehouse refused. Its own wording can quote cell values, so it is kept apart
 * (`upstream`, not enumerable: loggers and serialisers skip it) for the front end to
 * release through the pipeline, which rebuilds the error with the released text.
 */
export function statementFailed (connection: string, message: string, codes: { snowflakeCode?: string | undefined, sqlState?: string | undefined, upstreamQueryId?: string | undefined }, released = false): StatementFailedError {
  const err = new ERR_SNOWFLAKE_STATEMENT_FAILED(connection, message) as unknown as StatementFailedError
  err.snowflakeCode = codes.snowflakeCode
  err.sqlState = codes.sqlState
  err.upstreamQueryId = codes.upstreamQueryId
  if (!released) Object.defineProperty(err, 'upstream', { value: { connection, message }, enumerable: false })
  return err
}
