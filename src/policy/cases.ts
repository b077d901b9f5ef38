// The engine side of `sluice policy test` and `sluice policy explain`. Policy repositories run
// their cases in CI, so everything here returns data plus printable text and never exits or
// prints itself; the CLI decides what to do with a failure.
import { Ajv } from 'ajv'
import { LineCounter, parseDocument } from 'yaml'
import { ERR_POLICY_INVALID } from '../errors.js'
import type { Analysis, Dialect } from '../sql/types.js'
import type { CompiledPolicyEngine, StatementDecision } from './evaluator.js'
import type { Decision, Effect, Limits, PolicyEngine, PolicySubject } from './types.js'

export type AnalyzeFn = (sql: string, dialect: Dialect) => Analysis

export interface PolicyCase {
  name: string
  principal: PolicySubject
  connection: { name: string, kind: Dialect }
  sql: string
  /** Decision time; the run's `now` (default: the real clock) when absent. */
  now?: Date
  expect: {
    effect: Effect
    /** Rule id that must decide; any when absent. */
    rule?: string
    /** Each given field must equal the decision's limit (absent fields are not checked). */
    limits?: Limits
    /** Substring the reason must contain. */
    reasonContains?: string
  }
}

export interface CaseResult {
  index: number
  name: string
  pass: boolean
  decision?: Decision
  analysis?: Analysis
  /** One line per mismatch ("rule: expected x, got y"); empty when the case passed. */
  mismatches: string[]
  /** Printable block for this case (expected vs actual); empty when the case passed. */
  diff: string
}

export interface CasesReport {
  ok: boolean
  total: number
  passed: number
  failed: number
  results: CaseResult[]
}

const principalSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    subject: { type: 'string', minLength: 1 },
    type: { enum: ['human', 'machine'] },
    roles: { type: 'array', items: { type: 'string' } },
    groups: { type: 'array', items: { type: 'string' } },
    clientId: { type: 'string' }
  }
}
const dialects = { enum: ['snowflake', 'bigquery', 'postgres'] }
const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...Object.fromEntries(['maxRows', 'statementTimeoutSeconds', 'maximumBytesBilled', 'autoLimit'].map((k) => [k, { type: 'integer' }])),
    maxRowsAction: { enum: ['truncate', 'refuse'] }
  }
}
const casesSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cases'],
  properties: {
    description: { type: 'string' },
    now: { type: 'string', minLength: 1 },
    connections: { type: 'object', additionalProperties: dialects },
    principals: { type: 'object', additionalProperties: principalSchema },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'principal', 'connection', 'sql', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1 },
          principal: { anyOf: [{ type: 'string', minLength: 1 }, principalSchema] },
          connection: {
            anyOf: [
              { type: 'string', minLength: 1 },
              { type: 'object', additionalProperties: false, required: ['name', 'kind'], properties: { name: { type: 'string', minLength: 1 }, kind: dialects } }
            ]
          },
          sql: { type: 'string', minLength: 1 },
          now: { type: 'string', minLength: 1 },
          expect: {
            type: 'object',
            additionalProperties: false,
            required: ['effect'],
            properties: {
              effect: { enum: ['allow', 'deny', 'require_approval'] },
              rule: { type: 'string', minLength: 1 },
              limits: limitsSchema,
              reasonContains: { type: 'string', minLength: 1 }
            }
          }
        }
      }
    }
  }
}

const validateCases = new Ajv({ allErrors: true, strict: false }).compile(casesSchema)

interface RawPrincipal { subject?: string, type?: 'human' | 'machine', roles?: string[], groups?: string[], clientId?: string }
interface RawCases {
  now?: string
  connections?: Record<string, Dialect>
  principals?: Record<string, RawPrincipal>
  cases: Array<{
    name: string
    principal: string | RawPrincipal
    connection: string | { name: string, kind: Dialect }
    sql: string
    now?: string
    expect: PolicyCase['expect']
  }>
}

function toSubject (raw: RawPrincipal, fallback: string): PolicySubject {
  return {
    subject: raw.subject ?? fallback,
    type: raw.type ?? 'human',
    roles: raw.roles ?? [],
    groups: raw.groups ?? [],
    ...(raw.clientId !== undefined && { clientId: raw.clientId })
  }
}

