// Which transport failures prove the warehouse never received the request. Only those may be
// answered as retryable: a request that reached the warehouse may have run (a write applied),
// and a client that retries it would run it twice.

/** Node / undici codes raised before a request's first byte could reach the peer. */
const NOT_SENT = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CONNECT'
])

/** TLS handshake failures: the request is only written once the handshake succeeded. */
const TLS = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/

/** True when `err` (or its cause chain, as undici wraps them) says the request was never sent. */
export function neverSent (err: unknown): boolean {
  for (let e = err as { code?: unknown, cause?: unknown, errors?: unknown } | undefined, depth = 0; e != null && depth < 5; depth++) {
    const code = typeof e.code === 'string' ? e.code : ''
    if (NOT_SENT.has(code) || TLS.test(code)) return true
    // Happy eyeballs: every address refused (AggregateError of ECONNREFUSED).
    if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => neverSent(x))) return true
    e = e.cause as typeof e
  }
  return false
}

/** A transport error's own words, with the code that classified it. */
export function transportText (err: unknown): string {
  const e = err as { message?: unknown, code?: unknown, cause?: { message?: unknown, code?: unknown } }
  const cause = e.cause
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err)
  if (cause !== undefined && typeof cause.message === 'string' && cause.message !== '' && cause.message !== message) return `${message} (${cause.message})`
  return message
}
