// Which masking rules apply to a source column. A rule masks a source when its glob matches
// the source or one of its ancestors (a rule on a record masks every field of it), and masks
// *inside* a source when it matches a descendant (a rule on `….address.ssn` masks that field of
// an `address` value returned whole). Whole-row sources (`db.s.t.*`) meet every rule that
// matches any column of the table.
import { compileGlob } from '../policy/glob.js'
import { UNKNOWN_PART } from '../sql/names.js'
import type { CompiledMaskingRule } from '../policy/model.js'

/** The rules in force for a principal on a connection: not exempt, connection matching. */
export function activeRules (rules: readonly CompiledMaskingRule[], roles: readonly string[], connection: string): CompiledMaskingRule[] {
  return rules.filter((r) => !roles.some((role) => r.exemptRoles.has(role)) && (r.connections === undefined || r.connections(connection)))
}

/**
 * The rules this principal is exempt from on this connection: the columns they name are shown
 * in clear on purpose, so the value detectors must not redact them either.
 */
export function exemptedRules (rules: readonly CompiledMaskingRule[], roles: readonly string[], connection: string): CompiledMaskingRule[] {
  return rules.filter((r) => roles.some((role) => r.exemptRoles.has(role)) && (r.connections === undefined || r.connections(connection)))
}

const segmentCache = new Map<string, RegExp>()

function segmentMatches (pattern: string, name: string): boolean {
  // A part of the name the analysis could not know may be any name (fail closed).
  if (name === UNKNOWN_PART) return true
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern.toLowerCase() === name.toLowerCase()
  let re = segmentCache.get(pattern)
  if (re === undefined) {
    re = compileGlob(pattern)
    if (segmentCache.size > 10000) segmentCache.clear()
    segmentCache.set(pattern, re)
  }
  return re.test(name)
}

/**
 * What is left of a glob's segments once all of `name`'s segments are consumed by its head:
 * every possible remainder (several when `**` is involved). Empty list = no prefix match.
 */
export function remainders (pattern: readonly string[], name: readonly string[], i = 0, j = 0): string[][] {
  if (j === name.length) return [pattern.slice(i)]
  if (i === pattern.length) return []
  const seg = pattern[i] as string
  if (seg === '**') return [...remainders(pattern, name, i + 1, j), ...remainders(pattern, name, i, j + 1)]
  return segmentMatches(seg, name[j] as string) ? remainders(pattern, name, i + 1, j + 1) : []
}

function patternsOf (rule: CompiledMaskingRule): string[][] {
  return rule.spec.columns.map((c) => c.split('.'))
}

/** The first rule masking `source` whole (it, or an ancestor of it, matches). */
export function ruleFor (source: string, rules: readonly CompiledMaskingRule[]): CompiledMaskingRule | undefined {
  if (source.endsWith('.*')) return ruleForTable(source.slice(0, -2), rules)
  const segs = source.split('.')
  for (const rule of rules) {
    for (let n = segs.length; n >= 2; n--) {
      if (rule.columns(segs.slice(0, n).join('.'))) return rule
    }
  }
  return undefined
}

/** The first rule matching some column of `table`. */
export function ruleForTable (table: string, rules: readonly CompiledMaskingRule[]): CompiledMaskingRule | undefined {
  const segs = table.split('.')
  for (const rule of rules) {
    // A glob naming the table itself (or a schema above it) covers all of its columns.
    for (let n = segs.length; n >= 1; n--) {
      if (rule.columns(segs.slice(0, n).join('.'))) return rule
    }
    if (patternsOf(rule).some((p) => remainders(p, segs).some((rest) => rest.length > 0))) return rule
  }
  return undefined
}

export interface NestedMatch {
  rule: CompiledMaskingRule
  /** Glob segments below the source: the field path (possibly with wildcards) to mask. */
  path: string[]
}

/** Rules matching strictly below `source` (fields of a record / keys of a semi-structured value). */
export function nestedRules (source: string, rules: readonly CompiledMaskingRule[]): NestedMatch[] {
  if (source.endsWith('.*')) return []
  const segs = source.split('.')
  const out: NestedMatch[] = []
  for (const rule of rules) {
    for (const p of patternsOf(rule)) {
      for (const rest of remainders(p, segs)) {
        if (rest.length > 0 && !(rest.length === 1 && rest[0] === '**')) out.push({ rule, path: rest })
      }
    }
  }
  return out
}

export { segmentMatches }
