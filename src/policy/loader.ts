// Reads a policies directory into one validated, compiled PolicySet. Validation happens here, at
// start and on every reload, so the evaluator never meets a malformed rule: a broken file is
// refused as a whole, with the file, JSON pointer and line of every problem, and the caller
// keeps whatever it was running before.
import { createHash } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { LineCounter, parseDocument, type Document } from 'yaml'
import { ERR_POLICY_INVALID } from '../errors.js'
import policySchema from '../../policies/schema.json' with { type: 'json' }
import { parseBytes } from './bytes.js'
import { compileGlobs, compileGlobsLoose } from './glob.js'
import {
  DEFAULT_DENY_RULE_ID, REREAD_RULE_ID, WEEKDAYS,
  type CompiledMaskingRule, type CompiledRule, type CompiledTimeWindow, type PolicyFileSpec,
  type InferenceUsage, type PolicySet, type TimeWindowSpec
} from './model.js'
import { UNPARSED_RULE_ID, type Limits } from './types.js'
import { approvalSettings } from './approval.js'

export interface PolicySource {
  /** File name (no directory): orders the merge and feeds the version hash. */
  name: string
  text: string
  /** How messages name the file; defaults to `name`. */
  label?: string
}

/** True for the files a policies directory contributes (cases files and dotfiles are skipped). */
export function isPolicyFileName (name: string): boolean {
  return /\.ya?ml$/i.test(name) && !/\.cases\.ya?ml$/i.test(name) && !name.startsWith('.')
}

const ajv = new Ajv({ allErrors: true, strict: true })
const validateFile = ajv.compile<PolicyFileSpec>(policySchema)

const MAX_MESSAGES = 20

class Problems {
  readonly list: string[] = []
  constructor (private readonly doc: Document | undefined, private readonly lines: LineCounter) {}

  add (pointer: string, message: string): void {
    this.list.push(`${pointer === '' ? '/' : pointer}${this.where(pointer)}: ${message}`)
  }

  private where (pointer: string): string {
    if (this.doc === undefined) return ''
    const path = pointer.split('/').slice(1).map((p) => {
      const key = p.replace(/~1/g, '/').replace(/~0/g, '~')
      return /^\d+$/.test(key) ? Number(key) : key
    })
    const node = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true)
    const offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0]
    if (offset === undefined) return ''
    const pos = this.lines.linePos(offset)
    return ` (line ${pos.line}, column ${pos.col})`
  }

  throwIfAny (label: string): void {
    if (this.list.length === 0) return
    const shown = this.list.slice(0, MAX_MESSAGES)
    if (this.list.length > MAX_MESSAGES) shown.push(`… and ${this.list.length - MAX_MESSAGES} more`)
    throw new ERR_POLICY_INVALID(label, shown.join('; '))
  }
}

