// Dot-segmented globs for table, column and connection names (`db.schema.table`,
// `project.dataset.table.column`, `snowflake-*`). Written here rather than pulled in because
// path-oriented glob libraries treat `/` as the separator and `.` as ordinary, which is the
// opposite of what qualified SQL names need.
//
//   *    any run of characters inside one segment (never crosses a dot)
//   ?    exactly one character inside one segment
//   **   as a whole segment: zero or more whole segments (`db.**` matches `db.s.t`,
//        `a.**.b` matches `a.b` and `a.x.y.b`); inside a segment (`foo**`): anything, dots included
//
// Matching is case-insensitive: analysis lower-cases unquoted identifiers but keeps quoted ones,
// and a policy author writing `hr.*.*` means `"HR"."Payroll"."Salaries"` too. Everything else is
// literal, so a name containing regex metacharacters cannot widen a pattern.

import { UNKNOWN_PART } from '../sql/names.js'

const SEGMENT_ANY = '[^.]*'
const SEGMENT_ONE = '[^.]'

function escapeLiteral (ch: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(ch) ? `\\${ch}` : ch
}

function segmentSource (segment: string): string {
  let out = ''
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i] as string
    if (ch === '*') {
      if (segment[i + 1] === '*') {
        while (segment[i + 1] === '*') i++
        out += '.*'
      } else {
        out += SEGMENT_ANY
      }
    } else if (ch === '?') {
      out += SEGMENT_ONE
    } else {
      out += escapeLiteral(ch)
    }
  }
  return out
}

/** The regular-expression source (anchored) for a dot-segmented glob. */
export function globSource (pattern: string): string {
  // `**.**` means the same as `**`; collapsing keeps the optional groups below from needing a dot
  // that is not there.
  const segments = pattern.split('.').filter((seg, i, all) => !(seg === '**' && all[i - 1] === '**'))
  if (segments.length === 1 && segments[0] === '**') return '^.*$'
  let out = ''
  // A leading `**` absorbs the separator that would precede the next segment.
  let skipSeparator = true
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string
    if (seg === '**') {
      if (i === 0) {
        out += '(?:.*\\.)?'
        skipSeparator = true
        continue
      }
      out += '(?:\\..*)?'
      continue
    }
    if (!skipSeparator) out += '\\.'
    skipSeparator = false
    out += segmentSource(seg)
  }
  return `^${out}$`
}

/** Compiles a glob once; the returned RegExp is stateless (no `g` flag) and safe to share. */
export function compileGlob (pattern: string): RegExp {
  return new RegExp(globSource(pattern), 'i')
}

/** A matcher over several globs: true when any matches. */
export function compileGlobs (patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(compileGlob)
  return (name) => res.some((re) => re.test(name))
}

/**
 * Like `compileGlobs`, but a name part the analysis could not know (`UNKNOWN_PART`: a database
 * or schema the connection's defaults do not give) matches any single pattern segment. For
 * rules that restrict (deny, require_approval, masking), which must apply whenever the name
 * could be theirs; an allow rule uses `compileGlobs`, where it does not.
 */
export function compileGlobsLoose (patterns: readonly string[]): (name: string) => boolean {
  const strict = compileGlobs(patterns)
  const split = patterns.map((p) => p.split('.')
    .filter((seg, i, all) => !(seg === '**' && all[i - 1] === '**'))
    .map((seg) => (seg === '**' ? seg : compileGlob(seg))))
  return (name) => {
    if (strict(name)) return true
    const segs = name.split('.')
    if (!segs.includes(UNKNOWN_PART)) return false
    return split.some((p) => segmentsMatch(p, segs, 0, 0))
  }
}

function segmentsMatch (pattern: ReadonlyArray<'**' | RegExp>, name: readonly string[], i: number, j: number): boolean {
  if (i === pattern.length) return j === name.length
  const seg = pattern[i] as '**' | RegExp
  if (seg === '**') return segmentsMatch(pattern, name, i + 1, j) || (j < name.length && segmentsMatch(pattern, name, i, j + 1))
  if (j === name.length) return false
  const part = name[j] as string
  return (part === UNKNOWN_PART || seg.test(part)) && segmentsMatch(pattern, name, i + 1, j + 1)
}
