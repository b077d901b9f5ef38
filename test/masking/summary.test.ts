// The masking summary a held statement's approver sees: rules guarding columns of the tables it
// touches, for this principal (exempt roles) on this connection.
import { describe, expect, it } from 'vitest'
import { maskedColumnsFor } from '../../src/masking/summary.js'
import { parsePolicySet } from '../../src/policy/loader.js'

const rules = parsePolicySet([{ name: 'm.yaml', text: `version: 1
masking:
  - id: mask-email
    columns: ['db.crm.customers.email']
    function: redact
    exemptRoles: [support]
  - id: mask-ssn-everywhere
    columns: ['**.ssn']
    function: redact
  - id: mask-card
    columns: ['db.pay.cards.holder.name']
    function: redact
    connections: ['prod-*']
` }]).masking

describe('masked columns before a statement runs', () => {
  it('names the rules on the touched tables, honouring exempt roles and connections', () => {
    expect(maskedColumnsFor(rules, ['agent'], 'prod-1', ['db.crm.customers'])).toEqual(['db.crm.customers.email (mask-email)', '**.ssn (mask-ssn-everywhere)'])
    expect(maskedColumnsFor(rules, ['support'], 'prod-1', ['db.crm.customers'])).toEqual(['**.ssn (mask-ssn-everywhere)'])
    // A nested field's table: the glob's leading segments.
    expect(maskedColumnsFor(rules, ['agent'], 'prod-1', ['db.pay.cards'])).toContain('db.pay.cards.holder.name (mask-card)')
    expect(maskedColumnsFor(rules, ['agent'], 'dev', ['db.pay.cards'])).not.toContain('db.pay.cards.holder.name (mask-card)')
    expect(maskedColumnsFor(rules, ['agent'], 'prod-1', [])).toEqual([])
  })
})
