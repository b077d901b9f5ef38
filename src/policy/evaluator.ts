// Turns a compiled PolicySet into a PolicyEngine. Every statement of a request is decided on its
// own (first matching rule wins, default deny); the request gets the strictest of those answers,
// so one harmless SELECT cannot carry a DROP through. Where a condition cannot be known (a
// statement Sluice could not analyse), restrictive rules match and permissive ones do not. A
// statement the parser could not read at all is a syntax error, refused before any rule
// (`unparsed`), so no rule claims a typo.
import { UNKNOWN_PART } from '../sql/names.js'
import { REREAD_WHAT } from '../sql/rereads.js'
import type { Dialect, ParseFailure, StatementAnalysis, StatementKind } from '../sql/types.js'
import { ERR_APPROVAL_REQUIRED, ERR_POLICY_DENIED, ERR_SQL_SYNTAX } from '../errors.js'
import { approvalSettings } from './approval.js'
import { formatBytes } from './bytes.js'
import { DEFAULT_DENY_RULE_ID, REREAD_RULE_ID, type CompiledRule, type CompiledTimeWindow, type PolicySet } from './model.js'
import { UNPARSED_RULE_ID, type Decision, type DecisionInput, type Effect, type Limits, type PolicyEngine, type PolicySubject } from './types.js'

/** How one statement of a request was decided. */
export interface StatementDecision {
  index: number
  statement: StatementAnalysis
  effect: Effect
  /** Undefined when no rule matched (default deny). */
  rule: CompiledRule | undefined
  ruleId: string
  /** For a restrictive rule with `tables`: the first touched table that matched. */
  table?: string
  /** The rule is about tables, and decided because this statement's tables are unknown. */
  unknownTables?: boolean
  /** Set when Sluice itself refused the statement (the rule allowed it): why, in full. */
  builtin?: string
  /** The rule matched on the warehouse's estimate: the bytes over its limit, or none to be had. */
  estimated?: { bytes: number, over: number } | { none: true, over: number }
}

/** `match.functions`: the statement calls a listed function (an allow: calls only listed ones). */
function functionsMatch (rule: CompiledRule, stmt: StatementAnalysis): boolean {
  const listed = rule.functions
  if (listed === undefined) return true
  const hit = (fn: string): boolean => listed(fn) || listed(fn.slice(fn.lastIndexOf('.') + 1))
  const called = stmt.functions.map((f) => f.toLowerCase())
  if (!called.some(hit)) return false
  return rule.effect !== 'allow' || called.every(hit)
}

/** `match.rereads`: the statement reads one of the listed sources (an allow: only listed ones). */
function rereadsMatch (rule: CompiledRule, stmt: StatementAnalysis): boolean {
  if (rule.rereads === undefined) return true
  const kinds = (stmt.rereads ?? []).map((r) => r.kind)
  if (!kinds.some((k) => rule.rereads?.has(k) === true)) return false
  return rule.effect !== 'allow' || kinds.every((k) => rule.rereads?.has(k) === true)
}

/**
 * `match.estimatedBytesOver`: the request's estimate is over the limit. Without an estimate the
 * rule still claims the statement, as `onNoEstimate` says (deny by default: fail closed).
 */
function estimateMatch (rule: CompiledRule, over: number, input: DecisionInput): { matched: false } | { matched: true, effect: Effect, estimated: NonNullable<StatementDecision['estimated']> } {
  const bytes = input.estimate?.bytes
  if (bytes === undefined) return { matched: true, effect: rule.onNoEstimate === 'hold' ? 'require_approval' : 'deny', estimated: { none: true, over } }
  return bytes > over ? { matched: true, effect: rule.effect, estimated: { bytes, over } } : { matched: false }
}

/**
 * Sources that re-read results or other sessions' SQL are refused even where a rule allows the
 * statement, unless that rule names them: lineage cannot see through them to any masking rule.
 */
function unallowedReread (rule: CompiledRule, stmt: StatementAnalysis): string | undefined {
  const open = (stmt.rereads ?? []).filter((r) => rule.rereads?.has(r.kind) !== true)
  const first = open[0]
  if (first === undefined) return undefined
  return `${first.name} is refused: ${REREAD_WHAT[first.kind]}, which Sluice can neither mask nor bind to you. ` +
    `It was not run; query the tables themselves instead (the same statement again, or the table the result came from). ` +
    `A policy administrator can allow it with a rule matching \`rereads: [${first.kind}]\`.`
}

