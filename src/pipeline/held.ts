// How a front end tells "held for a human" from every other refusal: admit() throws the same
// catalogue error either way (so a front end that cannot wait still refuses it, naming the
// approval), and leaves the pending outcome on the round trip. A front end that can wait in its
// protocol asks here, keeps the id with its handle, and polls by admitting the same statement
// again with `statement.approvalId` set.
import { ERR_APPROVAL_REQUIRED } from '../errors.js'
import type { RoundTrip } from '../pipeline.js'

/** The approval id when `err` is admit()'s refusal of a statement now pending approval. */
export function pendingApproval (err: unknown, trip: RoundTrip): string | undefined {
  if (!(err instanceof ERR_APPROVAL_REQUIRED)) return undefined
  return trip.hold?.state === 'pending' ? trip.hold.approvalId : undefined
}
