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

/**
 * Free text (an error message or stack) with the same redactions: some messages quote the
 * request URL (Fastify's own "Reply was already sent … in <url>"), so a URL can reach a log
 * line without passing through the request serializer.
 */
export function redactText (text: string): string {
  return text
    .replace(QUERY_PAIR_IN_TEXT, (pair: string, sep: string, name: string, value: string) =>
      value !== '' && (isCredentialParam(decode(name)) || JWT_VALUE.test(decode(value))) ? `${sep}${name}=${REDACTED}` : pair)
    .replace(JWT_IN_TEXT, REDACTED)
}

/** The URL with the value of every credential-like query parameter replaced; all else verbatim. */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const hash = url.indexOf('#', q)
  const end = hash === -1 ? url.length : hash
  const query = url.slice(q + 1, end)
  const redacted = query.split('&').map(redactPair).join('&')
  return `${url.slice(0, q + 1)}${redacted}${url.slice(end)}`
}

/**
 * Names of the query parameters that carry a bearer token (non-empty): by name, or by a
 * JWT-shaped value under any name. Names only: the values must not travel any further.
 */
export function bearerTokensInQuery (url: string): string[] {
  const q = url.indexOf('?')
  if (q === -1) return []
  const hash = url.indexOf('#', q)
  const found: string[] = []
  for (const pair of url.slice(q + 1, hash === -1 ? url.length : hash).split('&')) {
    const { name, value } = splitPair(pair)
    if (value === undefined || value === '') continue
    if (isBearerParam(name) || JWT_VALUE.test(value)) found.push(name)
  }
  return found
}

function redactPair (pair: string): string {
  const eq = pair.indexOf('=')
  const { name, value } = splitPair(pair)
  // A bare JWT with no `=` (`?eyJ…`) is still a token.
  if (value === undefined) return JWT_VALUE.test(name) ? REDACTED : pair
  if (value === '') return pair
  if (isCredentialParam(name) || JWT_VALUE.test(value)) return `${pair.slice(0, eq)}=${REDACTED}`
  return pair
}

function splitPair (pair: string): { name: string, value: string | undefined } {
  const eq = pair.indexOf('=')
  if (eq === -1) return { name: decode(pair), value: undefined }
  return { name: decode(pair.slice(0, eq)), value: decode(pair.slice(eq + 1)) }
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
