// The pieces of a held BigQuery job that need no warehouse: how long a poll may wait for a
// decision (inside the client's own timeout), and the job a held jobs.query runs as once approved.
import { describe, expect, it } from 'vitest'
import { heldWaitMs, limitedConfiguration, queryConfiguration } from '../../src/warehouses/bigquery/held.js'

describe('heldWaitMs: a wait that ends before the client\'s timeout', () => {
  const cases: Array<[string | number | undefined, number]> = [
    [undefined, 9000], ['10000', 9000], [10_000, 9000], ['2000', 1800], ['500', 450], ['0', 0],
    ['120000', 59_000], ['60000', 59_000], ['abc', 9000], ['-5', 9000]
  ]
  it.each(cases)('timeoutMs %s → waits at most %d ms', (timeoutMs, wait) => {
    expect(heldWaitMs(timeoutMs)).toBe(wait)
  })
  it('never waits as long as the client asked, and never longer than a minute', () => {
    for (let ms = 1; ms <= 200_000; ms = Math.ceil(ms * 1.7)) {
      const wait = heldWaitMs(ms)
      expect(wait).toBeLessThan(ms)
      expect(wait).toBeLessThanOrEqual(60_000)
    }
  })
})

describe('queryConfiguration: a held jobs.query as the job it runs as', () => {
  it('keeps the text, binds and the settings a query job has; drops the call\'s own options', () => {
    const queryParameters = [{ name: 'id', parameterType: { type: 'INT64' }, parameterValue: { value: '7' } }]
    const configuration = queryConfiguration({
      query: 'SELECT @id', useLegacySql: false, queryParameters, parameterMode: 'NAMED', defaultDataset: { datasetId: 'crm' },
      maximumBytesBilled: '1000', useQueryCache: false, labels: { team: 'a' }, jobTimeoutMs: '5000',
      timeoutMs: 10_000, maxResults: 5, location: 'US', formatOptions: { useInt64Timestamp: true }
    })
    expect(configuration).toEqual({
      query: { query: 'SELECT @id', useLegacySql: false, queryParameters, parameterMode: 'NAMED', defaultDataset: { datasetId: 'crm' }, maximumBytesBilled: '1000', useQueryCache: false },
      labels: { team: 'a' },
      jobTimeoutMs: '5000'
    })
  })

  it('runs under the rule\'s limits, the stricter of the two', () => {
    const limited = limitedConfiguration({ query: { query: 'SELECT 1', maximumBytesBilled: '5000' }, jobTimeoutMs: '1000' }, { maximumBytesBilled: 100, jobTimeoutMs: 60_000 })
    expect(limited).toEqual({ query: { query: 'SELECT 1', maximumBytesBilled: '100' }, jobTimeoutMs: '1000' })
  })
})
