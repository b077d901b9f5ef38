// Frontend (client → server) messages: the byte stream cut into frames (startup-phase frames
// carry no type byte) and each frame's body read with pg-protocol's BufferReader.
import { BufferReader } from 'pg-protocol/dist/buffer-reader.js'

export const PROTOCOL_3 = 196608
export const SSL_REQUEST = 80877103
export const GSSENC_REQUEST = 80877104
export const CANCEL_REQUEST = 80877102

export type StartupFrame =
  | { kind: 'startup', version: number, parameters: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel', pid: number, secret: number }

export interface Frame {
  /** The type byte as a character (Q, P, B, …). */
  type: string
  body: Buffer
}

/** A frame larger than the cap: the connection is closed with a protocol violation. */
export class FrameTooLarge extends Error {}

/**
 * Accumulates socket chunks and hands out whole frames. Chunks are kept as a list and joined
 * only when a frame spans them, so a large DataRow-free stream costs no quadratic copying.
 */
export class FrameReader {
  #chunks: Buffer[] = []
  #length = 0
  readonly #maxBytes: number

  constructor (maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  push (chunk: Buffer): void {
    this.#chunks.push(chunk)
    this.#length += chunk.length
  }

  #take (n: number): Buffer {
    const head = this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks, this.#length)
    const out = head.subarray(0, n)
    const rest = head.subarray(n)
    this.#chunks = rest.length === 0 ? [] : [rest]
    this.#length = rest.length
    return out
  }

  #peek (n: number): Buffer | undefined {
    if (this.#length < n) return undefined
    const first = this.#chunks[0] as Buffer
    if (first.length >= n) return first
    const joined = Buffer.concat(this.#chunks, this.#length)
    this.#chunks = [joined]
    return joined
  }

  /** The next startup-phase frame, or undefined until one is complete. */
  nextStartup (): StartupFrame | undefined {
    const head = this.#peek(8)
    if (head === undefined) return undefined
    const length = head.readInt32BE(0)
    if (length < 8 || length > 10_000) throw new FrameTooLarge(`startup packet of ${length} bytes`)
    if (this.#length < length) return undefined
    const frame = this.#take(length)
    const code = frame.readInt32BE(4)
    if (code === SSL_REQUEST) return { kind: 'ssl' }
    if (code === GSSENC_REQUEST) return { kind: 'gssenc' }
    if (code === CANCEL_REQUEST) return { kind: 'cancel', pid: frame.readInt32BE(8), secret: frame.readInt32BE(12) }
    const parameters: Record<string, string> = {}
    const parts = frame.subarray(8).toString('utf8').split('\0')
    for (let i = 0; i + 1 < parts.length; i += 2) {
      const key = parts[i] as string
      if (key === '') break
      parameters[key] = parts[i + 1] as string
    }
    return { kind: 'startup', version: code, parameters }
  }

  /** The next regular frame, or undefined until one is complete. */
  next (): Frame | undefined {
    const head = this.#peek(5)
    if (head === undefined) return undefined
    const length = head.readInt32BE(1)
    if (length < 4) throw new FrameTooLarge(`message length ${length}`)
    if (length + 1 > this.#maxBytes) throw new FrameTooLarge(`message of ${length + 1} bytes (the limit is ${this.#maxBytes})`)
    if (this.#length < length + 1) return undefined
    const frame = this.#take(length + 1)
    return { type: String.fromCharCode(frame[0] as number), body: frame.subarray(5) }
  }
}

function reader (body: Buffer): BufferReader {
  const r = new BufferReader()
  r.setBuffer(0, body)
  return r
}

export const readPassword = (body: Buffer): string => reader(body).cstring()
export const readQuery = (body: Buffer): string => reader(body).cstring()

export interface ParseMessage { name: string, sql: string, paramTypes: number[] }
export function readParse (body: Buffer): ParseMessage {
  const r = reader(body)
  const name = r.cstring()
  const sql = r.cstring()
  const n = r.int16()
  const paramTypes: number[] = []
  for (let i = 0; i < n; i++) paramTypes.push(r.uint32())
  return { name, sql, paramTypes }
}

export interface BindMessage {
  portal: string
  statement: string
  /** Per parameter (or one for all, or none = all text), 0 text / 1 binary. */
  paramFormats: number[]
  values: Array<Buffer | null>
  resultFormats: number[]
}
export function readBind (body: Buffer): BindMessage {
  const r = reader(body)
  const portal = r.cstring()
  const statement = r.cstring()
  const paramFormats: number[] = []
  for (let i = 0, n = r.int16(); i < n; i++) paramFormats.push(r.int16())
  const values: Array<Buffer | null> = []
  for (let i = 0, n = r.int16(); i < n; i++) {
    const len = r.int32()
    values.push(len < 0 ? null : Buffer.from(r.bytes(len)))
  }
  const resultFormats: number[] = []
  for (let i = 0, n = r.int16(); i < n; i++) resultFormats.push(r.int16())
  return { portal, statement, paramFormats, values, resultFormats }
}

/** Describe and Close: S (statement) or P (portal), and the name. */
export interface TargetMessage { target: 'S' | 'P', name: string }
export function readTarget (body: Buffer): TargetMessage {
  const r = reader(body)
  const target = String.fromCharCode(r.byte()) === 'S' ? 'S' : 'P'
  return { target, name: r.cstring() }
}

export interface ExecuteMessage { portal: string, maxRows: number }
export function readExecute (body: Buffer): ExecuteMessage {
  const r = reader(body)
  return { portal: r.cstring(), maxRows: r.int32() }
}

/** The format a column or parameter uses under a Bind's format list (PostgreSQL's rules). */
export function formatAt (formats: readonly number[], index: number): number {
  if (formats.length === 0) return 0
  if (formats.length === 1) return formats[0] as number
  return formats[index] ?? 0
}