function describeAjvError (err: ErrorObject): { pointer: string, message: string } {
  const p = err.params as Record<string, unknown>
  switch (err.keyword) {
    case 'additionalProperties':
      return { pointer: `${err.instancePath}/${String(p.additionalProperty)}`, message: `unknown key "${String(p.additionalProperty)}"` }
    case 'required':
      return { pointer: err.instancePath, message: `missing required key "${String(p.missingProperty)}"` }
    case 'enum':
      return { pointer: err.instancePath, message: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` }
    case 'const':
      return { pointer: err.instancePath, message: `must be ${JSON.stringify(p.allowedValue)}` }
    case 'pattern':
      return { pointer: err.instancePath, message: `must match ${String(p.pattern)}` }
    default:
      return { pointer: err.instancePath, message: err.message ?? err.keyword }
  }
}

const HOURS_RE = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/

function compileTime (spec: TimeWindowSpec, pointer: string, problems: Problems): CompiledTimeWindow | undefined {
  const timezone = spec.timezone ?? 'UTC'
  let fmt: Intl.DateTimeFormat
  try {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
  } catch {
    problems.add(`${pointer}/timezone`, `unknown time zone "${timezone}" (use an IANA name such as Europe/Paris)`)
    return undefined
  }
  const ranges: Array<readonly [number, number]> = []
  for (const [i, text] of (spec.hours ?? []).entries()) {
    const m = HOURS_RE.exec(text)
    if (m === null) continue // the schema pattern already reported it
    const from = Number(m[1]) * 60 + Number(m[2])
    const to = Number(m[3]) * 60 + Number(m[4])
    if (from === to) {
      problems.add(`${pointer}/hours/${i}`, `empty range "${text}"; omit "hours" for a window open all day`)
      continue
    }
    ranges.push([from, to])
  }
  const dayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
  return {
    timezone,
    ...(spec.days !== undefined && { days: new Set(spec.days.map((d) => WEEKDAYS.indexOf(d))) }),
    ...(spec.hours !== undefined && { ranges }),
    localTime (at) {
      let day = 0
      let hour = 0
      let minute = 0
      for (const part of fmt.formatToParts(at)) {
        if (part.type === 'weekday') day = dayNames.indexOf(part.value)
        else if (part.type === 'hour') hour = Number(part.value) % 24
        else if (part.type === 'minute') minute = Number(part.value)
      }
      return { day, minute: hour * 60 + minute }
    }
  }
}

interface Seen { label: string, pointer: string }

interface MergeState {
  rules: CompiledRule[]
  masking: CompiledMaskingRule[]
  ruleIds: Map<string, Seen>
  maskingIds: Map<string, Seen>
  defaults: Limits
  defaultsFrom: Map<keyof Limits, string>
  warnings: string[]
}

function parseOne (source: PolicySource, state: MergeState): void {
  const label = source.label ?? source.name
  const lines = new LineCounter()
  const doc = parseDocument(source.text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new ERR_POLICY_INVALID(label, `YAML syntax: ${doc.errors.map((e) => e.message.split('\n')[0]).join('; ')}`)
  }
  const problems = new Problems(doc, lines)
  const data: unknown = doc.toJS({ maxAliasCount: 100 })
  if (data === null || data === undefined) {
    problems.add('', 'the file is empty; a policy file needs at least `version: 1`')
    problems.throwIfAny(label)
  }
  if (!validateFile(data)) {
    for (const err of validateFile.errors ?? []) {
      const d = describeAjvError(err)
      problems.add(d.pointer, d.message)
    }
    problems.throwIfAny(label)
  }
  const file = data as PolicyFileSpec
  const fileRules: CompiledRule[] = []
  const fileMasking: CompiledMaskingRule[] = []

  for (const [key, value] of Object.entries(file.defaults?.limits ?? {}) as Array<[keyof Limits, never]>) {
    const other = state.defaultsFrom.get(key)
    if (other !== undefined) {
      problems.add(`/defaults/limits/${key}`, `already set by ${other}; set each default limit in one file only`)
      continue
    }
    state.defaultsFrom.set(key, label)
    state.defaults[key] = value
  }

  for (const [index, spec] of (file.rules ?? []).entries()) {
    const pointer = `/rules/${index}`
    if (spec.id === DEFAULT_DENY_RULE_ID) {
      problems.add(`${pointer}/id`, `"${DEFAULT_DENY_RULE_ID}" is reserved for the implicit last rule`)
    }
    if (spec.id === UNPARSED_RULE_ID) {
      problems.add(`${pointer}/id`, `"${UNPARSED_RULE_ID}" is reserved for Sluice's refusal of statements it could not parse`)
    }
    if (spec.id === REREAD_RULE_ID) {
      problems.add(`${pointer}/id`, `"${REREAD_RULE_ID}" is reserved for Sluice's refusal of sources that re-read results`)
    }
    const seen = state.ruleIds.get(spec.id)
    if (seen !== undefined) {
      problems.add(`${pointer}/id`, `duplicate rule id "${spec.id}" (already defined in ${seen.label} at ${seen.pointer})`)
    } else {
      state.ruleIds.set(spec.id, { label, pointer })
    }
    if (spec.effect === 'deny' && spec.limits !== undefined) {
      problems.add(`${pointer}/limits`, 'a deny rule runs nothing, so it cannot set limits; remove them')
    }
    if (spec.effect !== 'require_approval' && spec.approval !== undefined) {
      problems.add(`${pointer}/approval`, `only a require_approval rule holds statements for approval; remove "approval" from this ${spec.effect} rule`)
    }
    const m = spec.match ?? {}
    const time = m.time !== undefined ? compileTime(m.time, `${pointer}/match/time`, problems) : undefined
    const overBytes = m.estimatedBytesOver === undefined ? undefined : parseBytes(m.estimatedBytesOver)
    if (m.estimatedBytesOver !== undefined && overBytes === undefined) {
      problems.add(`${pointer}/match/estimatedBytesOver`, `"${String(m.estimatedBytesOver)}" is not a size; write bytes (a whole number) or a size such as 10GiB or 500MB`)
    }
    if (m.estimatedBytesOver !== undefined && spec.effect === 'allow') {
      problems.add(`${pointer}/match/estimatedBytesOver`, 'an allow rule cannot match on the estimate (a statement it does not measure would be let through); use it on a deny or require_approval rule before the allow')
    }
    if (spec.onNoEstimate !== undefined && m.estimatedBytesOver === undefined) {
      problems.add(`${pointer}/onNoEstimate`, 'onNoEstimate says what a rule with match.estimatedBytesOver does without an estimate; this rule has none')
    }
    fileRules.push({
      id: spec.id,
      effect: spec.effect,
      source: { file: label, index },
      spec,
      ...(spec.description !== undefined && { description: spec.description }),
      ...(spec.message !== undefined && { message: spec.message }),
      ...(spec.limits !== undefined && { limits: { ...spec.limits } }),
      ...(spec.effect === 'require_approval' && { approval: approvalSettings(spec.approval) }),
      ...(m.roles !== undefined && { roles: new Set(m.roles) }),
      ...(m.groups !== undefined && { groups: new Set(m.groups) }),
      ...(m.principalTypes !== undefined && { principalTypes: new Set(m.principalTypes) }),
      ...(m.connections !== undefined && { connections: compileGlobs(m.connections) }),
      ...(m.connectionKinds !== undefined && { connectionKinds: new Set(m.connectionKinds) }),
      ...(m.kinds !== undefined && { kinds: new Set(m.kinds) }),
      // A table name part the analysis could not know may be any name: restrictive rules claim it.
      ...(m.tables !== undefined && { tables: spec.effect === 'allow' ? compileGlobs(m.tables) : compileGlobsLoose(m.tables) }),
      ...(m.rereads !== undefined && { rereads: new Set(m.rereads) }),
      ...(m.functions !== undefined && { functions: compileGlobs(m.functions.map((f) => f.toLowerCase())) }),
      ...(time !== undefined && { time }),
      ...(overBytes !== undefined && { estimatedBytesOver: overBytes, onNoEstimate: spec.onNoEstimate ?? 'deny' })
    })
  }

  for (const [index, spec] of (file.masking ?? []).entries()) {
    const pointer = `/masking/${index}`
    const seen = state.maskingIds.get(spec.id)
    if (seen !== undefined) {
      problems.add(`${pointer}/id`, `duplicate masking rule id "${spec.id}" (already defined in ${seen.label} at ${seen.pointer})`)
    } else {
      state.maskingIds.set(spec.id, { label, pointer })
    }
    const allow = new Set<InferenceUsage>(spec.allowInference ?? [])
    if (spec.allowEquality === true) { allow.add('equality'); allow.add('grouping') }
    // The shorthand promises "tokens still join and group": only true of deterministic functions.
    // (An explicit allowInference list is the author's own call, whatever the function.)
    if (spec.allowEquality === true && !['token', 'sha256', 'hash'].includes(spec.function)) {
      problems.add(`${pointer}/allowEquality`, `allowEquality needs a deterministic function (token or sha256), not "${spec.function}"`)
    }
    if (spec.function === 'partial' && spec.keep === undefined) {
      problems.add(`${pointer}`, 'function "partial" needs "keep" ({ first: n, last: n })')
    }
    fileMasking.push({
      id: spec.id,
      source: { file: label, index },
      spec,
      columns: compileGlobsLoose(spec.columns),
      exemptRoles: new Set(spec.exemptRoles ?? []),
      ...(spec.connections !== undefined && { connections: compileGlobs(spec.connections) }),
      allowInference: allow
    })
  }

  problems.throwIfAny(label)

  // A restrictive rule with no conditions ends evaluation for everything; what follows is dead.
  const stopsAll = (r: CompiledRule): boolean => r.effect !== 'allow' && Object.keys(r.spec.match ?? {}).length === 0
  const catchAll = fileRules.findIndex(stopsAll)
  if (state.rules.some(stopsAll)) {
    if (fileRules.length > 0) state.warnings.push(`${label}: every rule is unreachable, an earlier file has a catch-all deny or require_approval rule`)
  } else if (catchAll !== -1 && catchAll < fileRules.length - 1) {
    state.warnings.push(`${label}: rules after "${fileRules[catchAll]?.id}" (which matches everything) are never reached`)
  }
  if (fileRules.length === 0 && fileMasking.length === 0) state.warnings.push(`${label}: no rules`)
  state.rules.push(...fileRules)
  state.masking.push(...fileMasking)
}

