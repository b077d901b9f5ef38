// Cost-aware rules: `match.estimatedBytesOver` over the warehouse's estimate, `onNoEstimate`
// when none can be had (deny by default), what the loader refuses, and when the engine asks for
// an estimate at all. Analyses are hand-built fixtures (fixtures.ts).
import { describe, expect, test } from 'vitest'
import { formatBytes, parseBytes } from '../../src/policy/bytes.js'
import type { WarehouseEstimate } from '../../src/pipeline/estimate.js'
import { analysis, engineFrom, input, principal, stmt } from './fixtures.js'

const GIB = 2 ** 30
const select = stmt('select', { text: 'SELECT …', tablesRead: ['p.d.big'] })
const estimate = (bytes: number | undefined): WarehouseEstimate => ({ ...(bytes !== undefined && { bytes }), source: 'bigquery-dry-run' })

const HOLD_BIG = [
  'rules:',
  '  - { id: hold-big, effect: require_approval, match: { roles: [agent], estimatedBytesOver: 10GiB } }',
  '  - { id: reads, effect: allow, match: { kinds: [select] } }'
].join('\n')

describe('sizes', () => {
  const cases: Array<[string | number, number | undefined]> = [
    [0, 0], [1024, 1024], ['1024', 1024], ['10GiB', 10 * GIB], ['10 GiB', 10 * GIB], ['10gib', 10 * GIB], ['1.5TB', 1.5e12],
    ['500MB', 5e8], ['2KiB', 2048], ['3B', 3], ['1PiB', 2 ** 50],
    ['ten GiB', undefined], ['-1', undefined], [-1, undefined], [1.5, undefined], ['10 GB extra', undefined], ['10XB', undefined], ['', undefined]
  ]
  test.each(cases)('%s → %s bytes', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes)
  })

  test('formatted with the unit people read and the exact count', () => {
    expect(formatBytes(10 * GIB)).toBe('10 GiB (10737418240 bytes)')
    expect(formatBytes(512)).toBe('512 bytes')
    expect(formatBytes(1536)).toBe('1.5 KiB (1536 bytes)')
  })
})

describe('estimatedBytesOver', () => {
  const engine = engineFrom(HOLD_BIG)

  test('over the limit: the rule decides, and says by how much', () => {
    const d = engine.decide({ ...input(analysis(select)), estimate: estimate(50 * GIB) })
    expect(d).toMatchObject({ effect: 'require_approval', ruleId: 'hold-big' })
    expect(d.reason).toContain("would read 50 GiB (53687091200 bytes) by the warehouse's estimate, over the rule's 10 GiB (10737418240 bytes)")
    expect(d.approval?.minApprovals).toBe(1)
  })

  test('at or under the limit: the rule does not match and the next one decides', () => {
    for (const bytes of [0, 1, 10 * GIB]) {
      expect(engine.decide({ ...input(analysis(select)), estimate: estimate(bytes) })).toMatchObject({ effect: 'allow', ruleId: 'reads' })
    }
    expect(engine.decide({ ...input(analysis(select)), estimate: estimate(10 * GIB + 1) }).ruleId).toBe('hold-big')
  })

  test('no estimate (none asked, none to be had, or one without bytes): denied by default, fail closed', () => {
    for (const e of [undefined, null, estimate(undefined)]) {
      const d = engine.decide({ ...input(analysis(select)), ...(e !== undefined && { estimate: e }) })
      expect(d).toMatchObject({ effect: 'deny', ruleId: 'hold-big' })
      expect(d.reason).toMatch(/^denied by rule hold-big: .*the warehouse gave no estimate of the bytes it would read/)
    }
  })

  test('onNoEstimate: hold holds it for approval instead, under the rule\'s settings', () => {
    const e = engineFrom([
      'rules:',
      '  - id: hold-big',
      '    effect: require_approval',
      '    match: { estimatedBytesOver: 1000 }',
      '    onNoEstimate: hold',
      '    approval: { minApprovals: 2 }',
      '  - { id: reads, effect: allow, match: { kinds: [select] } }'
    ].join('\n'))
    const d = e.decide({ ...input(analysis(select)), estimate: null })
    expect(d).toMatchObject({ effect: 'require_approval', ruleId: 'hold-big', approval: { minApprovals: 2 } })
    expect(d.reason).toMatch(/^approval required by rule hold-big: .*gave no estimate/)
  })

  test('a deny rule on the estimate that holds what it cannot measure gets default approval settings', () => {
    const e = engineFrom('rules:\n  - { id: no-huge, effect: deny, match: { estimatedBytesOver: 1TB }, onNoEstimate: hold }\n  - { id: reads, effect: allow }')
    expect(e.decide({ ...input(analysis(select)), estimate: estimate(2e12) })).toMatchObject({ effect: 'deny', ruleId: 'no-huge' })
    expect(e.decide({ ...input(analysis(select)), estimate: null })).toMatchObject({ effect: 'require_approval', ruleId: 'no-huge', approval: { approvers: { roles: ['approver'] } } })
  })

  test('other conditions come first: a rule that does not apply to the caller never looks at the estimate', () => {
    const d = engine.decide({ ...input(analysis(select), { principal: principal({ roles: ['analyst'] }) }), estimate: null })
    expect(d).toMatchObject({ effect: 'allow', ruleId: 'reads' })
  })
})

describe('needsEstimate: asked only when a rule that could decide matches on it', () => {
  test('a rule on the estimate for the caller\'s role', () => {
    const engine = engineFrom(HOLD_BIG)
    expect(engine.needsEstimate(input(analysis(select)))).toBe(true)
    expect(engine.needsEstimate(input(analysis(select), { principal: principal({ roles: ['analyst'] }) }))).toBe(false)
  })

  test('no rule on the estimate: never', () => {
    expect(engineFrom('rules:\n  - { id: reads, effect: allow }').needsEstimate(input(analysis(select)))).toBe(false)
  })
})

describe('the loader', () => {
  const refused: Array<[string, RegExp]> = [
    ['  - { id: a, effect: allow, match: { estimatedBytesOver: 10GiB } }', /an allow rule cannot match on the estimate/],
    ['  - { id: a, effect: deny, onNoEstimate: hold }', /onNoEstimate says what a rule with match.estimatedBytesOver does/],
    ['  - { id: a, effect: deny, match: { estimatedBytesOver: lots } }', /estimatedBytesOver/],
    ['  - { id: a, effect: deny, match: { estimatedBytesOver: 10GiB }, onNoEstimate: maybe }', /onNoEstimate/],
    ['  - { id: a, effect: deny, match: { estimatedBytesOver: -5 } }', /estimatedBytesOver/]
  ]
  test.each(refused)('refuses %s', (rule, message) => {
    expect(() => engineFrom(`rules:\n${rule}`)).toThrow(message)
  })

  test('accepts a number of bytes', () => {
    const engine = engineFrom('rules:\n  - { id: a, effect: deny, match: { estimatedBytesOver: 5000 } }\n  - { id: b, effect: allow }')
    expect(engine.decide({ ...input(analysis(select)), estimate: estimate(5001) }).ruleId).toBe('a')
    expect(engine.decide({ ...input(analysis(select)), estimate: estimate(5000) }).ruleId).toBe('b')
  })
})
