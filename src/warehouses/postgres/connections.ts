// PostgreSQL connection settings (the kind-specific keys of a `connections.<name>` entry) and
// how a client's `dbname` selects one: the connection of that name, or the one listing it as an
// alias. Sluice logs in upstream with the connection's own URL; clients never hold it.
import { connectionSettingsCheck } from '../../config/connection-settings.js'
import type { SluiceConfig } from '../../config/types.js'
import { ERR_CONFIG_INVALID } from '../../errors.js'

export interface PostgresSettings {
  name: string
  /** postgres://user:password@host:port/database of the real database. */
  url: string
  aliases: string[]
  /** The database bare names are qualified with (default: the URL's database). */
  database: string
  /** The schema bare names are qualified with (default public). */
  schema: string
  /** Rows fetched from the upstream per Execute: the bound on what one session holds. */
  fetchRows: number
}

const settingsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    kind: { const: 'postgres' },
    url: { type: 'string', pattern: '^postgres(ql)?://' },
    default: { type: 'boolean' },
    masking: { type: 'object' },
    aliases: { type: 'array', items: { type: 'string', minLength: 1 } },
    schema: { type: 'string', minLength: 1 },
    fetchRows: { type: 'integer', minimum: 1, maximum: 100_000 }
  }
} as const

const checkSettings = connectionSettingsCheck('PostgreSQL', settingsSchema)

/** Every `kind: postgres` connection, validated; errors name `/connections/<name>/<key>`. */
export function postgresConnections (config: SluiceConfig): PostgresSettings[] {
  const out: PostgresSettings[] = []
  for (const [name, raw] of Object.entries(config.connections)) {
    if (raw.kind !== 'postgres') continue
    checkSettings(name, raw)
    const url = raw.url as string
    let database: string
    try {
      database = decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres'
    } catch {
      throw new ERR_CONFIG_INVALID(`/connections/${name}/url is not a valid URL`)
    }
    out.push({
      name,
      url,
      aliases: Array.isArray(raw.aliases) ? raw.aliases as string[] : [],
      database,
      schema: typeof raw.schema === 'string' ? raw.schema : 'public',
      fetchRows: typeof raw.fetchRows === 'number' ? raw.fetchRows : 1000
    })
  }
  return out
}

/** The connection a client's dbname names (case-insensitively, by name or alias). */
export function connectionFor (connections: readonly PostgresSettings[], dbname: string): PostgresSettings | undefined {
  const wanted = dbname.toLowerCase()
  return connections.find((c) => c.name.toLowerCase() === wanted || c.aliases.some((a) => a.toLowerCase() === wanted))
}
