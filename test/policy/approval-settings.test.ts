// A require_approval rule's `approval` settings: validated by the published schema, defaults
// applied, refused on other effects, and carried by the decision the pipeline holds on.
import { describe, expect, it } from 'vitest'
import { parsePolicySet } from '../../src/policy/loader.js'
import { createPolicyEngine } from '../../src/policy/evaluator.js'
import { createSqlAnalyzer } from '../../src/sql/analyzer.js'

const parse = (text: string) => parsePolicySet([{ name: 'p.yaml', text }])

describe('approval settings on policy rules', () => {
  it('applies the defaults to a require_approval rule without `approval`', () => {
    const set = parse('version: 1\nrules:\n  - id: hold-writes\n    effect: require_approval\n    match: { kinds: [delete] }\n')
    expect(set.rules[0]?.approval).toEqual({
      approvers: { roles: ['approver'], groups: [] },
      minApprovals: 1,
      expiresAfterMinutes: 30,
      allowSelfApproval: false,
      reasonRequiredToDeny: true,
      justification: 'none',
      grant: { maxMinutes: 60 },
      notify: []
    })
  })

  it('keeps what a rule sets', () => {
    const set = parse(`version: 1
rules:
  - id: hold-prod
    effect: require_approval
    approval:
      approvers: { groups: [dba] }
      minApprovals: 2
      expiresAfterMinutes: 10
      allowSelfApproval: true
      reasonRequiredToDeny: false
      justification: required
      grant: { maxMinutes: 0 }
      notify: [slack-dba]
`)
    expect(set.rules[0]?.approval).toEqual({
      approvers: { roles: [], groups: ['dba'] }, minApprovals: 2, expiresAfterMinutes: 10, allowSelfApproval: true,
      reasonRequiredToDeny: false, justification: 'required', grant: { maxMinutes: 0 }, notify: ['slack-dba']
    })
  })

  it('refuses malformed settings and settings on rules that hold nothing', () => {
    expect(() => parse('version: 1\nrules:\n  - id: a\n    effect: require_approval\n    approval: { minApprovals: 0 }\n')).toThrow(/\/rules\/0\/approval\/minApprovals.*must be >= 1/)
    expect(() => parse('version: 1\nrules:\n  - id: a\n    effect: require_approval\n    approval: { approvers: { users: [x] } }\n')).toThrow(/unknown key "users"/)
    expect(() => parse('version: 1\nrules:\n  - id: a\n    effect: require_approval\n    approval: { grant: { maxMinutes: 99999 } }\n')).toThrow(/maxMinutes/)
    expect(() => parse('version: 1\nrules:\n  - id: a\n    effect: allow\n    approval: { minApprovals: 2 }\n')).toThrow(/only a require_approval rule holds statements for approval/)
    expect(() => parse('version: 1\nrules:\n  - id: a\n    effect: require_approval\n    approval: { justification: always }\n')).toThrow(/justification/)
  })

  it('puts the deciding rule\'s settings on a require_approval decision, and none on others', async () => {
    const engine = createPolicyEngine(parse(`version: 1
rules:
  - id: hold-deletes
    effect: require_approval
    match: { kinds: [delete] }
    approval: { minApprovals: 2 }
  - id: reads
    effect: allow
    match: { kinds: [select] }
`))
    const analyzer = await createSqlAnalyzer()
    const decide = (sql: string) => engine.decide({
      principal: { subject: 'alice', type: 'human', groups: [], roles: ['agent'] },
      connection: { name: 'wh', kind: 'snowflake' },
      analysis: analyzer.analyze(sql, 'snowflake', { database: 'db', schema: 's' }),
      now: new Date()
    })
    expect(decide('select 1; delete from t where id = 1')).toMatchObject({ effect: 'require_approval', ruleId: 'hold-deletes', approval: { minApprovals: 2, approvers: { roles: ['approver'] } } })
    expect(decide('select * from t')).not.toHaveProperty('approval')
  })
})
