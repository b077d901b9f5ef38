// The hash chain's arithmetic, shared by the writer (which links events) and the verifier
// (which re-links them from the store or an export), so both compute exactly the same bytes.
//
// Design: one chain per writer (a gateway process), identified by a random id and numbered by
// an in-memory sequence. Replicas never coordinate: each links only its own events, so a batch
// is hashed in memory and written with one INSERT, with no read and no cross-replica lock on
// the write path. (A single store-assigned chain would serialise every replica on one lock.)
//   event_digest = sha256(canonical JSON of the event's content)
//   hash         = sha256(prev_hash || event_digest), prev_hash of the first event = 32 zeros
// The two levels let retention purge an event's content and keep its link. Checkpoints sign
// (chain, seq, hash) with Ed25519, anchoring the chain against a rewrite from scratch.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { ERR_CONFIG_INVALID } from '../errors.js'

export const GENESIS = Buffer.alloc(32)

/**
 * Columns covered by event_digest, in a fixed order. Not covered: id (assigned by the store),
 * seq/prev_hash/hash/event_digest (the chain itself), result_capture (covered by
 * result_digest, so it can expire), purged_at.
 */
export const DIGEST_FIELDS = [
  'chain', 'sessionId', 'occurredAt', 'requestId', 'principalSubject', 'principalIssuer', 'principalType',
  'groups', 'roles', 'clientId', 'delegation', 'connection', 'frontEnd', 'route', 'method', 'statusCode',
  'outcome', 'errorCode', 'durationMs', 'sourceIp', 'userAgent', 'sqlText', 'sqlFingerprint', 'bindParams',
  'analysis', 'statementKinds', 'tables', 'decision', 'ruleId', 'reason', 'policyVersion', 'approvalId',
  'approver', 'masking', 'maskedColumns', 'upstreamId', 'rowsReturned', 'bytesReturned', 'resultDigest',
  'resultTruncated'
] as const

/**
 * Added with recording before execution (migration 0004). They join the digest only when one
 * is set, so every event written before them hashes exactly as it did; an event written with
 * them and read back without them no longer matches its digest.
 */
export const PHASE_DIGEST_FIELDS = ['statementId', 'phase'] as const

export type DigestField = typeof DIGEST_FIELDS[number] | typeof PHASE_DIGEST_FIELDS[number]

/**
 * JSON with object keys sorted at every level. jsonb reorders keys and drops whitespace, so
 * only a canonical form survives the round trip through the store byte for byte.
 */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(value ?? null, sortedKeys)
}

// A replacer keeps the walk inside the native JSON.stringify (several times faster than a
// hand-written serializer); it only reorders keys and spells bigints and bytes as strings.
function sortedKeys (_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value
  if (Array.isArray(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  const keys = Object.keys(value)
  let sorted = true
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) { sorted = false; break }
  }
  if (sorted) return value
  const out: Record<string, unknown> = {}
  for (const k of keys.sort()) out[k] = (value as Record<string, unknown>)[k]
  return out
}

export function eventDigest (event: Partial<Record<DigestField, unknown>>): Buffer {
  const content = DIGEST_FIELDS.map((field) => event[field] ?? null)
  if (PHASE_DIGEST_FIELDS.some((field) => (event[field] ?? null) !== null)) {
    for (const field of PHASE_DIGEST_FIELDS) content.push(event[field] ?? null)
  }
  return createHash('sha256').update(canonicalJson(content)).digest()
}

export function linkHash (prevHash: Uint8Array, digest: Uint8Array): Buffer {
  return createHash('sha256').update(prevHash).update(digest).digest()
}

export function sha256 (bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
const HAS_UNSTORABLE = /\u0000|[\uD800-\uDFFF]/

/** True when `value` can be stored and hashed as it is (the common case: no copy made). */
function isStorable (value: unknown): boolean {
  if (typeof value === 'string') return !HAS_UNSTORABLE.test(value)
  if (typeof value === 'number') return Number.isFinite(value)
  if (typeof value === 'bigint') return false
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return true
  if (Array.isArray(value)) return value.every(isStorable)
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || !isStorable(k) || !isStorable(v)) return false
  }
  return true
}

/**
 * Strings Postgres would refuse (NUL, lone surrogates) made storable before hashing, so a
 * hostile SQL text cannot fail a whole batch nor hash differently from what is stored.
 */
export function storable<T> (value: T): T {
  return isStorable(value) ? value : fix(value)
}

function fix<T> (value: T): T {
  if (typeof value === 'string') return value.replace(UNSTORABLE, '\uFFFD') as T
  if (typeof value === 'bigint') return value.toString() as T
  if (typeof value === 'number') return (Number.isFinite(value) ? value : null) as T
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value
  if (Array.isArray(value)) return value.map(fix) as T
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== undefined) out[fix(k)] = fix(v)
  }
  return out as T
}

// ── checkpoint signatures ─────────────────────────────────────────────────────────────────

export interface CheckpointKey {
  /** First 16 hex digits of sha256(SPKI DER of the public key): names the key in rows. */
  id: string
  privateKey?: KeyObject
  publicKey: KeyObject
}

/** Loads an Ed25519 private key (PKCS#8 PEM) from config; its public half verifies. */
export function loadCheckpointKey (pem: string | undefined): CheckpointKey | undefined {
  if (pem === undefined || pem.trim() === '') return undefined
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (err) {
    throw new ERR_CONFIG_INVALID(`/recording/checkpointKey: not a PEM private key (${(err as Error).message})`)
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ERR_CONFIG_INVALID(`/recording/checkpointKey: must be an Ed25519 key, got ${privateKey.asymmetricKeyType ?? 'unknown'}`)
  }
  const publicKey = createPublicKey(privateKey)
  return { id: keyId(publicKey), privateKey, publicKey }
}

/** A public key alone (PEM), for verifying an export away from the gateway's secrets. */
export function loadPublicKey (pem: string): CheckpointKey {
  const publicKey = createPublicKey(pem)
  return { id: keyId(publicKey), publicKey }
}

function keyId (publicKey: KeyObject): string {
  return sha256(publicKey.export({ type: 'spki', format: 'der' })).toString('hex').slice(0, 16)
}

export interface CheckpointBody {
  chain: string
  seq: number
  hash: string
  kind: 'periodic' | 'close' | 'retention'
  createdAt: string
}

export interface ChainBody {
  chain: string
  writer: string
  startedAt: string
}

export function signBody (key: CheckpointKey | undefined, body: CheckpointBody | ChainBody | object): Buffer | null {
  if (key?.privateKey === undefined) return null
  return sign(null, Buffer.from(canonicalJson(body)), key.privateKey)
}

export function verifyBody (key: CheckpointKey, body: CheckpointBody | ChainBody | object, signature: Uint8Array): boolean {
  try {
    return verify(null, Buffer.from(canonicalJson(body)), key.publicKey, signature)
  } catch {
    return false
  }
}

/** µs since the epoch from the high-resolution clock (Date has only ms). */
export function nowMicros (): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

/** `2026-11-21T07:35:23.123456Z`: the form the store returns with to_char(... 'US'). */
export function isoMicros (micros: number): string {
  const ms = Math.floor(micros / 1000)
  const rest = String(micros - ms * 1000).padStart(3, '0')
  return `${new Date(ms).toISOString().slice(0, 23)}${rest}Z`
}
