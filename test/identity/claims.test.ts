import { describe, expect, test } from 'vitest'
import { delegationFrom, groupsFrom, groupsOf, isMachine, lookupClaimPath, readClaimPath } from '../../src/identity/claims.js'
import { rolesFor } from '../../src/identity/roles.js'

describe('readClaimPath', () => {
  const payload = {
    groups: ['a'],
    realm_access: { roles: ['dba'] },
    'https://example.com/groups': ['namespaced'],
    resource_access: { 'sluice.gateway': { roles: ['reader'] } }
  }

  test('top-level, nested, and dotted claim names', () => {
    expect(readClaimPath(payload, 'groups')).toEqual(['a'])
    expect(readClaimPath(payload, 'realm_access.roles')).toEqual(['dba'])
    expect(readClaimPath(payload, 'https://example.com/groups')).toEqual(['namespaced'])
    expect(readClaimPath(payload, 'resource_access.sluice.gateway.roles')).toEqual(['reader'])
  })

  test('missing paths and paths through non-objects give undefined', () => {
    expect(readClaimPath(payload, 'nope')).toBeUndefined()
    expect(readClaimPath(payload, 'realm_access.nope')).toBeUndefined()
    expect(readClaimPath(payload, 'groups.0')).toBeUndefined()
    expect(readClaimPath(payload, 'realm_access.roles.x')).toBeUndefined()
  })
})

describe('lookupClaimPath', () => {
  test('tells an absent claim from a path that runs into a non-object', () => {
    expect(lookupClaimPath({ realm_access: { roles: ['dba'] } }, 'realm_access.roles')).toEqual({ found: true, value: ['dba'] })
    expect(lookupClaimPath({ realm_access: { roles: ['dba'] } }, 'realm_access.nope')).toEqual({ found: false })
    expect(lookupClaimPath({}, 'realm_access.roles')).toEqual({ found: false })
    expect(lookupClaimPath({ realm_access: 'dba' }, 'realm_access.roles')).toEqual({ found: false, blockedAt: 'realm_access', blockedBy: 'dba' })
    expect(lookupClaimPath({ realm_access: ['dba'] }, 'realm_access.roles')).toMatchObject({ found: false, blockedAt: 'realm_access' })
  })
})

describe('groupsFrom', () => {
  test('a string is one group, an array of strings gives many, absent gives none', () => {
    expect(groupsFrom('data eng')).toEqual(['data eng'])
    expect(groupsFrom(['a', 'b', 'a', ''])).toEqual(['a', 'b'])
    expect(groupsFrom('')).toEqual([])
    expect(groupsFrom([])).toEqual([])
    expect(groupsFrom(undefined)).toEqual([])
  })

  // An IdP mapping error must not pass as "no groups": that would drop the caller out of every
  // group a deny rule names.
  test.each([
    ['an object', { admins: true }, 'not an object'],
    ['an array of numbers', [1, 2], 'it holds a number'],
    ['a mixed array', ['admins', 3], 'it holds a number'],
    ['an array with null', ['admins', null], 'it holds null'],
    ['an array of arrays', [['admins']], 'it holds an array'],
    ['an array of objects', [{ name: 'admins' }], 'it holds an object'],
    ['a number', 7, 'not a number'],
    ['a boolean', true, 'not a boolean'],
    ['null', null, 'not null']
  ])('refuses %s', (_what, value, reason) => {
    const attempt = (): string[] => groupsFrom(value, 'groups')
    expect(attempt).toThrow(/the token was rejected: the groups claim groups must be a string or an array of strings/)
    expect(attempt).toThrow(reason)
    try { attempt() } catch (err) {
      expect(err).toMatchObject({ code: 'SLUICE_AUTH_INVALID', statusCode: 401 })
    }
  })

  test('the refusal names the type, never the content', () => {
    expect(() => groupsFrom({ 'alice@example.com': 1 })).not.toThrow(/alice/)
  })
})

describe('groupsOf (configured claim path)', () => {
  test('absent claim or absent nested key: no groups', () => {
    expect(groupsOf({}, 'groups')).toEqual([])
    expect(groupsOf({ realm_access: {} }, 'realm_access.roles')).toEqual([])
    expect(groupsOf({ realm_access: { roles: ['dba'] } }, 'realm_access.roles')).toEqual(['dba'])
  })

  test('a path through a non-object is refused, as is a malformed value at its end', () => {
    expect(() => groupsOf({ realm_access: 'dba' }, 'realm_access.roles')).toThrow(/realm_access is a string, not an object/)
    expect(() => groupsOf({ realm_access: { roles: { dba: true } } }, 'realm_access.roles')).toThrow(/realm_access.roles must be a string or an array of strings/)
  })
})

describe('rolesFor', () => {
  const config = {
    groupRoles: { eng: ['analyst'], dba: ['admin', 'analyst'] },
    clientRoles: { 'ci-bot': ['ci'] }
  }

  test('union of group roles and, for a machine, client roles, deduplicated', () => {
    expect(rolesFor({ groups: ['eng', 'dba'], clientId: 'ci-bot', type: 'machine' }, config)).toEqual(['analyst', 'admin', 'ci'])
    expect(rolesFor({ groups: [], type: 'machine' }, config)).toEqual([])
  })

  test('client roles are never granted to a human, whatever client obtained the token', () => {
    expect(rolesFor({ groups: [], clientId: 'ci-bot', type: 'human' }, config)).toEqual([])
    expect(rolesFor({ groups: ['eng'], clientId: 'ci-bot', type: 'human' }, config)).toEqual(['analyst'])
  })

  test('prototype property names grant nothing', () => {
    expect(rolesFor({ groups: ['constructor', '__proto__', 'toString'], clientId: 'hasOwnProperty', type: 'machine' }, config)).toEqual([])
  })
})

describe('isMachine (client-credentials detection)', () => {
  test('oidc-provider shape: sub equals client_id', () => {
    expect(isMachine({ sub: 'ci-bot', client_id: 'ci-bot' }, 'ci-bot', 'ci-bot')).toBe(true)
  })
  test('no sub, only a client id', () => {
    expect(isMachine({ client_id: 'ci-bot' }, undefined, 'ci-bot')).toBe(true)
  })
  test('explicit gty', () => {
    expect(isMachine({ sub: 'x@clients', gty: 'client-credentials' }, 'x@clients', 'x')).toBe(true)
  })
  test('a user acting through a client is human', () => {
    expect(isMachine({ sub: 'alice', client_id: 'cursor' }, 'alice', 'cursor')).toBe(false)
    expect(isMachine({ sub: 'alice' }, 'alice', undefined)).toBe(false)
  })
})

describe('delegationFrom', () => {
  test('nested act, outermost first', () => {
    expect(delegationFrom({ sub: 'agent', client_id: 'cursor', act: { sub: 'orchestrator', act: { sub: 'scheduler' } } }))
      .toEqual([{ subject: 'agent', clientId: 'cursor' }, { subject: 'orchestrator' }, { subject: 'scheduler' }])
    expect(delegationFrom(undefined)).toEqual([])
  })

  test('malformed or absurdly deep chains are refused', () => {
    expect(() => delegationFrom('agent')).toThrow(/malformed act claim/)
    expect(() => delegationFrom({ client_id: 'x' })).toThrow(/act claim without sub/)
    let deep: Record<string, unknown> = { sub: 'root' }
    for (let i = 0; i < 20; i++) deep = { sub: `a${i}`, act: deep }
    expect(() => delegationFrom(deep)).toThrow(/too deep/)
  })
})
