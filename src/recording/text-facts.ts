// What the trail derives from a statement's text alone: its fingerprint and its full-text
// search vector. Both are linear in the text but not free (a 1 MB statement costs ~150 ms of
// tokenising), so the parser pool computes them on its threads together with the analysis,
// and the analysis carries them here; the event builder falls back to computing them itself
// for an analysis made elsewhere (tests, a pass-through analyzer).
import type { Analysis } from '../sql/types.js'
import { sqlFingerprint } from './fingerprint.js'
import { sqlSearchVector } from './fulltext.js'

export interface TextFacts {
  fingerprint: string
  search: string | null
}

const attached = new WeakMap<Analysis, TextFacts & { sql: string }>()

export function textFactsOf (sql: string): TextFacts {
  return { fingerprint: sqlFingerprint(sql), search: sqlSearchVector(sql) }
}

/** Keeps the facts of `sql` with the analysis made of it. */
export function attachTextFacts (analysis: Analysis, sql: string, facts: TextFacts): void {
  attached.set(analysis, { ...facts, sql })
}

/** The facts of `sql` computed with this analysis, when it was made of exactly that text. */
export function attachedTextFacts (analysis: Analysis | undefined, sql: string): TextFacts | undefined {
  const facts = analysis === undefined ? undefined : attached.get(analysis)
  return facts?.sql === sql ? facts : undefined
}
