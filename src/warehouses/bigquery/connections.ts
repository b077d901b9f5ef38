// BigQuery connection settings (the kind-specific keys of a `connections.<name>` entry), their
// validation, and how a request's `projects/{projectId}` selects one of several connections.
import { readFileSync } from 'node:fs'
import { connectionSettingsCheck } from '../../config/connection-settings.js'
import type { ConnectionConfig, SluiceConfig } from '../../config/types.js'
import { ERR_CONFIG_INVALID } from '../../errors.js'

export const GOOGLE_API_URL = 'https://bigquery.googleapis.com'

/** How Sluice authenticates to the upstream (the agent never holds a Google credential). */
export type UpstreamAuth =
  | { kind: 'none' }
  | { kind: 'service-account', key: ServiceAccountKey }
  | { kind: 'adc' }

export interface ServiceAccountKey {
  client_email: string
  private_key: string
  private_key_id?: string
  token_uri?: string
  [key: string]: unknown
}

export interface BigQuerySettings {
  name: string
  /** Upstream base URL without path; the REST surface is `${url}/bigquery/v2`. */
  url: string
  default: boolean
  /** The project jobs run in (and are billed to); paths naming it select this connection. */
  project: string
  /** Job location used when the client names none (e.g. US, EU, europe-west1). */
  location?: string
  /** Further project ids a client may put in its path to select this connection. */
  aliases: string[]
  auth: UpstreamAuth
  /** How long job / query ids stay bound to their caller (BigQuery keeps results ~24 h). */
  jobTtlSeconds: number
  /**
   * Rows asked for in jobs.query's answer when the client names no maxResults: that answer is
   * masked and recorded whole before it leaves, so a small one comes back soon; the client pages
   * the rest with getQueryResults at the upstream's own page size.
   */
  firstPageRows: number
}

const settingsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['project'],
  properties: {
    kind: { const: 'bigquery' },
    url: { type: 'string', pattern: '^https?://' },
    default: { type: 'boolean' },
    project: { type: 'string', pattern: '^[a-z][a-z0-9.:-]{3,62}$' },
    location: { type: 'string', minLength: 1 },
    aliases: { type: 'array', items: { type: 'string', minLength: 1 } },
    auth: { enum: ['none', 'service-account', 'adc'] },
    credentials: { type: 'string', minLength: 2 },
    keyFile: { type: 'string', minLength: 1 },
    jobTtlSeconds: { type: 'integer', minimum: 60, maximum: 7 * 86_400 },
    firstPageRows: { type: 'integer', minimum: 1, maximum: 1_000_000 }
  }
} as const

const checkSettings = connectionSettingsCheck('BigQuery', settingsSchema)

function invalid (name: string, key: string, message: string): never {
  throw new ERR_CONFIG_INVALID(`/connections/${name}${key} ${message}`)
}

function parseKey (name: string, key: string, text: string): ServiceAccountKey {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return invalid(name, key, 'is not a service-account key (JSON expected)')
  }
  const k = parsed as Partial<ServiceAccountKey>
  if (typeof k.client_email !== 'string' || typeof k.private_key !== 'string') {
    return invalid(name, key, 'is not a service-account key: client_email and private_key are required')
  }
  return k as ServiceAccountKey
}

/** Validates one connection's BigQuery keys; errors name `/connections/<name>/<key>`. */
export function bigquerySettings (name: string, raw: ConnectionConfig, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): BigQuerySettings {
  checkSettings(name, raw)
  const c = raw as Record<string, unknown> & ConnectionConfig
  const str = (key: string): string | undefined => typeof c[key] === 'string' ? c[key] : undefined
  const credentials = str('credentials')
  const keyFile = str('keyFile')
  if (credentials !== undefined && keyFile !== undefined) invalid(name, '/credentials', 'and keyFile are alternatives: set one')

  let key: ServiceAccountKey | undefined
  if (credentials !== undefined) key = parseKey(name, '/credentials', credentials)
  if (keyFile !== undefined) {
    let text: string
    try {
      text = readFile(keyFile)
    } catch (err) {
      return invalid(name, '/keyFile', `cannot be read: ${(err as Error).message}`)
    }
    key = parseKey(name, '/keyFile', text)
  }
  // Default: a key when one is given; none for an emulator URL; else the platform's ambient
  // credentials (workload identity, metadata server).
  const mode = str('auth') ?? (key !== undefined ? 'service-account' : c.url !== undefined ? 'none' : 'adc')
  let auth: UpstreamAuth
  if (mode === 'service-account') {
    if (key === undefined) return invalid(name, '/auth', 'is service-account but neither credentials nor keyFile is set')
    auth = { kind: 'service-account', key }
  } else {
    if (key !== undefined) invalid(name, '/auth', `is ${mode} but a service-account key is configured`)
    auth = { kind: mode as 'none' | 'adc' }
  }
  return {
    name,
    url: (c.url ?? GOOGLE_API_URL).replace(/\/+$/, ''),
    default: c.default,
    project: str('project') ?? '',
    location: str('location'),
    aliases: Array.isArray(c.aliases) ? c.aliases as string[] : [],
    auth,
    jobTtlSeconds: typeof c.jobTtlSeconds === 'number' ? c.jobTtlSeconds : 86_400,
    firstPageRows: typeof c.firstPageRows === 'number' ? c.firstPageRows : 1_000
  }
}

/** Every BigQuery connection in the configuration, validated. */
export function bigqueryConnections (config: SluiceConfig, readFile?: (path: string) => string): BigQuerySettings[] {
  return Object.entries(config.connections)
    .filter(([, c]) => c.kind === 'bigquery')
    .map(([name, c]) => bigquerySettings(name, c, readFile))
}

/**
 * Routing: the `{projectId}` of a request path selects the connection whose `project` it is,
 * else the connection of that name or with that alias. A project id that matches nothing goes
 * to the default BigQuery connection (or the only one), whose own project then runs the job: a
 * client configured with any project id works against a single connection. Returns undefined
 * when no connection can be chosen.
 */
export function selectConnection (connections: BigQuerySettings[], projectId: string): BigQuerySettings | undefined {
  const wanted = projectId.trim().toLowerCase()
  const byProject = connections.filter((c) => c.project.toLowerCase() === wanted)
  if (byProject.length === 1) return byProject[0]
  const named = connections.find((c) => c.name.toLowerCase() === wanted || c.aliases.some((a) => a.toLowerCase() === wanted))
  if (named !== undefined) return named
  if (byProject.length > 1) return byProject.find((c) => c.default) ?? byProject[0]
  const defaults = connections.filter((c) => c.default)
  if (defaults.length === 1) return defaults[0]
  return connections.length === 1 ? connections[0] : undefined
}
