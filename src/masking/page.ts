// The page masker: a plan compiled once per result into per-column closures, then applied to
// every page in place. Pages are owned by the pipeline between decode and encode, so masking in
// place costs no copy and keeps memory bounded by one page. Counts are of values actually
// masked (NULLs stay NULL and are not counted), per column and rule or detector.
import type { ColumnMeta, MaskCount, ResultPage, ResultSchema } from '../pipeline/types.js'
import { createScanner, type DetectorKind, type Scanner } from './detectors.js'
import { compileMask, type MaskSecrets, type ValueMasker } from './functions.js'
import type { PartMask, PartPlan, PlannedColumn } from './planner.js'
import { createStructuredMasker } from './structured.js'
import { classOf, type ValueClass, type WarehouseKind } from './types.js'
import { deepScan, optionsOf, pathMasker } from './walk.js'

export interface DetectorSettings {
  mode: 'mask' | 'flag' | 'off'
  kinds?: readonly DetectorKind[]
}

export interface PageMaskerInput {
  schema: ResultSchema
  kind?: WarehouseKind
  secrets: MaskSecrets
  columns: readonly PlannedColumn[]
  uncovered: readonly number[]
  /** Paths inside uncovered columns that exemptions show in clear: detectors skip them. */
  skip?: ReadonlyMap<number, string[][]>
  /** Structured values masked part by part (planner's `structured`). */
  structured?: ReadonlyMap<number, PartPlan>
  detectors: DetectorSettings
  /** Filled as pages pass; shared with the round trip so the event sees the final numbers. */
  counts: MaskCount[]
}

interface Step {
  index: number
  fn: ValueMasker
  count: MaskCount
}

const SCANNED: ReadonlySet<ValueClass> = new Set(['string', 'json', 'unknown', 'record'])

/** Builds the page function for one result. */
export function createPageMasker (input: PageMaskerInput): (page: ResultPage) => ResultPage {
  const { schema, counts } = input
  const steps: Step[] = []
  const nested = new Map<number, PlannedColumn[]>()
  const structured = input.structured ?? new Map<number, PartPlan>()
  for (const col of input.columns) {
    const meta = schema.columns[col.index]
    if (meta === undefined || structured.has(col.index)) continue
    if (col.path !== undefined) {
      nested.set(col.index, [...(nested.get(col.index) ?? []), col])
      continue
    }
    const count: MaskCount = { column: meta.name, rule: col.rule, values: 0, action: 'masked' }
    if (col.reason !== undefined) count.reason = col.reason
    counts.push(count)
    steps.push({ index: col.index, count, fn: compileMask({ fn: col.function, column: meta, kind: input.kind, options: optionsOf(col.spec), secrets: input.secrets }) })
  }
  const nestedSteps: Array<{ index: number, fn: ValueMasker, counter: { n: number }, count: MaskCount }> = []
  for (const [index, cols] of nested) {
    const meta = schema.columns[index] as ColumnMeta
    for (const col of cols) {
      const counter = { n: 0 }
      const count: MaskCount = { column: `${meta.name}.${(col.path ?? []).join('.')}`, rule: col.rule, values: 0, action: 'masked' }
      if (col.reason !== undefined) count.reason = col.reason
      counts.push(count)
      nestedSteps.push({ index, counter, count, fn: pathMasker(meta, col.path ?? [], col.function, col.spec, input, counter) })
    }
  }
  const scanner: Scanner | undefined = input.detectors.mode === 'off' ? undefined : createScanner(input.detectors.kinds)
  const scanned = scanner === undefined
    ? []
    : input.uncovered.filter((i) => { const m = schema.columns[i]; return m !== undefined && SCANNED.has(classOf(m, input.kind)) })
  const flagOnly = input.detectors.mode === 'flag'
  // Per column, per detector kind: found lazily, so an event lists only what was seen.
  const found = new Map<number, Map<DetectorKind, MaskCount>>()
  const note = (index: number, kinds: DetectorKind[]): void => {
    let byKind = found.get(index)
    if (byKind === undefined) found.set(index, byKind = new Map())
    for (const kind of kinds) {
      let c = byKind.get(kind)
      if (c === undefined) {
        c = { column: schema.columns[index]?.name ?? String(index), rule: `detector:${kind}`, values: 0, action: flagOnly ? 'flagged' : 'masked' }
        byKind.set(kind, c)
        counts.push(c)
      }
      c.values++
    }
  }
  // Per scanned column, in `scanned` order: looked up by position on the per-value path.
  const scanFns = scanned.map((i) => deepScan(scanner as Scanner, flagOnly, input.skip?.get(i) ?? [], (kinds) => note(i, kinds)))
  const scanJson = scanned.map((i) => classOf(schema.columns[i] as ColumnMeta, input.kind) === 'json')

  // Structured columns: counts per part (`column.key`) and rule, created when first met.
  const partCounts = new Map<string, MaskCount>()
  const structuredSteps = [...structured].flatMap(([index, plan]) => {
    const meta = schema.columns[index]
    if (meta === undefined) return []
    const fn = createStructuredMasker(plan, meta, {
      kind: input.kind,
      secrets: input.secrets,
      ...(scanner !== undefined && { scanner }),
      flagOnly,
      masked: (label: string, mask: PartMask) => {
        const key = `${label}\u0000${mask.rule}`
        let c = partCounts.get(key)
        if (c === undefined) {
          c = { column: label, rule: mask.rule, values: 0, action: 'masked', reason: mask.reason }
          partCounts.set(key, c)
          counts.push(c)
        }
        c.values++
      },
      found: (label: string, kinds: DetectorKind[]) => {
        for (const kind of kinds) {
          const key = `${label}\u0000detector:${kind}`
          let c = partCounts.get(key)
          if (c === undefined) {
            c = { column: label, rule: `detector:${kind}`, values: 0, action: flagOnly ? 'flagged' : 'masked' }
            partCounts.set(key, c)
            counts.push(c)
          }
          c.values++
        }
      }
    })
    return [{ index, fn }]
  })

  return (page) => {
    const rows = page.rows
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r] as unknown[]
      for (let s = 0; s < steps.length; s++) {
        const step = steps[s] as Step
        const v = row[step.index]
        const out = step.fn(v)
        if (v !== null && v !== undefined) step.count.values++
        row[step.index] = out
      }
      for (const n of nestedSteps) {
        const before = n.counter.n
        row[n.index] = n.fn(row[n.index])
        n.count.values += n.counter.n - before
      }
      for (const st of structuredSteps) row[st.index] = st.fn(row[st.index])
      for (let s = 0; s < scanned.length; s++) {
        const i = scanned[s] as number
        const v = row[i]
        if (v !== null && v !== undefined) row[i] = (scanFns[s] as (v: unknown, json?: boolean) => unknown)(v, scanJson[s] === true)
      }
    }
    return page
  }
}
