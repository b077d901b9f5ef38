// Group → role mapping, kept as a plain function so policy tests and the admin API can ask
// "what would this caller get?" without a token.
import type { IdentityConfig } from '../config/types.js'

export type RoleMapping = Pick<IdentityConfig, 'groupRoles' | 'clientRoles'>

/**
 * Union of the roles granted by each group and by the client, in first-seen order.
 * `Object.hasOwn` matters: a group named `constructor` or `__proto__` must grant nothing,
 * not whatever the object prototype happens to hold.
 */
export function rolesFor (groups: readonly string[], clientId: string | undefined, config: RoleMapping): string[] {
  const roles = new Set<string>()
  for (const group of groups) {
    if (Object.hasOwn(config.groupRoles, group)) addAll(roles, config.groupRoles[group])
  }
  if (clientId !== undefined && Object.hasOwn(config.clientRoles, clientId)) {
    addAll(roles, config.clientRoles[clientId])
  }
  return [...roles]
}

function addAll (into: Set<string>, roles: readonly string[] | undefined): void {
  if (!Array.isArray(roles)) return
  for (const role of roles) if (typeof role === 'string') into.add(role)
}