export interface CompiledPolicyEngine extends PolicyEngine {
  readonly policySet: PolicySet
  /** Per-statement decisions behind `decide`, for `explain` and audit detail. */
  decideStatements (input: DecisionInput): StatementDecision[]
  needsEstimate (input: Omit<DecisionInput, 'analysis' | 'estimate'>): boolean
}

const SEVERITY: Record<Effect, number> = { allow: 0, require_approval: 1, deny: 2 }

export function inTimeWindow (window: CompiledTimeWindow, now: Date): boolean {
  const { day, minute } = window.localTime(now)
  const dayOpen = (d: number): boolean => window.days === undefined || window.days.has(d)
  if (window.ranges === undefined) return dayOpen(day)
  for (const [from, to] of window.ranges) {
    if (from < to) {
      if (minute >= from && minute < to && dayOpen(day)) return true
    } else {
      // Wrapping range: the part after midnight belongs to the day the range started.
      if (minute >= from && dayOpen(day)) return true
      if (minute < to && dayOpen((day + 6) % 7)) return true
    }
  }
  return false
}

function principalMatches (rule: CompiledRule, input: DecisionInput): boolean {
  const p = input.principal
  if (rule.roles !== undefined && !p.roles.some((r) => rule.roles?.has(r))) return false
  if (rule.groups !== undefined && !p.groups.some((g) => rule.groups?.has(g))) return false
  if (rule.principalTypes !== undefined && !rule.principalTypes.has(p.type)) return false
  if (rule.connections !== undefined && !rule.connections(input.connection.name)) return false
  if (rule.connectionKinds !== undefined && !rule.connectionKinds.has(input.connection.kind)) return false
  if (rule.time !== undefined && !inTimeWindow(rule.time, input.now)) return false
  return true
}

// `unknown-tables`: a restrictive rule about tables alone, on a statement whose tables are
// unknown. Such a rule is not about that statement, so it does not claim it; it only keeps a
// later, more permissive rule from running it (decideStatements).
type StatementMatch = { matched: false } | { matched: true, table?: string } | { matched: 'unknown-tables' }

function statementMatches (rule: CompiledRule, stmt: StatementAnalysis): StatementMatch {
  const restrictive = rule.effect !== 'allow'
  const unknown = stmt.kind === 'unknown'
  if (rule.kinds !== undefined) {
    if (!rule.kinds.has(stmt.kind)) return { matched: false }
  } else if (unknown && !restrictive) {
    // Fail closed: a broad allow must not let through what nobody could read.
    return { matched: false }
  }
  if (rule.tables === undefined) return { matched: true }
  const tables = [...new Set([...stmt.tablesRead, ...stmt.tablesWritten])]
  if (restrictive) {
    const hit = tables.find((t) => rule.tables?.(t) === true)
    if (hit !== undefined) return { matched: true, table: hit }
    if (!unknown) return { matched: false }
    // The tables of an unreadable statement are unknown, so they may include the guarded ones.
    return rule.kinds !== undefined ? { matched: true } : { matched: 'unknown-tables' }
  }
  // An allow over some tables must not cover a statement that also touches others.
  if (tables.length > 0 && tables.every((t) => rule.tables?.(t) === true)) return { matched: true }
  return { matched: false }
}

const KIND_WORD: Record<StatementKind, string> = {
  select: 'SELECT', insert: 'INSERT', update: 'UPDATE', delete: 'DELETE', merge: 'MERGE',
  ddl: 'DDL', dcl: 'DCL', copy: 'data transfer', call: 'procedure call', transaction: 'transaction control',
  session: 'session command', show: 'metadata command', notify: 'notification command', scripting: 'script block', unknown: 'unknown'
}
const PLAIN_KINDS = new Set<StatementKind>(['select', 'insert', 'update', 'delete', 'merge'])

function firstKeyword (text: string): string | undefined {
  const stripped = text.replace(/^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/, '')
  return /^[A-Za-z_]+/.exec(stripped)?.[0]?.toUpperCase()
}

