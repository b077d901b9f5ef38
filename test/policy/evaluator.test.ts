// Analyses in this file are hand-built fixtures (see fixtures.ts), not analyzer output.
import { describe, expect, test } from 'vitest'
import { createPolicyEngine, policyError } from '../../src/policy/evaluator.js'
import { parsePolicySet, type PolicySource } from '../../src/policy/loader.js'
import { analysis, engineFrom, input, MONDAY_10_UTC, principal, stmt } from './fixtures.js'

const engineFromSources = (sources: PolicySource[]) => createPolicyEngine(parsePolicySet(sources))
const select = (...tables: string[]) => stmt('select', { text: 'SELECT …', tablesRead: tables })

describe('matchers (one each)', () => {
  test('roles: any listed role of the principal matches', () => {
    const e = engineFrom('rules:\n  - { id: r, effect: allow, match: { roles: [analyst, agent] } }')
    expect(e.decide(input(analysis(select()), { principal: principal({ roles: ['agent'] }) })).ruleId).toBe('r')
    expect(e.decide(input(analysis(select()), { principal: principal({ roles: ['other'] }) })).ruleId).toBe('default-deny')
  })

  test('groups', () => {
    const e = engineFrom('rules:\n  - { id: g, effect: allow, match: { groups: [data-team] } }')
    expect(e.decide(input(analysis(select()), { principal: principal({ groups: ['data-team'] }) })).effect).toBe('allow')
    expect(e.decide(input(analysis(select()), { principal: principal({ groups: ['sales'] }) })).effect).toBe('deny')
  })

  test('principal type', () => {
    const e = engineFrom('rules:\n  - { id: bots, effect: allow, match: { principalTypes: [machine] } }')
    expect(e.decide(input(analysis(select()), { principal: principal({ type: 'machine' }) })).effect).toBe('allow')
    expect(e.decide(input(analysis(select()), { principal: principal({ type: 'human' }) })).effect).toBe('deny')
  })

  test('connection names with globs, and connection kinds', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: dev, effect: allow, match: { connections: ["*-dev"] } }',
      '  - { id: bq, effect: allow, match: { connectionKinds: [bigquery] } }'
    ].join('\n'))
    expect(e.decide(input(analysis(select()), { connection: { name: 'pg-dev', kind: 'postgres' } })).ruleId).toBe('dev')
    expect(e.decide(input(analysis(select()), { connection: { name: 'bq-prod', kind: 'bigquery' } })).ruleId).toBe('bq')
    expect(e.decide(input(analysis(select()), { connection: { name: 'pg-prod', kind: 'postgres' } })).ruleId).toBe('default-deny')
  })

  test('statement kinds', () => {
    const e = engineFrom('rules:\n  - { id: reads, effect: allow, match: { kinds: [select, show] } }')
    expect(e.decide(input(analysis(stmt('show')))).effect).toBe('allow')
    expect(e.decide(input(analysis(stmt('delete')))).effect).toBe('deny')
  })

  test('tables: an allow needs every touched table to match', () => {
    const e = engineFrom('rules:\n  - { id: analytics, effect: allow, match: { tables: ["analytics.**"] } }')
    expect(e.decide(input(analysis(select('analytics.public.orders')))).ruleId).toBe('analytics')
    expect(e.decide(input(analysis(select('analytics.public.orders', 'secret.hr.salaries')))).ruleId).toBe('default-deny')
    // writes count too: INSERT INTO secret … SELECT FROM analytics is not covered
    expect(e.decide(input(analysis(stmt('insert', { tablesRead: ['analytics.a.b'], tablesWritten: ['secret.a.b'] })))).ruleId).toBe('default-deny')
    // no table at all: a table rule says nothing about it
    expect(e.decide(input(analysis(select()))).ruleId).toBe('default-deny')
  })

  test('tables: a deny matches when any touched table matches, and names it', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: no-hr, effect: deny, match: { tables: ["*.hr.*"] } }',
      '  - { id: rest, effect: allow }'
    ].join('\n'))
    const d = e.decide(input(analysis(select('db.public.orders', 'db.HR.salaries'))))
    expect(d.ruleId).toBe('no-hr')
    expect(d.reason).toContain('SELECT on db.HR.salaries is not allowed')
    expect(e.decide(input(analysis(select('db.public.orders')))).ruleId).toBe('rest')
  })

  test('time windows: days, hours and IANA time zone', () => {
    const e = engineFrom([
      'rules:',
      '  - id: office',
      '    effect: allow',
      '    match: { time: { timezone: Europe/Paris, days: [mon, tue, wed, thu, fri], hours: ["09:00-18:00"] } }'
    ].join('\n'))
    const at = (iso: string) => e.decide(input(analysis(select()), { now: new Date(iso) })).effect
    expect(at('2025-01-06T08:30:00Z')).toBe('allow') // Monday 09:30 in Paris (UTC+1)
    expect(at('2025-01-06T07:30:00Z')).toBe('deny') // 08:30 Paris
    expect(at('2025-01-06T17:00:00Z')).toBe('deny') // 18:00 Paris, end exclusive
    expect(at('2025-07-07T15:30:00Z')).toBe('allow') // 17:30 CEST: summer time applied
    expect(at('2025-07-07T16:30:00Z')).toBe('deny') // 18:30 CEST
    expect(at('2025-01-11T10:00:00Z')).toBe('deny') // Saturday
  })

  test('time windows: a range wrapping midnight belongs to the day it started', () => {
    const e = engineFrom([
      'rules:',
      '  - id: night',
      '    effect: allow',
      '    match: { time: { days: [fri], hours: ["22:00-06:00"] } }'
    ].join('\n'))
    const at = (iso: string) => e.decide(input(analysis(select()), { now: new Date(iso) })).effect
    expect(at('2025-01-10T23:00:00Z')).toBe('allow') // Friday 23:00
    expect(at('2025-01-11T05:59:00Z')).toBe('allow') // Saturday 05:59, Friday's night
    expect(at('2025-01-11T06:00:00Z')).toBe('deny')
    expect(at('2025-01-11T23:00:00Z')).toBe('deny') // Saturday night is not Friday's
    expect(at('2025-01-10T05:00:00Z')).toBe('deny') // Friday early morning is Thursday's night
  })
})

