import { describe, expect, test } from 'vitest'
import { compileGlob, compileGlobs, compileGlobsLoose } from '../../src/policy/glob.js'

const m = (pattern: string, name: string): boolean => compileGlob(pattern).test(name)

describe('policy globs', () => {
  test('a literal matches itself only, case-insensitively', () => {
    expect(m('db.public.orders', 'db.public.orders')).toBe(true)
    expect(m('db.public.orders', 'DB.Public.ORDERS')).toBe(true)
    expect(m('db.public.orders', 'db.public.orders2')).toBe(false)
    expect(m('db.public.orders', 'xdb.public.orders')).toBe(false)
  })

  test('* stays inside one segment', () => {
    expect(m('db.*.orders', 'db.public.orders')).toBe(true)
    expect(m('db.*.orders', 'db.a.b.orders')).toBe(false)
    expect(m('db.pub*', 'db.public')).toBe(true)
    expect(m('db.*', 'db.public.orders')).toBe(false)
    expect(m('*-prod', 'snowflake-prod')).toBe(true)
    expect(m('*-prod', 'snowflake-prod-2')).toBe(false)
  })

  test('? is one character within a segment', () => {
    expect(m('db.t?', 'db.t1')).toBe(true)
    expect(m('db.t?', 'db.t12')).toBe(false)
    expect(m('db?x', 'db.x')).toBe(false)
  })

  test('** as a segment spans zero or more segments', () => {
    expect(m('db.**', 'db.public.orders')).toBe(true)
    expect(m('db.**', 'other.public.orders')).toBe(false)
    expect(m('**.orders', 'db.public.orders')).toBe(true)
    expect(m('**.orders', 'orders')).toBe(true)
    expect(m('**.orders', 'db.public.xorders')).toBe(false)
    expect(m('a.**.z', 'a.z')).toBe(true)
    expect(m('a.**.z', 'a.b.c.z')).toBe(true)
    expect(m('a.**.z', 'a.bz')).toBe(false)
    expect(m('**', 'anything.at.all')).toBe(true)
    expect(m('**.**', 'a')).toBe(true)
  })

  test('regex metacharacters are literal', () => {
    expect(m('db.a+b', 'db.a+b')).toBe(true)
    expect(m('db.a+b', 'db.aab')).toBe(false)
    expect(m('db.(x)|y', 'y')).toBe(false)
    expect(m('proj-1.ds.t', 'proj-1.ds.t')).toBe(true)
    expect(m('a.b', 'aXb')).toBe(false)
  })

  test('a list matches when any glob matches', () => {
    const f = compileGlobs(['hr.**', '*.*.salaries'])
    expect(f('hr.x.y')).toBe(true)
    expect(f('db.s.salaries')).toBe(true)
    expect(f('db.s.orders')).toBe(false)
  })
})

describe('name parts the analysis could not know', () => {
  test('restrictive matchers claim them, allow matchers do not', () => {
    const loose = compileGlobsLoose(['analytics.crm.customers', '*.hr.**'])
    const strict = compileGlobs(['analytics.crm.customers'])
    expect(loose('analytics.?.customers')).toBe(true)
    expect(loose('?.?.customers')).toBe(true)
    expect(loose('?.?.orders')).toBe(true) // it may be a table of the hr schema
    expect(loose('x.?.orders')).toBe(true)
    expect(loose('x.y.orders')).toBe(false)
    expect(compileGlobsLoose(['analytics.crm.customers'])('analytics.?.orders')).toBe(false)
    expect(loose('x.?.payroll.salary')).toBe(true)
    expect(strict('analytics.?.customers')).toBe(false)
    expect(compileGlobs(['analytics.*.customers'])('analytics.?.customers')).toBe(true)
  })
})
