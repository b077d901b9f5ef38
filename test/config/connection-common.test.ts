// Settings every connection kind shares (masking and recording overrides) are validated by the
// configuration schema and accepted by each warehouse's own check of its kind's keys.
import { describe, expect, it } from 'vitest'
import { validateConfig } from '../../src/config/load.js'
import { bigquerySettings } from '../../src/warehouses/bigquery/connections.js'
import { snowflakeSettings } from '../../src/warehouses/snowflake/config.js'

const common = { masking: { unresolved: 'deny' }, recording: { captureResults: false, resultCaptureBytes: 4096 } }

describe('connection settings shared by every kind', () => {
  it('are accepted by the Snowflake and BigQuery checks', () => {
    const config = validateConfig({
      connections: {
        sf: { kind: 'snowflake', account: 'acme', user: 'svc', password: 'pw', ...common },
        bq: { kind: 'bigquery', project: 'acme-analytics', url: 'http://127.0.0.1:9050', ...common }
      }
    })
    expect(() => snowflakeSettings('sf', config.connections.sf!)).not.toThrow()
    expect(() => bigquerySettings('bq', config.connections.bq!)).not.toThrow()
  })

  it('still refuse a key no kind knows', () => {
    const config = validateConfig({ connections: { sf: { kind: 'snowflake', account: 'acme', user: 'svc', password: 'pw', recordings: {} } } })
    expect(() => snowflakeSettings('sf', config.connections.sf!)).toThrow(/\/connections\/sf\/recordings is not a Snowflake connection setting/)
  })
})
