// The one allow-list of statement parameters a client may send, for both Snowflake front ends
// (connector query-request `parameters`, SQL API request `parameters`). A statement parameter
// applies to that statement upstream, so a name missing here could change what Sluice checked
// (which table a name resolves to, how long or with what resources the statement runs) after
// the policy decided. Anything not listed is refused, naming the parameter and the allowed ones.
//
// Allowed: parameters that change only how values are written or read (time zone, date/time
// and binary formats, JSON indentation), tag the query, or narrow what comes back (rows per
// result set, a statement timeout the deciding rule still caps). Refused on purpose, among
// others: SEARCH_PATH and QUOTED_IDENTIFIERS_IGNORE_CASE (a name would resolve to another object
// than the one Sluice analysed), STATEMENT_QUEUED_TIMEOUT_IN_SECONDS and LOCK_TIMEOUT (hold the
// warehouse longer than the rule allows), AUTOCOMMIT (transactions across statements),
// USE_CACHED_RESULT (forces recomputation on the connection's warehouse; nothing needs it),
// TIMESTAMP_TYPE_MAPPING and every CLIENT_* / driver setting (session settings of a login,
// which Sluice's own upstream session decides).
//
// snowflake-sdk sends only what the script sets (plus QUERY_TAG when the connection has a
// queryTag); the Python connector sends MULTI_STATEMENT_COUNT for num_statements and whatever
// the script puts in _statement_params. Both keep working with the list below.
import { ERR_BAD_REQUEST, ERR_SNOWFLAKE_PARAMETER_REFUSED } from '../../errors.js'
import { FORMAT_PARAMETERS, FORMAT_VALUES, formatOf, type FormatChoices } from './result-format.js'

type Check = (value: unknown, name: string) => unknown

/**
 * Forward the value upstream (`forward`), keep it for Sluice (`sluice`: the statement count,
 * `format`: the result format to serve), or accept and drop it.
 */
interface Rule { check: Check, use: 'forward' | 'sluice' | 'format' | 'drop' }

function text (max = 256): Check {
  return (value, name) => {
    if (typeof value !== 'string' || value.length > max) throw new ERR_BAD_REQUEST(`statement parameter ${name} must be a string of at most ${max} characters`)
    return value
  }
}

function integer (min: number, max = Number.MAX_SAFE_INTEGER): Check {
  return (value, name) => {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      throw new ERR_BAD_REQUEST(`statement parameter ${name} must be ${max === Number.MAX_SAFE_INTEGER ? 'a non-negative integer' : `an integer from ${min} to ${max}`}`)
    }
    return n
  }
}

function oneOf (values: string[]): Check {
  return (value, name) => {
    const v = typeof value === 'string' ? value.toUpperCase() : undefined
    if (v === undefined || !values.includes(v)) throw new ERR_BAD_REQUEST(`statement parameter ${name} must be one of ${values.join(', ')}`)
    return v
  }
}

const forward = (check: Check): Rule => ({ check, use: 'forward' })

const RULES: Record<string, Rule> = {
  // Sluice splits and counts the statements itself; never sent upstream.
  MULTI_STATEMENT_COUNT: { check: integer(0), use: 'sluice' },
  TIMEZONE: forward(text(64)),
  // Snowflake's own limit for a query tag.
  QUERY_TAG: forward(text(2000)),
  DATE_OUTPUT_FORMAT: forward(text()),
  TIME_OUTPUT_FORMAT: forward(text()),
  TIMESTAMP_OUTPUT_FORMAT: forward(text()),
  TIMESTAMP_LTZ_OUTPUT_FORMAT: forward(text()),
  TIMESTAMP_NTZ_OUTPUT_FORMAT: forward(text()),
  TIMESTAMP_TZ_OUTPUT_FORMAT: forward(text()),
  DATE_INPUT_FORMAT: forward(text()),
  TIME_INPUT_FORMAT: forward(text()),
  TIMESTAMP_INPUT_FORMAT: forward(text()),
  BINARY_OUTPUT_FORMAT: forward(oneOf(['HEX', 'BASE64'])),
  BINARY_INPUT_FORMAT: forward(oneOf(['HEX', 'BASE64', 'UTF8', 'UTF-8'])),
  JSON_INDENT: forward(integer(0, 16)),
  WEEK_START: forward(integer(0, 7)),
  WEEK_OF_YEAR_POLICY: forward(integer(0, 1)),
  // Only ever narrows the result (0 is Snowflake's "no limit", its default).
  ROWS_PER_RESULTSET: forward(integer(0)),
  // The deciding rule's statementTimeoutSeconds caps it (execute.ts); 0 means Snowflake's
  // maximum (7 days), so it is not forwarded and the connection's own timeout stands.
  STATEMENT_TIMEOUT_IN_SECONDS: forward(integer(0, 604_800)),
  // Snowpark tags each statement with the id of the plan it runs; it changes nothing upstream.
  _PLAN_UUID: { check: text(64), use: 'drop' },
  // The result format parameters choose what Sluice serves this client (result-format.ts); the
  // upstream's format is Sluice's own choice (it decodes either), so they are never forwarded.
  ...Object.fromEntries(FORMAT_PARAMETERS.map((name) => [name, { check: oneOf([...FORMAT_VALUES]), use: 'format' }]))
}

/** The allowed names, in the order above (upper case, as the connector protocol spells them). */
export const ALLOWED_PARAMETERS: readonly string[] = Object.keys(RULES)

export interface StatementParameters {
  /** MULTI_STATEMENT_COUNT: 1 when absent, 0 for "any number". */
  count: number
  /** What goes upstream, names upper-cased. */
  forwarded: Record<string, unknown>
  /** The result format the statement asks for, by parameter (result-format.ts). */
  formats: FormatChoices
}

/**
 * Checks a request's statement parameters against the allow-list. `spelling` is how the
 * client's protocol writes names (SQL API: lower case), so the refusal lists them that way.
 */
export function statementParameters (parameters: unknown, spelling: 'upper' | 'lower' = 'upper'): StatementParameters {
  const result: StatementParameters = { count: 1, forwarded: {}, formats: {} }
  if (parameters === undefined || parameters === null) return result
  if (typeof parameters !== 'object' || Array.isArray(parameters)) throw new ERR_BAD_REQUEST('"parameters" must be an object')
  for (const [name, value] of Object.entries(parameters)) {
    const key = name.toUpperCase()
    const rule = Object.hasOwn(RULES, key) ? RULES[key] : undefined
    if (rule === undefined) {
      const allowed = ALLOWED_PARAMETERS.map((n) => spelling === 'lower' ? n.toLowerCase() : n)
      throw new ERR_SNOWFLAKE_PARAMETER_REFUSED(name, allowed.join(', '))
    }
    const checked = rule.check(value, name)
    if (rule.use === 'sluice') result.count = checked as number
    else if (rule.use === 'format') result.formats[key] = formatOf(checked)
    else if (rule.use === 'forward' && !(key === 'STATEMENT_TIMEOUT_IN_SECONDS' && checked === 0)) result.forwarded[key] = checked
  }
  return result
}