describe('evaluation order and defaults', () => {
  test('first match wins', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: first, effect: deny, match: { kinds: [delete] } }',
      '  - { id: second, effect: allow, match: { roles: [agent] } }'
    ].join('\n'))
    expect(e.decide(input(analysis(stmt('delete')))).ruleId).toBe('first')
    expect(e.decide(input(analysis(select()))).ruleId).toBe('second')
  })

  test('files merge in file-name order, so the earlier file wins', () => {
    const e = engineFromSources([
      { name: 'b.yaml', text: 'version: 1\nrules:\n  - { id: from-b, effect: allow }' },
      { name: 'a.yaml', text: 'version: 1\nrules:\n  - { id: from-a, effect: deny }' }
    ])
    expect(e.decide(input(analysis(select()))).ruleId).toBe('from-a')
  })

  test('default deny names rule default-deny and says what to do', () => {
    const e = engineFrom('rules: []')
    const d = e.decide(input(analysis(stmt('delete', { tablesWritten: ['db.s.t'] }))))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'default-deny', limits: {} })
    expect(d.reason).toBe('denied by rule default-deny: no rule allows DELETE on db.s.t for role agent on connection snowflake-prod. ' +
      'It was not run; ask a policy administrator to add a rule if this access is needed.')
  })

  test('a request with no statement is denied', () => {
    const d = engineFrom('rules:\n  - { id: all, effect: allow }').decide(input(analysis()))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'default-deny' })
  })
})

describe('fail closed on unknown statements', () => {
  const unknown = stmt('unknown', { text: 'SELEC 1', parseError: 'syntax error at SELEC' })

  test('a broad allow (no kinds) never allows an unknown statement', () => {
    const e = engineFrom('rules:\n  - { id: everything, effect: allow }')
    expect(e.decide(input(analysis(unknown))).ruleId).toBe('default-deny')
  })

  test('an allow over tables does not allow an unknown statement', () => {
    const e = engineFrom('rules:\n  - { id: t, effect: allow, match: { kinds: [select, unknown], tables: ["**"] } }')
    expect(e.decide(input(analysis(unknown))).effect).toBe('deny')
  })

  test('an allow that lists unknown explicitly does', () => {
    const e = engineFrom('rules:\n  - { id: yolo, effect: allow, match: { kinds: [unknown] } }')
    expect(e.decide(input(analysis(unknown))).effect).toBe('allow')
  })

  test('restrictive rules without kinds, or with tables, catch unknown statements', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: guard-hr, effect: deny, match: { tables: ["hr.**"] } }',
      '  - { id: yolo, effect: allow, match: { kinds: [unknown] } }'
    ].join('\n'))
    const d = e.decide(input(analysis(unknown)))
    expect(d.ruleId).toBe('guard-hr')
    expect(d.reason).toContain('a statement Sluice could not analyse (syntax error at SELEC)')
    const approval = engineFrom('rules:\n  - { id: hold-all, effect: require_approval }')
    expect(approval.decide(input(analysis(unknown))).ruleId).toBe('hold-all')
  })
})

