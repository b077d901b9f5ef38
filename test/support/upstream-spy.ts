// What Sluice sends to the warehouse, seen by spying on the upstream clients: tests that prove a
// refused statement never left use the list it returns (empty means nothing was sent).
import { vi } from 'vitest'
import { BigQueryUpstream } from '../../src/warehouses/bigquery/upstream.js'
import { SnowflakeUpstream } from '../../src/warehouses/snowflake/upstream.js'

/**
 * Every statement text sent upstream from now on (mocks restored first). `keep` cuts each text
 * to its first characters, for tests that send statements of megabytes.
 */
export function spySnowflakeStatements (keep?: number): string[] {
  const sent: string[] = []
  vi.restoreAllMocks()
  const query = SnowflakeUpstream.prototype.query
  vi.spyOn(SnowflakeUpstream.prototype, 'query').mockImplementation(async function (this: SnowflakeUpstream, ...args: Parameters<typeof query>) {
    sent.push(keep === undefined ? args[1].sqlText : args[1].sqlText.slice(0, keep))
    return await query.apply(this, args)
  })
  return sent
}

/** Every query (and, with `jobs`, every job configuration as JSON) sent upstream from now on. */
export function spyBigQueryCalls (options: { keep?: number, jobs?: boolean } = {}): string[] {
  const sent: string[] = []
  const cut = (text: string): string => (options.keep === undefined ? text : text.slice(0, options.keep))
  vi.restoreAllMocks()
  const queryPage = BigQueryUpstream.prototype.queryPage
  vi.spyOn(BigQueryUpstream.prototype, 'queryPage').mockImplementation(async function (this: BigQueryUpstream, ...args: Parameters<typeof queryPage>) {
    sent.push(cut(String(args[0].query)))
    return await queryPage.apply(this, args)
  })
  if (options.jobs === true) {
    const insertJob = BigQueryUpstream.prototype.insertJob
    vi.spyOn(BigQueryUpstream.prototype, 'insertJob').mockImplementation(async function (this: BigQueryUpstream, ...args: Parameters<typeof insertJob>) {
      sent.push(cut(JSON.stringify(args[0].configuration)))
      return await insertJob.apply(this, args)
    })
  }
  return sent
}
