// Which result format (Arrow or JSON) a connector client is served, by Snowflake's own rules:
// a driver that reads Arrow gets Arrow unless it asks for JSON, and the parameters that choose
// the format are honoured per statement and per session (login SESSION_PARAMETERS), the
// driver's own parameter before the general QUERY_RESULT_FORMAT:
//   Python connector and everything built on it (Snowpark, SnowSQL…)  PYTHON_CONNECTOR_QUERY_RESULT_FORMAT, default Arrow
//   JDBC   JDBC_QUERY_RESULT_FORMAT, default Arrow      ODBC  ODBC_QUERY_RESULT_FORMAT, default Arrow
//   Go     GO_QUERY_RESULT_FORMAT, default Arrow        .NET  DOTNET_QUERY_RESULT_FORMAT, JSON unless asked
//   snowflake-sdk (Node.js, CLIENT_APP_ID JavaScript) reads JSON only, whatever it sends
// A client Sluice does not recognise (libsnowflakeclient, and the PHP driver on it, among them)
// gets JSON, which every driver reads, unless it asks for Arrow with C_API_QUERY_RESULT_FORMAT
// or QUERY_RESULT_FORMAT. The Python connector says it cannot read Arrow (installed without its Arrow extension)
// by sending PYTHON_CONNECTOR_QUERY_RESULT_FORMAT=JSON with every statement.
//
// The upstream's own format is a separate matter: Sluice decodes either and re-encodes the
// masked rows, so none of these parameters is forwarded.

export type ResultFormat = 'json' | 'arrow'

type Family = 'python' | 'jdbc' | 'odbc' | 'go' | 'dotnet' | 'javascript' | 'other'

/** CLIENT_APP_ID values the drivers send at login. */
const FAMILY_BY_APP: Record<string, Family> = {
  PythonConnector: 'python',
  PythonSnowpark: 'python',
  JDBC: 'jdbc',
  ODBC: 'odbc',
  Go: 'go',
  '.NET': 'dotnet',
  JavaScript: 'javascript'
}

/** Each driver's own format parameter and what it reads when nothing is asked. */
const FAMILY_FORMAT: Record<Family, { parameter?: string, default: ResultFormat }> = {
  python: { parameter: 'PYTHON_CONNECTOR_QUERY_RESULT_FORMAT', default: 'arrow' },
  jdbc: { parameter: 'JDBC_QUERY_RESULT_FORMAT', default: 'arrow' },
  odbc: { parameter: 'ODBC_QUERY_RESULT_FORMAT', default: 'arrow' },
  go: { parameter: 'GO_QUERY_RESULT_FORMAT', default: 'arrow' },
  dotnet: { parameter: 'DOTNET_QUERY_RESULT_FORMAT', default: 'json' },
  javascript: { default: 'json' },
  other: { parameter: 'C_API_QUERY_RESULT_FORMAT', default: 'json' }
}

/** Every parameter that chooses a result format (statement and session level). */
export const FORMAT_PARAMETERS: readonly string[] = [
  'QUERY_RESULT_FORMAT', 'PYTHON_CONNECTOR_QUERY_RESULT_FORMAT', 'JDBC_QUERY_RESULT_FORMAT', 'ODBC_QUERY_RESULT_FORMAT',
  'GO_QUERY_RESULT_FORMAT', 'DOTNET_QUERY_RESULT_FORMAT', 'C_API_QUERY_RESULT_FORMAT'
]

/** The values Snowflake takes for them (ARROW_FORCE is the C API's way of asking for Arrow). */
export const FORMAT_VALUES: readonly string[] = ['JSON', 'ARROW', 'ARROW_FORCE']

/** Format choices by parameter name (upper case), as a statement or a session set them. */
export type FormatChoices = Partial<Record<string, ResultFormat>>

/** What a connector session knows about its client: the driver family and its session choices. */
export interface ClientFormats {
  family: Family
  session: FormatChoices
}

/** A parameter value as a format, or undefined when it is not one of FORMAT_VALUES. */
export function formatOf (value: unknown): ResultFormat | undefined {
  const v = typeof value === 'string' ? value.toUpperCase() : undefined
  if (v === 'JSON') return 'json'
  if (v === 'ARROW' || v === 'ARROW_FORCE') return 'arrow'
  return undefined
}

/**
 * The client behind a login: CLIENT_APP_ID, else the driver's User-Agent (an application that
 * renames itself with internal_application_name still speaks through the Python connector,
 * whose User-Agent starts "PythonConnector/"), and the format parameters among its
 * SESSION_PARAMETERS (other session parameters are not Sluice's to honour).
 */
export function clientFormats (application: string | undefined, userAgent: string | undefined, sessionParameters: unknown): ClientFormats {
  let family: Family = (application !== undefined && Object.hasOwn(FAMILY_BY_APP, application)) ? FAMILY_BY_APP[application]! : 'other'
  if (family === 'other' && (userAgent ?? '').startsWith('PythonConnector/')) family = 'python'
  const session: FormatChoices = {}
  if (sessionParameters !== null && typeof sessionParameters === 'object' && !Array.isArray(sessionParameters)) {
    for (const [name, value] of Object.entries(sessionParameters)) {
      const key = name.toUpperCase()
      const format = formatOf(value)
      if (FORMAT_PARAMETERS.includes(key) && format !== undefined) session[key] = format
    }
  }
  return { family, session }
}

/** The format to serve: statement choices over session ones, the driver's parameter first. */
export function resultFormat (client: ClientFormats | undefined, statement: FormatChoices = {}): ResultFormat {
  const family = client?.family ?? 'other'
  // snowflake-sdk has no Arrow reader: asking for Arrow cannot make it read one.
  if (family === 'javascript') return 'json'
  const own = FAMILY_FORMAT[family]
  const names = own.parameter === undefined ? ['QUERY_RESULT_FORMAT'] : [own.parameter, 'QUERY_RESULT_FORMAT']
  for (const level of [statement, client?.session ?? {}]) {
    for (const name of names) {
      const chosen = level[name]
      if (chosen !== undefined) return chosen
    }
  }
  return own.default
}
