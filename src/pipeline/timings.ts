// How long a round trip spent in the parts operators watch (policy analysis, the warehouse
// call), kept on the RoundTrip so whoever observes the round trip (metrics) reads them without
// a second clock or a hook of its own. Repeated calls add up: a multi-statement request calls
// the warehouse once per statement.
export type TimedPart = 'analyze' | 'upstream'

export interface Timings {
  analyze?: number
  upstream?: number
}

export async function timed<T> (trip: { timings?: Timings }, part: TimedPart, fn: () => Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await fn()
  } finally {
    const timings = (trip.timings ??= {})
    timings[part] = (timings[part] ?? 0) + (performance.now() - started) / 1000
  }
}
