// Group → role mapping, kept as a plain function so policy tests and the admin API can ask
// "what would this caller get?" without a token.
import type { IdentityConfig } from '../config/types.js'
import type { Principal } from './principal.js'

export type RoleMapping = Pick<IdentityConfig, 'groupRoles' | 'clientRoles'>

/** What roles are derived from: the caller's groups, its client and whether a human is behind it. */
export type RoleSubject = Pick<Principal, 'groups' | 'clientId' | 'type'>

/**
 * Union of the roles granted by each group and, for machine callers, by the client, in
 * first-seen order. Client roles are for client-credentials tokens only: a human's token
 * carries the client it was obtained through in `azp` too, and that must not lend the human
 * the roles of the client's own service account.
 * `Object.hasOwn` matters: a group named `constructor` or `__proto__` must grant nothing,
 * not whatever the object prototype happens to hold.
 */
export function rolesFor (caller: RoleSubject, config: RoleMapping): string[] {
  const roles = new Set<string>()
  for (const group of caller.groups) {
    if (Object.hasOwn(config.groupRoles, group)) addAll(roles, config.groupRoles[group])
  }
  const clientId = caller.clientId
  if (caller.type === 'machine' && clientId !== undefined && Object.hasOwn(config.clientRoles, clientId)) {
    addAll(roles, config.clientRoles[clientId])
  }
  return [...roles]
}

function addAll (into: Set<string>, roles: readonly string[] | undefined): void {
  if (!Array.isArray(roles)) return
  for (const role of roles) if (typeof role === 'string') into.add(role)
}
