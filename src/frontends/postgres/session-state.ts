// What a client session keeps between messages: its prepared statements and portals (Sluice
// holds them; the upstream only ever sees unnamed ones), and the round trip a portal serves.
import type { RoundTrip } from '../../pipeline.js'
import type { RoundTripContext } from '../../recording/round-trips.js'
import type { Described, UpstreamValue } from '../../warehouses/postgres/upstream.js'
import type { StreamedResult } from './results.js'

export interface Prepared { sql: string, paramTypes: number[], described?: Described }

export interface Portal {
  prepared: Prepared
  values: UpstreamValue[]
  resultFormats: number[]
  running?: Running
  /** The portal was read to its end (its upstream tag): executed again, it answers no rows. */
  done?: string
}

/** A round trip in flight: its trip, its context and the result still streaming. */
export interface Running {
  trip: RoundTrip
  ctx: RoundTripContext
  started: number
  result?: StreamedResult
}

/** The answer was already written (a recording failure): nothing more to say. */
export class Refusal extends Error {}

/** Folds one statement's release facts into its message's round trip. */
export function merge (into: RoundTrip, from: RoundTrip): void {
  if (from.rowsReturned !== undefined) into.rowsReturned = (into.rowsReturned ?? 0) + from.rowsReturned
  if (from.maskedColumns !== undefined) into.maskedColumns = [...(into.maskedColumns ?? []), ...from.maskedColumns]
  if (from.capture !== undefined) into.capture ??= from.capture
  if (from.rowsLimited !== undefined) into.rowsLimited = from.rowsLimited
  if (from.statementId !== undefined) into.statementId ??= from.statementId
}
