// Checkpoint copies kept outside the store, read back for `sluice audit verify --checkpoints`.
// The chain alone cannot show that its tail, or a whole chain, was deleted together with the
// checkpoints that named it: whoever can delete rows can delete both. A copy the database's
// owner cannot reach (the SIEM's) can: every checkpoint it holds must still be in the store,
// with the event it names. The file is what the SIEM webhook sent, as JSON Lines: each line a
// request body as received (`{"items": [...]}`) or one item of one; items other than
// checkpoints (events) are skipped, so a receiver may simply append what it gets.
import { ERR_BAD_REQUEST } from '../errors.js'
import type { OutsideCheckpoint } from './verify.js'

export interface OutsideCopies {
  byChain: Map<string, OutsideCheckpoint[]>
  /** Distinct checkpoints read (a redelivered batch repeats some). */
  checkpoints: number
  /** Items that were not checkpoints (events), skipped. */
  skipped: number
}

const KINDS = new Set(['periodic', 'close', 'retention'])
const HEX64 = /^[0-9a-f]{64}$/

function bad (line: number, detail: string): Error {
  return new ERR_BAD_REQUEST(`--checkpoints line ${line}: ${detail}`)
}

function optionalText (item: Record<string, unknown>, field: string, line: number): string | null {
  const value = item[field]
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw bad(line, `${field} must be a string`)
  return value
}

function toCheckpoint (item: Record<string, unknown>, line: number): OutsideCheckpoint {
  const { chain, seq, hash, kind } = item
  if (typeof chain !== 'string' || chain === '') throw bad(line, 'a checkpoint needs its chain')
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) throw bad(line, 'a checkpoint needs a positive integer seq')
  if (typeof hash !== 'string' || !HEX64.test(hash)) throw bad(line, 'a checkpoint needs its hash as 64 hex digits')
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw bad(line, 'a checkpoint kind is periodic, close or retention')
  return {
    chain,
    seq,
    hash,
    kind: kind as OutsideCheckpoint['kind'],
    createdAt: optionalText(item, 'createdAt', line),
    keyId: optionalText(item, 'keyId', line),
    signature: optionalText(item, 'signature', line)
  }
}

/** Parses the copies; a line that is not what the webhook sends is refused with its number. */
export function parseOutsideCopies (text: string): OutsideCopies {
  const byChain = new Map<string, OutsideCheckpoint[]>()
  const seen = new Set<string>()
  let skipped = 0
  let checkpoints = 0
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim()
    if (raw === '') continue
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      throw bad(i + 1, 'not JSON')
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad(i + 1, 'expected a JSON object')
    const record = value as Record<string, unknown>
    const items = Array.isArray(record.items) ? record.items as unknown[] : [record]
    for (const item of items) {
      if (item === null || typeof item !== 'object') throw bad(i + 1, 'an item must be a JSON object')
      if ((item as { type?: unknown }).type !== 'checkpoint') {
        skipped++
        continue
      }
      const cp = toCheckpoint(item as Record<string, unknown>, i + 1)
      const key = `${cp.chain}\u0000${cp.seq}\u0000${cp.kind}\u0000${cp.hash}`
      if (seen.has(key)) continue
      seen.add(key)
      checkpoints++
      const list = byChain.get(cp.chain)
      if (list === undefined) byChain.set(cp.chain, [cp])
      else list.push(cp)
    }
  }
  for (const list of byChain.values()) list.sort((a, b) => a.seq - b.seq)
  return { byChain, checkpoints, skipped }
}
