// Credentials in a URL's query string. A URL is logged, kept by proxies and shown in browser
// history, so two rules apply to it: every logged URL has credential-like parameters redacted
// (a list of names, a pattern over names, and a pattern over values that look like a JWT), and
// a front-end request that carries a bearer token in its URL is refused before anything reads
// it. The second list is narrower on purpose: redacting a harmless cursor in a log line costs
// nothing, refusing a request for it would break a client.

export const REDACTED = '[redacted]'

/**
 * Parameters that carry a bearer token: RFC 6750 §2.3 `access_token`, Google's legacy
 * `oauth_token`, and what clients and proxies commonly use besides. Compared lower-cased.
 */
const BEARER_PARAMS = new Set(['access_token', 'token', 'id_token', 'oauth_token', 'bearer_token', 'bearer', 'jwt'])

/** Short names that are credentials but too generic for the pattern (`key` is a Google API key, `sig` an Azure SAS signature). */
const CREDENTIAL_NAMES = new Set(['key', 'sig', 'code', 'auth', 'pwd', 'pass', 'psk', 'otp', 'sas'])

/** Any name that says token, secret, password, signature, credential or key material. */
const CREDENTIAL_NAME_PATTERN = /token|secret|passw|passphrase|signature|credential|api[-_]?key|private[-_]?key|access[-_]?key|assertion|authoriz|session[-_]?id/i

/** A compact JWS/JWT, whatever the parameter is called: `eyJ` is base64url for `{"`. */
const JWT_VALUE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export function isCredentialParam (name: string): boolean {
  const lower = name.toLowerCase()
  return BEARER_PARAMS.has(lower) || CREDENTIAL_NAMES.has(lower) || CREDENTIAL_NAME_PATTERN.test(lower)
}

export function isBearerParam (name: string): boolean {
  return BEARER_PARAMS.has(name.toLowerCase())
}

/** A JWT inside longer text (an error message quoting a URL). */
const JWT_IN_TEXT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g
/** A `name=value` query pair inside longer text. */
const QUERY_PAIR_IN_TEXT = /([?&])([^=&\s"'#?]+)=([^&\s"'#]*)/g

/** A pair whose value a log must not show: a credential-like name or a JWT-shaped value. */
function hidesValue (name: string, value: string): boolean {
  return value !== '' && (isCredentialParam(decode(name)) || JWT_VALUE.test(decode(value)))
}

/**
 * Free text (an error message or stack) with the same redactions: some messages quote the
 * request URL (Fastify's own "Reply was already sent … in <url>"), so a URL can reach a log
 * line without passing through the request serializer.
 */
export function redactText (text: string): string {
  return text
    .replace(QUERY_PAIR_IN_TEXT, (pair: string, sep: string, name: string, value: string) =>
      hidesValue(name, value) ? `${sep}${name}=${REDACTED}` : pair)
    .replace(JWT_IN_TEXT, REDACTED)
}

/** The URL with the value of every credential-like query parameter replaced; all else verbatim. */
export function redactUrl (url: string): string {
  const bounds = queryBounds(url)
  if (bounds === undefined) return url
  const [start, end] = bounds
  return `${url.slice(0, start)}${queryPairs(url, bounds).map(redactPair).join('&')}${url.slice(end)}`
}

/**
 * Names of the query parameters that carry a bearer token (non-empty): by name, or by a
 * JWT-shaped value under any name. Names only: the values must not travel any further.
 */
export function bearerTokensInQuery (url: string): string[] {
  const bounds = queryBounds(url)
  if (bounds === undefined) return []
  const found: string[] = []
  for (const pair of queryPairs(url, bounds)) {
    const eq = pair.indexOf('=')
    if (eq === -1 || eq === pair.length - 1) continue
    const name = decode(pair.slice(0, eq))
    if (isBearerParam(name) || JWT_VALUE.test(decode(pair.slice(eq + 1)))) found.push(name)
  }
  return found
}

/** Where the query string starts and ends (a fragment excluded), or undefined without one. */
function queryBounds (url: string): [number, number] | undefined {
  const q = url.indexOf('?')
  if (q === -1) return undefined
  const hash = url.indexOf('#', q)
  return [q + 1, hash === -1 ? url.length : hash]
}

function queryPairs (url: string, [start, end]: [number, number]): string[] {
  return url.slice(start, end).split('&')
}

function redactPair (pair: string): string {
  const eq = pair.indexOf('=')
  // A bare JWT with no `=` (`?eyJ…`) is still a token.
  if (eq === -1) return JWT_VALUE.test(decode(pair)) ? REDACTED : pair
  return hidesValue(pair.slice(0, eq), pair.slice(eq + 1)) ? `${pair.slice(0, eq)}=${REDACTED}` : pair
}

/** Percent-decoding as a query parser does it, so `access%5Ftoken` is recognised too. */
function decode (text: string): string {
  const plain = text.replace(/\+/g, ' ')
  try {
    return decodeURIComponent(plain)
  } catch {
    return plain
  }
}