/**
 * Parses a cases file. Principals and connections may be named once at the top (`principals:`,
 * `connections:` name → kind) and referred to by name. Throws ERR_POLICY_INVALID with the file
 * label and JSON pointer of each problem.
 */
export function parsePolicyCases (text: string, label = 'cases'): PolicyCase[] {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true })
  if (doc.errors.length > 0) throw new ERR_POLICY_INVALID(label, `YAML syntax: ${doc.errors.map((e) => e.message.split('\n')[0]).join('; ')}`)
  const data: unknown = doc.toJS()
  if (!validateCases(data)) {
    const msgs = (validateCases.errors ?? []).slice(0, 20).map((e) => `${e.instancePath === '' ? '/' : e.instancePath}: ${e.message ?? e.keyword}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`)
    throw new ERR_POLICY_INVALID(label, msgs.join('; '))
  }
  const raw = data as unknown as RawCases
  const problems: string[] = []
  const parseNow = (value: string | undefined, pointer: string): Date | undefined => {
    if (value === undefined) return undefined
    const d = new Date(value)
    if (Number.isNaN(d.getTime())) problems.push(`${pointer}: "${value}" is not an ISO 8601 date-time`)
    return d
  }
  const fileNow = parseNow(raw.now, '/now')
  const cases = raw.cases.map((c, i): PolicyCase => {
    let principal: PolicySubject
    if (typeof c.principal === 'string') {
      const named = raw.principals?.[c.principal]
      if (named === undefined) problems.push(`/cases/${i}/principal: no principal named "${c.principal}" under principals:`)
      principal = toSubject(named ?? {}, c.principal)
    } else {
      principal = toSubject(c.principal, 'policy-test')
    }
    let connection: PolicyCase['connection']
    if (typeof c.connection === 'string') {
      const kind = raw.connections?.[c.connection]
      if (kind === undefined) problems.push(`/cases/${i}/connection: no connection named "${c.connection}" under connections:`)
      connection = { name: c.connection, kind: kind ?? 'postgres' }
    } else {
      connection = c.connection
    }
    const now = parseNow(c.now, `/cases/${i}/now`) ?? fileNow
    return { name: c.name, principal, connection, sql: c.sql, expect: c.expect, ...(now !== undefined && { now }) }
  })
  if (problems.length > 0) throw new ERR_POLICY_INVALID(label, problems.join('; '))
  return cases
}

function effectLine (effect: string, rule: string | undefined): string {
  return rule !== undefined ? `${effect} by rule ${rule}` : effect
}

function indent (text: string, by: string): string {
  return text.split('\n').map((l) => by + l).join('\n')
}

/** Runs cases against an engine; a case whose analysis throws fails with the error. */
export function runPolicyCases (cases: readonly PolicyCase[], engine: PolicyEngine, analyze: AnalyzeFn, options: { now?: Date } = {}): CasesReport {
  const results = cases.map((c, index): CaseResult => {
    let analysis: Analysis
    try {
      analysis = analyze(c.sql, c.connection.kind)
    } catch (err) {
      const mismatch = `analysis failed: ${(err as Error).message}`
      return { index, name: c.name, pass: false, mismatches: [mismatch], diff: `sql:      ${c.sql}\n${mismatch}` }
    }
    const decision = engine.decide({ principal: c.principal, connection: c.connection, analysis, now: c.now ?? options.now ?? new Date() })
    const mismatches: string[] = []
    if (decision.effect !== c.expect.effect) mismatches.push(`effect: expected ${c.expect.effect}, got ${decision.effect}`)
    if (c.expect.rule !== undefined && decision.ruleId !== c.expect.rule) mismatches.push(`rule: expected ${c.expect.rule}, got ${decision.ruleId}`)
    for (const [k, v] of Object.entries(c.expect.limits ?? {}) as Array<[keyof Limits, number | string]>) {
      if (decision.limits[k] !== v) mismatches.push(`limits.${k}: expected ${v}, got ${decision.limits[k] ?? 'none'}`)
    }
    if (c.expect.reasonContains !== undefined && !decision.reason.includes(c.expect.reasonContains)) {
      mismatches.push(`reason: expected to contain "${c.expect.reasonContains}"`)
    }
    const pass = mismatches.length === 0
    const diff = pass
      ? ''
      : [
          `sql:      ${c.sql}`,
          `who:      ${c.principal.type} ${c.principal.subject} roles [${c.principal.roles.join(', ')}] on ${c.connection.name} (${c.connection.kind})`,
          `expected: ${effectLine(c.expect.effect, c.expect.rule)}`,
          `actual:   ${effectLine(decision.effect, decision.ruleId)}`,
          `reason:   ${decision.reason}`,
          ...mismatches.map((m) => `  - ${m}`)
        ].join('\n')
    return { index, name: c.name, pass, decision, analysis, mismatches, diff }
  })
  const passed = results.filter((r) => r.pass).length
  return { ok: passed === results.length, total: results.length, passed, failed: results.length - passed, results }
}