/** "DELETE", "DDL (DROP)", "a statement Sluice could not analyse (…)". */
export function describeStatement (stmt: StatementAnalysis): string {
  if (stmt.kind === 'unknown') {
    return `a statement Sluice could not analyse${stmt.parseError !== undefined ? ` (${stmt.parseError})` : ''}`
  }
  const word = KIND_WORD[stmt.kind]
  if (PLAIN_KINDS.has(stmt.kind)) return word
  const temporary = TEMPORARY.exec(stmt.text)
  if (temporary !== null) return `${word} (CREATE TEMPORARY ${(temporary[1] as string).toUpperCase()})`
  const kw = firstKeyword(stmt.text)
  return kw !== undefined && kw !== word ? `${word} (${kw})` : word
}

const TEMPORARY = /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:LOCAL\s+|GLOBAL\s+)?(?:TEMP|TEMPORARY|VOLATILE)\s+(TABLE|STAGE|VIEW|FUNCTION|SEQUENCE)\b/i

/** What an agent can do instead, where the statement's kind says more than the rule does. */
function kindAdvice (stmt: StatementAnalysis): string {
  const temporary = TEMPORARY.exec(stmt.text)?.[1]?.toLowerCase()
  if (temporary === 'table' || temporary === 'view') return ` For intermediate results, use a CTE (WITH …) or a subquery instead of a temporary ${temporary}.`
  return ''
}

/**
 * A table name as a refusal shows it. Bare names are qualified with the connection's defaults;
 * where one was missing, the name holds an unknown part (`?.sales.t`), so the text says so and
 * how to name it.
 */
function tableWords (name: string, dialect: Dialect): string {
  const bare = name.replace(/ \(and \d+ more\)$/, '')
  const parts = bare.split('.')
  if (parts.length >= 3 && !parts.includes(UNKNOWN_PART)) return name
  const full = dialect === 'bigquery' ? 'project.dataset.table' : 'database.schema.table'
  const missing = dialect === 'bigquery' ? 'default dataset' : 'current database or schema'
  return `${name} (not fully qualified: the session's ${missing} is not known to Sluice; name it as ${full})`
}

const WAREHOUSE_SQL: Record<Dialect, string> = { snowflake: 'Snowflake SQL', bigquery: 'GoogleSQL', postgres: 'PostgreSQL' }

/** How a refused syntax error starts; ERR_SQL_SYNTAX prints the same words. */
export const UNPARSED_PREFIX = 'Sluice could not parse this statement; it was not run'

function syntaxDetail (failure: ParseFailure, dialect: Dialect): string {
  // The parser's words in parentheses: they may end in any token (`found: .`).
  return `syntax error at line ${failure.line}, column ${failure.column} (${failure.message}). ` +
    `Correct the statement and send it again; if it is valid ${WAREHOUSE_SQL[dialect]}, Sluice's parser does not read this form: rewrite it more simply.`
}

/** The table a reader would name first: the one written, else the first read. */
function primaryTable (stmt: StatementAnalysis): string | undefined {
  const all = [...new Set([...stmt.tablesWritten, ...stmt.tablesRead])]
  if (all.length === 0) return undefined
  return all.length === 1 ? all[0] : `${all[0] as string} (and ${all.length - 1} more)`
}

function describeWho (p: PolicySubject, rule: CompiledRule | undefined): string {
  const roles = rule?.roles !== undefined ? p.roles.filter((r) => rule.roles?.has(r)) : p.roles
  if (roles.length === 1) return `role ${roles[0] as string}`
  if (roles.length > 1) return `roles ${roles.join(', ')}`
  return `${p.type} ${p.subject} (no roles)`
}

const HINT: Record<Effect | 'default', string> = {
  allow: '',
  deny: 'It was not run; change the request to stay within policy, or ask a policy administrator for access.',
  require_approval: 'It was not run; ask a person who can approve it to run it, or to change the policy.',
  default: 'It was not run; ask a policy administrator to add a rule if this access is needed.'
}

function sentence (text: string): string {
  const t = text.trim()
  return /[.!?]$/.test(t) ? t : `${t}.`
}