describe('multi-statement requests', () => {
  const e = engineFrom([
    'rules:',
    '  - { id: no-ddl, effect: deny, match: { kinds: [ddl] } }',
    '  - { id: writes, effect: require_approval, match: { kinds: [insert, delete] } }',
    '  - { id: reads, effect: allow, match: { kinds: [select] }, limits: { maxRows: 100 } }',
    '  - { id: meta, effect: allow, match: { kinds: [show] }, limits: { maxRows: 10, autoLimit: 5 } }'
  ].join('\n'))

  test('the strictest statement decides: deny over require_approval over allow', () => {
    const d = e.decide(input(analysis(select(), stmt('insert'), stmt('ddl', { text: 'DROP TABLE x' }), stmt('delete'))))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'no-ddl', statementIndex: 2, limits: {} })
    expect(d.reason).toBe('denied by rule no-ddl: DDL (DROP) (statement 3 of 4) is not allowed for role agent on connection snowflake-prod. ' +
      'It was not run; change the request to stay within policy, or ask a policy administrator for access.')
    const held = e.decide(input(analysis(select(), stmt('delete'), stmt('insert'))))
    expect(held).toMatchObject({ effect: 'require_approval', ruleId: 'writes', statementIndex: 1 })
  })

  test('one unmatched statement denies the whole request', () => {
    expect(e.decide(input(analysis(select(), stmt('merge')))).ruleId).toBe('default-deny')
  })

  test('all allowed: allowed, and every limit takes its strictest value', () => {
    const d = e.decide(input(analysis(select(), stmt('show'))))
    expect(d).toMatchObject({ effect: 'allow', ruleId: 'reads', limits: { maxRows: 10, autoLimit: 5 } })
    expect(d.reason).toContain('all 2 statements are allowed')
    expect(d.reason).toContain('also by rule meta')
  })
})

describe('limits', () => {
  test('come from the deciding rule, over the file defaults', () => {
    const e = engineFrom([
      'defaults: { limits: { statementTimeoutSeconds: 300, maxRows: 1000 } }',
      'rules:',
      '  - { id: bq, effect: allow, match: { connectionKinds: [bigquery] }, limits: { maximumBytesBilled: 1000000, maxRows: 50, autoLimit: 20 } }',
      '  - { id: other, effect: allow }'
    ].join('\n'))
    expect(e.decide(input(analysis(select()), { connection: { name: 'bq', kind: 'bigquery' } })).limits)
      .toEqual({ statementTimeoutSeconds: 300, maxRows: 50, maximumBytesBilled: 1000000, autoLimit: 20 })
    expect(e.decide(input(analysis(select()))).limits).toEqual({ statementTimeoutSeconds: 300, maxRows: 1000 })
  })
})

describe('require_approval', () => {
  test('is never an allow: effect stays require_approval and the error refuses', () => {
    const e = engineFrom([
      'rules:',
      '  - { id: writes-held, effect: require_approval, match: { kinds: [delete] }, message: Ask the data owner., limits: { maxRows: 5 } }',
      '  - { id: all, effect: allow }'
    ].join('\n'))
    const d = e.decide(input(analysis(select(), stmt('delete', { tablesWritten: ['db.s.t'] }))))
    expect(d.effect).toBe('require_approval')
    expect(d.effect).not.toBe('allow')
    expect(d.reason).toBe('approval required by rule writes-held: DELETE on db.s.t (statement 2 of 2) needs a human\'s approval ' +
      'for role agent on connection snowflake-prod. Ask the data owner.')
    const err = policyError(d) as Error & { code: string, statusCode: number }
    expect(err.code).toBe('SLUICE_APPROVAL_REQUIRED')
    expect(err.statusCode).toBe(403)
    expect(err.message).toBe(d.reason)
  })
})

describe('reasons', () => {
  test('a deny reads "denied by rule <id>: <KIND> is not allowed for role <r> on connection <c>"', () => {
    const e = engineFrom('rules:\n  - { id: agents-read-only, effect: deny, match: { roles: [agent], kinds: [delete] }, message: Only reads are allowed }')
    const d = e.decide(input(analysis(stmt('delete')), { principal: principal({ roles: ['reader', 'agent'] }) }))
    expect(d.reason).toBe('denied by rule agents-read-only: DELETE is not allowed for role agent on connection snowflake-prod. Only reads are allowed.')
    expect(d.detail).toBe(d.reason.slice('denied by rule agents-read-only: '.length))
    const err = policyError(d) as Error & { code: string }
    expect(err.code).toBe('SLUICE_POLICY_DENIED')
    expect(err.message).toBe(d.reason)
    expect(policyError(engineFrom('rules:\n  - { id: a, effect: allow }').decide(input(analysis(select()))))).toBeUndefined()
  })

  test('every decision carries a rule id and a reason; version is the content hash', () => {
    const e = engineFrom('rules:\n  - { id: a, effect: allow, match: { kinds: [select] } }')
    for (const a of [analysis(select()), analysis(stmt('update')), analysis()]) {
      const d = e.decide(input(a, { now: MONDAY_10_UTC }))
      expect(d.ruleId).not.toBe('')
      expect(d.reason.length).toBeGreaterThan(20)
    }
    expect(e.version).toMatch(/^sha256:[0-9a-f]{16}$/)
  })
})
