// Verified claims → Principal. Everything here runs after the signature, issuer, audience and
// time checks, so it only has to interpret claims, never to trust-check them; a claim that is
// present but malformed still refuses the token (fail closed), an absent optional one does not.
import type { JWTPayload } from 'jose'
import type { IdentityConfig } from '../config/types.js'
import { ERR_AUTH_INVALID } from '../errors.js'
import type { Actor, Principal } from './principal.js'
import { rolesFor } from './roles.js'

/** Deeper `act` nesting than this is not a delegation chain anyone issues on purpose. */
const MAX_DELEGATION_DEPTH = 16

/**
 * `gty` values some issuers (Auth0, and oidc-provider's opaque tokens) use to mark a
 * client-credentials token explicitly.
 */
const CLIENT_CREDENTIALS_GTY = new Set(['client-credentials', 'client_credentials'])

export function principalFrom (payload: JWTPayload, config: IdentityConfig): Principal {
  const clientId = stringClaim(payload, 'azp') ?? stringClaim(payload, 'client_id')
  const sub = stringClaim(payload, 'sub')
  const subject = sub ?? clientId
  if (subject === undefined) throw new ERR_AUTH_INVALID('no subject (sub or client_id)')
  if (typeof payload.exp !== 'number') throw new ERR_AUTH_INVALID('missing exp claim')

  const groups = groupsFrom(readClaimPath(payload, config.groupsClaim))
  const principal: Principal = {
    subject,
    issuer: String(payload.iss),
    type: isMachine(payload, sub, clientId) ? 'machine' : 'human',
    groups,
    roles: rolesFor(groups, clientId, config),
    delegation: delegationFrom(payload.act),
    expiresAt: new Date(payload.exp * 1000)
  }
  if (clientId !== undefined) principal.clientId = clientId
  const jti = stringClaim(payload, 'jti')
  if (jti !== undefined) principal.tokenId = jti
  return principal
}

/**
 * A client-credentials token has no end user behind it. There is no standard claim for
 * that, so the rule follows what issuers actually emit:
 * - oidc-provider (and RFC 9068 §2.2 guidance) sets `sub` to the client id when no resource
 *   owner is involved, with `client_id` beside it;
 * - some issuers omit `sub` and carry only `client_id`;
 * - some say so outright with `gty: client-credentials`.
 */
export function isMachine (payload: JWTPayload, sub: string | undefined, clientId: string | undefined): boolean {
  const gty = payload.gty
  if (typeof gty === 'string' && CLIENT_CREDENTIALS_GTY.has(gty)) return true
  if (clientId === undefined) return false
  return sub === undefined || sub === clientId
}

/**
 * Reads a dot path such as `realm_access.roles`. A claim whose own name contains dots
 * (namespaced claims like `https://example.com/groups`) is matched whole first, and at each
 * level the longest existing key wins, so both styles work without an escape syntax.
 */
export function readClaimPath (payload: Record<string, unknown>, path: string): unknown {
  let node: unknown = payload
  let rest = path
  while (rest !== '') {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined
    const obj = node as Record<string, unknown>
    let key = rest
    while (!Object.hasOwn(obj, key)) {
      const dot = key.lastIndexOf('.')
      if (dot <= 0) return undefined
      key = key.slice(0, dot)
    }
    node = obj[key]
    rest = rest.slice(key.length + 1)
  }
  return node
}

/** A string claim is one group (group names may contain spaces); an array gives many. */
export function groupsFrom (value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value]
  if (!Array.isArray(value)) return []
  const groups = new Set<string>()
  for (const item of value) if (typeof item === 'string' && item !== '') groups.add(item)
  return [...groups]
}

/** RFC 8693 §4.1: the outermost `act` is the current actor, each nested `act` the one before. */
export function delegationFrom (act: unknown): Actor[] {
  const chain: Actor[] = []
  let node = act
  while (node !== undefined) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      throw new ERR_AUTH_INVALID('malformed act claim')
    }
    if (chain.length === MAX_DELEGATION_DEPTH) throw new ERR_AUTH_INVALID('delegation chain too deep')
    const claims = node as Record<string, unknown>
    const subject = stringClaim(claims, 'sub')
    if (subject === undefined) throw new ERR_AUTH_INVALID('act claim without sub')
    const actor: Actor = { subject }
    const clientId = stringClaim(claims, 'client_id') ?? stringClaim(claims, 'azp')
    if (clientId !== undefined) actor.clientId = clientId
    chain.push(actor)
    node = claims.act
  }
  return chain
}

function stringClaim (claims: Record<string, unknown>, name: string): string | undefined {
  const value = claims[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}
