// The BigQuery codec of a statement's run (src/pipeline/run.ts): its upstream calls, and the
// rule's timeout in BigQuery's own words.
import { ERR_STATEMENT_TIMEOUT } from '../../errors.js'
import type { StatementRun } from '../../pipeline.js'
import { releaseThrown } from './released-errors.js'

/**
 * One upstream call of the run, in its span and timing: a failure leaves with released text,
 * one after the rule's timeout ran out as BigQuery's timeout error. The run's signal is not
 * handed on: BigQuery is asked to answer "not done yet" by the deadline (timeoutMs), and a
 * jobs.query cut off before its answer would lose the job id Sluice cancels.
 */
export async function upstreamCall<T> (run: StatementRun, call: () => Promise<T>): Promise<T> {
  try {
    return await run.upstream(async () => await call(), (err) => releaseThrown(run, err))
  } catch (err) {
    throw err instanceof ERR_STATEMENT_TIMEOUT && run.expired() ? jobTimedOut(run) : err
  }
}

/** BigQuery's own answer for a job past its timeout: 400 `timeout`, which clients do not retry. */
export function jobTimedOut (run: StatementRun): Error {
  const err = run.timedOut() as Error & { statusCode: number, reason: string }
  err.statusCode = 400
  err.reason = 'timeout'
  return err
}