/** Printable report: one line per case, the diff under each failure, a summary line. */
export function formatCasesReport (report: CasesReport): string {
  const out: string[] = []
  for (const r of report.results) {
    out.push(`${r.pass ? 'ok  ' : 'FAIL'} ${r.index + 1}. ${r.name}`)
    if (!r.pass) out.push(indent(r.diff, '       '))
  }
  out.push(`${report.passed} passed, ${report.failed} failed, ${report.total} total`)
  return out.join('\n')
}

export interface ExplainInput {
  principal: PolicySubject
  connection: { name: string, kind: Dialect }
  sql: string
  now?: Date
}

function list (items: readonly string[]): string {
  return items.length > 0 ? items.join(', ') : '-'
}

function formatLimits (limits: Limits): string {
  const parts = Object.entries(limits).map(([k, v]) => `${k}=${String(v)}`)
  return parts.length > 0 ? parts.join(', ') : 'none'
}

/** Analysis and decision for one request, as text for `sluice policy explain`. */
export function explain (input: ExplainInput, engine: PolicyEngine | CompiledPolicyEngine, analyze: AnalyzeFn): { analysis: Analysis, decision: Decision, text: string } {
  const analysis = analyze(input.sql, input.connection.kind)
  const decisionInput = { principal: input.principal, connection: input.connection, analysis, now: input.now ?? new Date() }
  const decision = engine.decide(decisionInput)
  const each: StatementDecision[] | undefined = 'decideStatements' in engine ? engine.decideStatements(decisionInput) : undefined
  const p = input.principal
  const out = [
    `connection: ${input.connection.name} (${input.connection.kind})`,
    `principal:  ${p.type} ${p.subject}; roles: ${list(p.roles)}; groups: ${list(p.groups)}`,
    `time:       ${decisionInput.now.toISOString()}`,
    `policy:     ${engine.version}`,
    `statements: ${analysis.statements.length}`
  ]
  analysis.statements.forEach((s, i) => {
    out.push(`  ${i + 1}. ${s.kind}: ${s.text.replace(/\s+/g, ' ').trim()}`)
    out.push(`     read: ${list(s.tablesRead)}; written: ${list(s.tablesWritten)}; functions: ${list(s.functions)}; has limit: ${s.hasLimit ? 'yes' : 'no'}`)
    if (s.parseError !== undefined) out.push(`     parse error: ${s.parseError}`)
    const d = each?.[i]
    if (d !== undefined) {
      const where = d.rule !== undefined ? ` (${d.rule.source.file}, rules[${d.rule.source.index}])` : ' (no rule matched)'
      out.push(`     -> ${effectLine(d.effect, d.ruleId)}${where}${d.table !== undefined ? ` matched table ${d.table}` : ''}`)
    }
  })
  out.push(`decision:   ${effectLine(decision.effect, decision.ruleId)}`)
  out.push(`reason:     ${decision.reason}`)
  out.push(`limits:     ${formatLimits(decision.limits)}`)
  return { analysis, decision, text: out.join('\n') }
}