function explainOne (d: StatementDecision, input: DecisionInput, total: number): { prefix: string, detail: string } {
  const unparsed = d.ruleId === UNPARSED_RULE_ID ? d.statement.unparsed : undefined
  if (unparsed !== undefined) return { prefix: UNPARSED_PREFIX, detail: syntaxDetail(unparsed, input.analysis.dialect) }
  const table = d.table ?? primaryTable(d.statement)
  const what = `${describeStatement(d.statement)}${table !== undefined ? ` on ${tableWords(table, input.analysis.dialect)}` : ''}` +
    (d.unknownTables === true ? ', whose tables are unknown and may include the tables this rule guards,' : '') +
    (total > 1 ? ` (statement ${d.index + 1} of ${total})` : '')
  const who = describeWho(input.principal, d.rule)
  const where = `on connection ${input.connection.name}`
  const extra = d.rule?.message !== undefined ? sentence(d.rule.message) : undefined
  const e = d.estimated
  if (e !== undefined && 'none' in e) {
    const prefix = d.effect === 'deny' ? `denied by rule ${d.ruleId}` : `approval required by rule ${d.ruleId}`
    const then = d.effect === 'deny' ? HINT.deny : HINT.require_approval
    return { prefix, detail: `${what} for ${who} ${where}: the warehouse gave no estimate of the bytes it would read, and the rule guards statements over ${formatBytes(e.over)}. ${then}` }
  }
  if (e !== undefined) {
    const size = ` would read ${formatBytes(e.bytes)} by the warehouse's estimate, over the rule's ${formatBytes(e.over)}`
    const prefix = d.effect === 'deny' ? `denied by rule ${d.ruleId}` : `approval required by rule ${d.ruleId}`
    const then = d.effect === 'deny' ? HINT.deny : HINT.require_approval
    return { prefix, detail: `${what} for ${who} ${where}${size}. ${extra ?? then}` }
  }
  if (d.builtin !== undefined) return { prefix: `denied by rule ${d.ruleId}`, detail: d.builtin }
  if (d.rule === undefined) {
    return { prefix: `denied by rule ${d.ruleId}`, detail: `no rule allows ${what} for ${who} ${where}. ${HINT.default}` }
  }
  switch (d.effect) {
    case 'deny':
      return { prefix: `denied by rule ${d.ruleId}`, detail: `${what} is not allowed for ${who} ${where}. ${extra ?? HINT.deny}${kindAdvice(d.statement)}` }
    case 'require_approval':
      return { prefix: `approval required by rule ${d.ruleId}`, detail: `${what} needs a human's approval for ${who} ${where}. ${extra ?? HINT.require_approval}${kindAdvice(d.statement)}` }
    default:
      return { prefix: `allowed by rule ${d.ruleId}`, detail: `${what} is allowed for ${who} ${where}` }
  }
}

function mergeLimits (defaults: Limits, decisions: StatementDecision[]): Limits {
  // Several statements may be allowed by different rules; each limit takes its strictest value.
  const out: Limits = {}
  for (const d of decisions) {
    const eff: Limits = { ...defaults, ...d.rule?.limits }
    for (const [k, v] of Object.entries(eff) as Array<[keyof Limits, Limits[keyof Limits]]>) {
      // maxRowsAction: refuse is the stricter (no partial answer at all).
      if (k === 'maxRowsAction') {
        if (out.maxRowsAction !== 'refuse') out.maxRowsAction = v as Limits['maxRowsAction']
        continue
      }
      const cur = out[k]
      out[k] = cur === undefined ? v as number : Math.min(cur, v as number)
    }
  }
  return out
}

