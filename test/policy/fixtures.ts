// Hand-built inputs for policy tests. Analyses here are fixtures, not analyzer output: the policy
// engine is tested against the Analysis contract alone.
import type { Analysis, Dialect, StatementAnalysis, StatementKind } from '../../src/sql/types.js'
import type { DecisionInput, PolicySubject } from '../../src/policy/types.js'
import { createPolicyEngine, type CompiledPolicyEngine } from '../../src/policy/evaluator.js'
import { parsePolicySet } from '../../src/policy/loader.js'

export function stmt (kind: StatementKind, opts: Partial<StatementAnalysis> = {}): StatementAnalysis {
  return { kind, text: opts.text ?? kind.toUpperCase(), tablesRead: [], tablesWritten: [], functions: [], hasLimit: false, ...opts }
}

export function analysis (...statements: StatementAnalysis[]): Analysis {
  return { dialect: 'snowflake', statements }
}

export function principal (over: Partial<PolicySubject> = {}): PolicySubject {
  return { subject: 'alice', type: 'human', groups: [], roles: ['agent'], ...over }
}

/** A Monday, 10:00 UTC. */
export const MONDAY_10_UTC = new Date('2025-01-06T10:00:00Z')

export function input (a: Analysis, over: Partial<Omit<DecisionInput, 'analysis'>> = {}): DecisionInput {
  return {
    principal: over.principal ?? principal(),
    connection: over.connection ?? { name: 'snowflake-prod', kind: 'snowflake' },
    analysis: a,
    now: over.now ?? MONDAY_10_UTC
  }
}

/** Engine from YAML text (one file); `version: 1` is prepended. */
export function engineFrom (yamlBody: string, name = 'test.yaml'): CompiledPolicyEngine {
  return createPolicyEngine(parsePolicySet([{ name, text: `version: 1\n${yamlBody}` }]))
}

export function dialectAnalysis (dialect: Dialect, statements: StatementAnalysis[]): Analysis {
  return { dialect, statements }
}
