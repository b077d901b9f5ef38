// Waiting for a human, bounded: a front end that may hold its client for a while (BigQuery's
// getQueryResults timeoutMs, an MCP tool call) watches the approval in the store until someone
// decides, the time is up or the client goes away. A store poll, not a socket or a process-local
// event, so an approval given through any replica ends the wait within one interval.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Principal } from '../identity/principal.js'
import type { ApprovalService } from './service.js'
import type { ApprovalStatus } from './types.js'

export interface WaitOptions {
  /** Give up at this time (ms since the epoch); the approval stays pending. */
  until: number
  signal?: AbortSignal
  /** Between store reads; default 500 ms. */
  intervalMs?: number
  /** Called after every read that found it still pending (MCP progress notifications). */
  onPending?: (waitedMs: number) => void | Promise<void>
}

/**
 * Resolves with the approval's status once it is no longer pending, or 'pending' when the time
 * ran out or the signal aborted. Only the requester's own approval can be watched (service.get
 * is not used: someone else's id must stay unknown).
 */
export async function waitForDecision (service: ApprovalService, id: string, requester: Principal, options: WaitOptions): Promise<ApprovalStatus> {
  const started = Date.now()
  const interval = options.intervalMs ?? 500
  for (;;) {
    const status = await service.statusFor(id, requester)
    if (status !== 'pending') return status
    const left = options.until - Date.now()
    if (left <= 0 || options.signal?.aborted === true) return 'pending'
    await options.onPending?.(Date.now() - started)
    try {
      await sleep(Math.min(interval, left), undefined, options.signal === undefined ? undefined : { signal: options.signal })
    } catch {
      return 'pending'
    }
  }
}
