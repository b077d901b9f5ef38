// The structured masker: a value built from several columns (an OBJECT, a STRUCT, an array, the
// JSON text of a row) is taken apart along its planned shape and each part is masked by its own
// plan, so the result is still a valid OBJECT / STRUCT / JSON document of the same layout.
// Where the value does not have the planned shape (text that is not JSON, a scalar where a
// record was expected) it cannot be taken apart: it is replaced whole, never masked as a blob.
import type { ColumnMeta } from '../pipeline/types.js'
import type { DetectorKind, Scanner } from './detectors.js'
import { firstMask, masksSomething, type PartMask, type PartPlan, type ShapePlan } from './planner.js'
import { classOf } from './types.js'
import { deepScan, elementMeta, fieldMeta, leafMasker, pathMasker, type WalkContext } from './walk.js'

export interface StructuredContext extends WalkContext {
  scanner?: Scanner
  flagOnly: boolean
  /** Counts one masked value of `rule` at `label` (`column.key`, `column[]`). */
  masked: (label: string, mask: PartMask) => void
  found: (label: string, kinds: DetectorKind[]) => void
}

type Apply = (v: unknown, m: ColumnMeta | undefined) => unknown

/** Compiles a plan into a function over one column value. */
export function createStructuredMasker (plan: PartPlan, meta: ColumnMeta, ctx: StructuredContext): (v: unknown) => unknown {
  const compiled = new Map<PartPlan, Apply>()
  const get = (p: PartPlan, label: string): Apply => {
    let f = compiled.get(p)
    if (f === undefined) { f = compile(p, label); compiled.set(p, f) }
    return f
  }

  function compile (p: PartPlan, label: string): Apply {
    if (p.mask !== undefined) {
      const mask = p.mask
      const leaf = leafMasker(mask.function, mask.spec, ctx)
      return (v, m) => {
        if (v === null || v === undefined) return v
        ctx.masked(label, mask)
        return leaf(v, m)
      }
    }
    if (p.shape !== undefined) return shapeApply(p, p.shape, label)
    if (p.nested !== undefined && p.nested.length > 0) {
      const steps = p.nested.map((n) => ({ n, counter: { n: 0 } }))
      const byMeta = new Map<ColumnMeta | undefined, Array<(v: unknown) => unknown>>()
      return (v, m) => {
        let fns = byMeta.get(m)
        if (fns === undefined) {
          fns = steps.map(({ n, counter }) => pathMasker(m, n.path, n.function, n.spec, ctx, counter))
          byMeta.set(m, fns)
        }
        let out = v
        fns.forEach((fn, i) => {
          const step = steps[i] as typeof steps[number]
          const before = step.counter.n
          out = fn(out)
          for (let k = before; k < step.counter.n; k++) ctx.masked(`${label}.${step.n.path.join('.')}`, step.n)
        })
        return out
      }
    }
    if (p.scan !== undefined && ctx.scanner !== undefined) {
      const scan = deepScan(ctx.scanner, ctx.flagOnly, p.scan.skip, (kinds) => ctx.found(label, kinds))
      return (v, m) => (v === null || v === undefined ? v : scan(v, m !== undefined && classOf(m, ctx.kind) === 'json'))
    }
    return (v) => v
  }

  /** A value that does not have the planned shape: replaced whole when any part is masked. */
  function unshaped (p: PartPlan, label: string): Apply {
    const first = firstMask(p)
    if (first === undefined || !masksSomething(p)) return compile({ ...(p.shape === undefined ? p : {}), scan: { skip: [] } }, label)
    const whole: PartMask = { ...first, function: 'redact', reason: `${label} does not have the structure the statement builds, so it is masked whole` }
    return compile({ mask: whole }, label)
  }

  function shapeApply (p: PartPlan, shape: ShapePlan, label: string): Apply {
    const fallback = unshaped(p, label)
    const walk = (v: unknown, m: ColumnMeta | undefined): unknown => {
      if (shape.kind === 'each' || shape.kind === 'list') {
        if (!Array.isArray(v)) return fallback(v, m)
        const el = elementMeta(m)
        return v.map((x, i) => {
          const part = shape.kind === 'each' ? shape.element : shape.elements[i] ?? shape.rest
          return get(part, `${label}[]`)(x, el)
        })
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array || v instanceof Date) return fallback(v, m)
      const src = v as Record<string, unknown>
      const keys = Object.keys(src)
      const out: Record<string, unknown> = {}
      keys.forEach((key, i) => {
        const lower = key.toLowerCase()
        const field = shape.byPosition ? shape.fields[i] : shape.fields.find((f) => f.key.toLowerCase() === lower)
        const part = field?.plan ?? shape.open?.(key) ?? shape.rest
        out[key] = get(part, `${label}.${key}`)(src[key], fieldMeta(m, key))
      })
      return out
    }
    return (v, m) => {
      if (v === null || v === undefined) return v
      if (typeof v === 'string') {
        // JSON text (Snowflake OBJECT / ARRAY / VARIANT, BigQuery TO_JSON_STRING): taken apart,
        // masked, written back as JSON.
        let parsed: unknown
        try { parsed = JSON.parse(v) } catch { return fallback(v, m) }
        if (parsed === null || typeof parsed !== 'object') return fallback(v, m)
        return JSON.stringify(walk(parsed, undefined))
      }
      return walk(v, m)
    }
  }

  const top = get(plan, meta.name)
  return (v) => top(v, meta)
}
