// DataRow messages written straight into chunks of about 64 KiB: a text value is encoded into
// the chunk where it goes (no Buffer per value, no Writer and no copy per row), and a chunk is
// handed to the socket whole. A chunk is never reused once handed over (the socket may still
// hold it), so the next one is a fresh allocation: one per 64 KiB of result, not three per value.
const CHUNK = 65536
const DATA_ROW = 0x44 // D

/** A value as the row encoder takes it: text (UTF-8 on the wire), bytes already encoded, or NULL. */
export type WireValue = string | Buffer | null

export class DataRowChunks {
  #buf: Buffer = Buffer.allocUnsafe(CHUNK)
  #used = 0
  #rows = 0

  /** Rows in the chunk not yet taken. */
  get rows (): number { return this.#rows }
  get bytes (): number { return this.#used }

  add (values: readonly WireValue[]): void {
    let size = 7 // type, length, column count
    for (const v of values) size += 4 + (v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length)
    if (this.#used + size > this.#buf.length) this.#grow(size)
    const buf = this.#buf
    let at = this.#used
    buf[at] = DATA_ROW
    buf.writeInt32BE(size - 1, at + 1)
    buf.writeInt16BE(values.length, at + 5)
    at += 7
    for (const v of values) {
      if (v === null) { buf.writeInt32BE(-1, at); at += 4; continue }
      const lengthAt = at
      at += 4
      const n = typeof v === 'string' ? buf.write(v, at, 'utf8') : v.copy(buf, at)
      buf.writeInt32BE(n, lengthAt)
      at += n
    }
    this.#used = at
    this.#rows++
  }

  /** The rows added since the last take, as one buffer (undefined when there are none). */
  take (): Buffer | undefined {
    if (this.#used === 0) return undefined
    const out = this.#buf.subarray(0, this.#used)
    const rest = this.#buf.length - this.#used
    // What is left of a large allocation serves the next rows; a small rest is not worth keeping.
    this.#buf = rest >= 4096 ? this.#buf.subarray(this.#used) : Buffer.allocUnsafe(CHUNK)
    this.#used = 0
    this.#rows = 0
    return out
  }

  /** Room for a row of `size` bytes: a fresh chunk (the filled part is kept for `take`). */
  #grow (size: number): void {
    const next = Buffer.allocUnsafe(Math.max(CHUNK, this.#used + size))
    this.#buf.copy(next, 0, 0, this.#used)
    this.#buf = next
  }
}
