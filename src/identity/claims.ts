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

  const groups = groupsOf(payload, config.groupsClaim)
  const type = isMachine(payload, sub, clientId) ? 'machine' : 'human'
  const principal: Principal = {
    subject,
    issuer: String(payload.iss),
    type,
    groups,
    roles: rolesFor({ groups, clientId, type }, config),
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

/** Where a dot path led: to a value, to nothing (the claim is absent), or into a non-object. */
export type ClaimLookup =
  | { found: true, value: unknown }
  | { found: false, blockedAt?: string, blockedBy?: unknown }

/**
 * Resolves a dot path such as `realm_access.roles`. A claim whose own name contains dots
 * (namespaced claims like `https://example.com/groups`) is matched whole first, and at each
 * level the longest existing key wins, so both styles work without an escape syntax.
 * `blockedAt` names the prefix that exists but is not an object, so a caller can tell a
 * claim that is absent from one the IdP shaped differently than configured.
 */
export function lookupClaimPath (payload: Record<string, unknown>, path: string): ClaimLookup {
  let node: unknown = payload
  let rest = path
  let walked = ''
  while (rest !== '') {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return { found: false, blockedAt: walked, blockedBy: node }
    const obj = node as Record<string, unknown>
    let key = rest
    while (!Object.hasOwn(obj, key)) {
      const dot = key.lastIndexOf('.')
      if (dot <= 0) return { found: false }
      key = key.slice(0, dot)
    }
    node = obj[key]
    walked = walked === '' ? key : `${walked}.${key}`
    rest = rest.slice(key.length + 1)
  }
  return { found: true, value: node }
}

export function readClaimPath (payload: Record<string, unknown>, path: string): unknown {
  const lookup = lookupClaimPath(payload, path)
  return lookup.found ? lookup.value : undefined
}

/**
 * The caller's groups. Only an absent claim means "no groups": a claim the IdP filled with
 * something else (an object, numbers, null) is a mapping error, and reading it as "no groups"
 * would silently drop the caller out of every group a deny rule names.
 */
export function groupsOf (payload: Record<string, unknown>, claim: string): string[] {
  const lookup = lookupClaimPath(payload, claim)
  if (lookup.found) return groupsFrom(lookup.value, claim)
  if (lookup.blockedAt !== undefined) {
    throw new ERR_AUTH_INVALID(`the groups claim ${claim} cannot be read: ${lookup.blockedAt} is ${jsonKind(lookup.blockedBy)}, not an object`)
  }
  return []
}

/** A string claim is one group (group names may contain spaces); an array of strings gives many. */
export function groupsFrom (value: unknown, claim = 'groups'): string[] {
  if (value === undefined) return []
  if (typeof value === 'string') return value === '' ? [] : [value]
  if (!Array.isArray(value)) {
    throw new ERR_AUTH_INVALID(`the groups claim ${claim} must be a string or an array of strings, not ${jsonKind(value)}`)
  }
  const groups = new Set<string>()
  for (const item of value) {
    if (typeof item !== 'string') {
      throw new ERR_AUTH_INVALID(`the groups claim ${claim} must be a string or an array of strings; it holds ${jsonKind(item)}`)
    }
    if (item !== '') groups.add(item)
  }
  return [...groups]
}

/** Names a JSON value's type for a refusal; never its content, which may be personal data. */
function jsonKind (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  return `a ${typeof value}`
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
