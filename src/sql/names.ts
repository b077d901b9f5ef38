// Identifier normalisation and qualification.
//
// The rule, for matching against policy globs:
// - Unquoted identifiers are lower-cased in every dialect. Postgres folds them to lower case
//   itself; Snowflake folds them to UPPER case, which is the same object under a
//   case-insensitive match, so one lower-case spelling serves both.
// - Quoted identifiers keep their case, because quoting makes them case-sensitive. One
//   exception: in Snowflake a quoted identifier with no lower-case letters ("ORDERS") is
//   exactly the object an unquoted `orders` resolves to, so it is lower-cased too.
// - BigQuery back-quoted paths (`proj.ds.t`) arrive from the parser already split into parts;
//   each part keeps its case. (BigQuery table names are case-sensitive even unquoted; we still
//   lower-case unquoted ones so that policies can be written in one case.)
// - Bare names are qualified with the connection defaults: `t` → database.schema.t,
//   `s.t` → database.s.t. Missing defaults are simply left out.
import type { Dialect, QualifyDefaults } from './types.js'

/** sqlparser's JSON for an identifier. */
export interface IdentJson {
  value: string
  quote_style?: string | null
}

export function normalizeIdent (ident: IdentJson, dialect: Dialect): string {
  const quoted = ident.quote_style !== undefined && ident.quote_style !== null
  if (!quoted) return ident.value.toLowerCase()
  if (dialect === 'snowflake' && ident.value === ident.value.toUpperCase()) return ident.value.toLowerCase()
  return ident.value
}

/**
 * The parts of an ObjectName (`[{Identifier: {...}}, ...]`), normalised; undefined when a part
 * is not a plain identifier (e.g. Snowflake `IDENTIFIER(:var)`), which callers treat as a name
 * they cannot know.
 */
export function objectNameParts (name: unknown, dialect: Dialect): string[] | undefined {
  if (!Array.isArray(name) || name.length === 0) return undefined
  const parts: string[] = []
  for (const part of name) {
    const ident = identOf(part)
    if (ident === undefined) return undefined
    parts.push(normalizeIdent(ident, dialect))
  }
  return parts
}

/** An ObjectName part is `{Identifier: Ident}` in current sqlparser, a bare Ident in older ones. */
function identOf (part: unknown): IdentJson | undefined {
  if (part === null || typeof part !== 'object') return undefined
  const p = part as Record<string, unknown>
  const inner = 'Identifier' in p ? p.Identifier : p
  if (inner !== null && typeof inner === 'object' && typeof (inner as IdentJson).value === 'string') {
    return inner as IdentJson
  }
  return undefined
}

/**
 * Stands for a part of a qualified name that the connection's defaults do not give (the
 * warehouse fills it from the session): it may be any name, so rules that restrict treat it as
 * matching and rules that allow as not (see policy/glob.ts).
 */
export const UNKNOWN_PART = '?'

export function qualify (parts: string[], defaults: QualifyDefaults): string {
  // Defaults come from configuration, written as the warehouse shows them (Snowflake's
  // ANALYTICS.PUBLIC). They name the same objects as unquoted identifiers, which are compared
  // in lower case, so a bare `orders` and `analytics.public.orders` must come out the same.
  const database = defaults.database?.toLowerCase()
  const schema = defaults.schema?.toLowerCase()
  const known = (p: string | undefined): string => p === undefined || p === '' ? UNKNOWN_PART : p
  if (parts.length === 1) return [known(database), known(schema), parts[0]].join('.')
  if (parts.length === 2) return [known(database), parts[0], parts[1]].join('.')
  return parts.join('.')
}

/** Function names are reported lower-cased, dot-joined, unqualified by defaults. */
export function functionName (name: unknown): string | undefined {
  if (!Array.isArray(name) || name.length === 0) return undefined
  const parts: string[] = []
  for (const part of name) {
    const ident = identOf(part)
    if (ident === undefined) return undefined
    parts.push(ident.value.toLowerCase())
  }
  return parts.join('.')
}
