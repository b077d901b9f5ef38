import { describe, expect, test } from 'vitest'
import { delegationFrom, groupsFrom, isMachine, readClaimPath } from '../../src/identity/claims.js'
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

describe('groupsFrom', () => {
  test('string is one group, array gives many, junk is dropped', () => {
    expect(groupsFrom('data eng')).toEqual(['data eng'])
    expect(groupsFrom(['a', 'b', 'a', 3, null, ''])).toEqual(['a', 'b'])
    expect(groupsFrom(undefined)).toEqual([])
    expect(groupsFrom({ a: 1 })).toEqual([])
  })
})

describe('rolesFor', () => {
  const config = {
    groupRoles: { eng: ['analyst'], dba: ['admin', 'analyst'] },
    clientRoles: { 'ci-bot': ['ci'] }
  }

  test('union of group roles and client roles, deduplicated', () => {
    expect(rolesFor(['eng', 'dba'], 'ci-bot', config)).toEqual(['analyst', 'admin', 'ci'])
    expect(rolesFor([], undefined, config)).toEqual([])
  })

  test('prototype property names grant nothing', () => {
    expect(rolesFor(['constructor', '__proto__', 'toString'], 'hasOwnProperty', config)).toEqual([])
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
