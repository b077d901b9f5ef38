// Child spans of a round trip, for the pipeline and the front ends. A round trip is traced
// only when the tracing plugin gave it a context (tracing configured); otherwise every helper
// here calls its function and nothing else, so the default costs one property read.
// Attributes name ids and counts only: never SQL text, literals, parameters or values.
import { context, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api'

export type { Context as TraceContext } from '@opentelemetry/api'

/** The instrumentation scope of every Sluice span. */
export const TRACER_NAME = 'sluice'

/** The trace a recorded event belongs to (ids only). */
export interface TraceRef { traceId: string, spanId: string }

/** A child span of `parent`, or undefined when the round trip is not traced. */
export function startSpan (parent: Context | undefined, name: string, attributes?: Attributes): Span | undefined {
  if (parent === undefined) return undefined
  return trace.getTracer(TRACER_NAME).startSpan(name, { attributes }, parent)
}

/** Ends a span, marking it failed with the catalogue code (never the message: it may quote SQL). */
export function endSpan (span: Span | undefined, err?: unknown): void {
  if (span === undefined) return
  if (err !== undefined) {
    const code = (err as { code?: unknown }).code
    span.setStatus({ code: SpanStatusCode.ERROR, ...(typeof code === 'string' && { message: code }) })
    if (typeof code === 'string') span.setAttribute('sluice.error_code', code)
  }
  span.end()
}

/** Runs `fn` in a child span of `parent` (just `fn` when untraced); `fn` may add attributes. */
export async function inSpan<T> (parent: Context | undefined, name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  const span = startSpan(parent, name, attributes)
  if (span === undefined) return await fn(undefined)
  try {
    const value = await fn(span)
    endSpan(span)
    return value
  } catch (err) {
    endSpan(span, err)
    throw err
  }
}

/** `inSpan` for synchronous work (the decision). */
export function inSpanSync<T> (parent: Context | undefined, name: string, attributes: Attributes, fn: (span: Span | undefined) => T): T {
  const span = startSpan(parent, name, attributes)
  if (span === undefined) return fn(undefined)
  try {
    const value = fn(span)
    endSpan(span)
    return value
  } catch (err) {
    endSpan(span, err)
    throw err
  }
}

/** The context whose spans are children of `span`. */
export function contextOf (span: Span): Context {
  return trace.setSpan(context.active(), span)
}

/** The ids of a span, as logs and recorded events carry them. */
export function traceRef (span: Span): TraceRef {
  const { traceId, spanId } = span.spanContext()
  return { traceId, spanId }
}