export function createPolicyEngine (policySet: PolicySet): CompiledPolicyEngine {
  const rules = policySet.rules

  function decideStatements (input: DecisionInput): StatementDecision[] {
    // Principal, connection and time conditions are the same for every statement: check once.
    const candidates = rules.filter((r) => principalMatches(r, input))
    return input.analysis.statements.map((statement, index) => {
      // What the parser could not read never runs, whatever the rules say: a syntax error.
      if (statement.unparsed !== undefined) return { index, statement, effect: 'deny' as const, rule: undefined, ruleId: UNPARSED_RULE_ID }
      let guard: CompiledRule | undefined
      for (const rule of candidates) {
        const m = statementMatches(rule, statement)
        if (m.matched === 'unknown-tables') {
          guard ??= rule
          continue
        }
        if (!m.matched || !rereadsMatch(rule, statement) || !functionsMatch(rule, statement)) continue
        // Fail closed: a later rule may not be laxer than a rule on tables the statement may touch.
        if (guard !== undefined && SEVERITY[guard.effect] > SEVERITY[rule.effect]) {
          return { index, statement, effect: guard.effect, rule: guard, ruleId: guard.id, unknownTables: true }
        }
        const builtin = rule.effect === 'allow' ? unallowedReread(rule, statement) : undefined
        if (builtin !== undefined) return { index, statement, effect: 'deny' as const, rule: undefined, ruleId: REREAD_RULE_ID, builtin }
        if (rule.estimatedBytesOver !== undefined) {
          const e = estimateMatch(rule, rule.estimatedBytesOver, input)
          if (!e.matched) continue
          return { index, statement, effect: e.effect, rule, ruleId: rule.id, estimated: e.estimated, ...(m.table !== undefined && { table: m.table }) }
        }
        return { index, statement, effect: rule.effect, rule, ruleId: rule.id, ...(m.table !== undefined && { table: m.table }) }
      }
      return { index, statement, effect: 'deny' as const, rule: undefined, ruleId: DEFAULT_DENY_RULE_ID }
    })
  }

  function decide (input: DecisionInput): Decision {
    const each = decideStatements(input)
    if (each.length === 0) {
      const detail = 'the request contains no SQL statement to check; send one or more statements.'
      return { effect: 'deny', ruleId: DEFAULT_DENY_RULE_ID, reason: `denied by rule ${DEFAULT_DENY_RULE_ID}: ${detail}`, detail, limits: {} }
    }
    let decider = each[0] as StatementDecision
    for (const d of each) if (SEVERITY[d.effect] > SEVERITY[decider.effect]) decider = d
    let { prefix, detail } = explainOne(decider, input, each.length)
    if (decider.effect === 'allow' && each.length > 1) {
      const others = [...new Set(each.map((d) => d.ruleId))].filter((id) => id !== decider.ruleId)
      detail = `all ${each.length} statements are allowed for ${describeWho(input.principal, undefined)} on connection ${input.connection.name}` +
        (others.length > 0 ? ` (also by rule${others.length > 1 ? 's' : ''} ${others.join(', ')})` : '')
    }
    const limits = decider.effect === 'deny' ? {} : mergeLimits(policySet.defaults.limits, each)
    // A deny rule holding what it cannot measure (onNoEstimate: hold) has no settings of its own.
    const approval = decider.effect === 'require_approval' ? decider.rule?.approval ?? (decider.rule === undefined ? undefined : approvalSettings()) : undefined
    return {
      effect: decider.effect, ruleId: decider.ruleId, reason: `${prefix}: ${detail}`, detail, limits, statementIndex: decider.index,
      ...(approval !== undefined && { approval })
    }
  }

  function needsEstimate (input: Omit<DecisionInput, 'analysis' | 'estimate'>): boolean {
    return rules.some((r) => r.estimatedBytesOver !== undefined && principalMatches(r, input as DecisionInput))
  }

  return { decide, decideStatements, needsEstimate, policySet, version: policySet.version }
}

/**
 * The catalogue error for a refusal (ERR_POLICY_DENIED / ERR_APPROVAL_REQUIRED, ERR_SQL_SYNTAX for
 * `unparsed`), whose message is exactly `decision.reason`; undefined for an allow.
 */
export function policyError (decision: Decision): Error | undefined {
  const detail = decision.detail ?? decision.reason
  // A typo is answered as the warehouse's own syntax error, not as a policy denial.
  if (decision.effect === 'deny' && decision.ruleId === UNPARSED_RULE_ID) return new ERR_SQL_SYNTAX(detail)
  if (decision.effect === 'deny') return new ERR_POLICY_DENIED(decision.ruleId, detail)
  if (decision.effect === 'require_approval') return new ERR_APPROVAL_REQUIRED(decision.ruleId, detail)
  return undefined
}
