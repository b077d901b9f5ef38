// Kind-specific connection keys are validated by each warehouse with its own schema; this is
// the one place that compiles such a schema and words its errors, so every front end names
// the offending key the same way (`/connections/<name>/<key>`).
import { Ajv } from 'ajv'
import { ERR_CONFIG_INVALID } from '../errors.js'
import type { ConnectionConfig } from './types.js'

const ajv = new Ajv({ allErrors: true })

/** Returns a check that throws ERR_CONFIG_INVALID listing every problem of one connection. */
export function connectionSettingsCheck (kindLabel: string, schema: object): (name: string, raw: ConnectionConfig) => void {
  const validate = ajv.compile(schema)
  return function checkConnectionSettings (name, raw) {
    // Settings every kind shares are validated by the configuration schema itself.
    const { masking: _masking, recording: _recording, description: _description, ...own } = raw
    if (validate(own)) return
    const problems = (validate.errors ?? []).map((e) => {
      const unknown = e.keyword === 'additionalProperties'
      const key = unknown ? `/${String(e.params.additionalProperty)}` : e.instancePath
      return `/connections/${name}${key} ${unknown ? `is not a ${kindLabel} connection setting` : String(e.message)}`
    })
    throw new ERR_CONFIG_INVALID(problems.join('; '))
  }
}
