// SLUICE_* environment variables override the file, so one image runs anywhere (12-factor).
// The list is explicit — every variable is documented in .env.example — rather than a
// generic path encoding that would be easy to mistype and hard to discover.
import { ERR_CONFIG_INVALID } from '../errors.js'

type Coerce = (value: string, variable: string) => unknown

const asString: Coerce = (v) => v
const asList: Coerce = (v) => v.split(',').map((s) => s.trim()).filter((s) => s !== '')
const asInteger: Coerce = (v, variable) => {
  if (!/^\d+$/.test(v)) throw new ERR_CONFIG_INVALID(`${variable}: must be an integer, got "${v}"`)
  return Number(v)
}
const asBoolean: Coerce = (v, variable) => {
  if (v === 'true' || v === '1') return true
  if (v === 'false' || v === '0') return false
  throw new ERR_CONFIG_INVALID(`${variable}: must be true or false, got "${v}"`)
}

/** variable → [config path, coercion]. Later entries win when two are set (SLUICE_STORE_URL over DATABASE_URL). */
export const ENV_OVERRIDES: ReadonlyArray<readonly [string, readonly string[], Coerce]> = [
  ['SLUICE_HOST', ['listen', 'host'], asString],
  ['SLUICE_PORT', ['listen', 'port'], asInteger],
  ['SLUICE_TRUST_PROXY', ['listen', 'trustProxy'], asBoolean],
  ['SLUICE_LOG_LEVEL', ['log', 'level'], asString],
  ['DATABASE_URL', ['store', 'url'], asString],
  ['SLUICE_STORE_URL', ['store', 'url'], asString],
  ['SLUICE_DATA_DIR', ['store', 'dataDir'], asString],
  ['SLUICE_OIDC_ISSUER', ['identity', 'issuer'], asString],
  ['SLUICE_OIDC_AUDIENCE', ['identity', 'audience'], asList],
  ['SLUICE_OIDC_GROUPS_CLAIM', ['identity', 'groupsClaim'], asString],
  ['SLUICE_POLICIES_DIR', ['policies', 'directory'], asString],
  ['SLUICE_SECRETS_KEY', ['secrets', 'key'], asString]
]

export function applyEnvOverrides (config: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const result = structuredClone(config)
  for (const [variable, path, coerce] of ENV_OVERRIDES) {
    const value = env[variable]
    if (value === undefined || value === '') continue
    setPath(result, path, coerce(value, variable))
  }
  return result
}

function setPath (target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (next === null || typeof next !== 'object') node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1] as string] = value
}