/**
 * Validates and merges policy sources (sorted by name here, whatever order they come in).
 * Throws ERR_POLICY_INVALID naming the first invalid file and every problem in it.
 */
export function parsePolicySet (sources: readonly PolicySource[]): PolicySet {
  const sorted = [...sources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const state: MergeState = {
    rules: [], masking: [], ruleIds: new Map(), maskingIds: new Map(), defaults: {}, defaultsFrom: new Map(), warnings: []
  }
  const hash = createHash('sha256')
  for (const source of sorted) {
    parseOne(source, state)
    hash.update(source.name).update('\0').update(source.text).update('\0')
  }
  if (sorted.length === 0) state.warnings.push('no policy files: every statement will be denied by default-deny')
  return {
    version: `sha256:${hash.digest('hex').slice(0, 16)}`,
    files: sorted.map((s) => s.label ?? s.name),
    rules: state.rules,
    masking: state.masking,
    defaults: { limits: state.defaults },
    warnings: state.warnings
  }
}

/** Reads every policy file directly in `dir` (not subdirectories), in file-name order. */
export async function readPolicySources (dir: string): Promise<PolicySource[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw new ERR_POLICY_INVALID(dir, `cannot read the policies directory: ${(err as Error).message}`)
  }
  const sources: PolicySource[] = []
  for (const name of names.filter(isPolicyFileName).sort()) {
    const path = join(dir, name)
    try {
      // stat follows symlinks, so Kubernetes ConfigMap mounts (symlinked files) load normally.
      if (!(await stat(path)).isFile()) continue
      sources.push({ name, label: path, text: await readFile(path, 'utf8') })
    } catch (err) {
      // A file removed between readdir and read is a normal race during an edit.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw new ERR_POLICY_INVALID(path, `cannot read: ${(err as Error).message}`)
    }
  }
  return sources
}

/** Loads, validates and compiles a policies directory. */
export async function loadPolicyDirectory (dir: string): Promise<PolicySet> {
  return parsePolicySet(await readPolicySources(dir))
}
