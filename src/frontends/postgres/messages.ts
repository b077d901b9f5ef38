// Backend (server → client) messages of the PostgreSQL protocol v3, framed by pg-protocol's
// Writer (type byte, int32 length, body). One builder per message; the session writes them.
import { Writer } from 'pg-protocol/dist/buffer-writer.js'

/** A column of a RowDescription: name, the upstream's table / attribute / type fields, format. */
export interface WireField {
  name: string
  tableOid: number
  column: number
  typeOid: number
  typeSize: number
  typeModifier: number
  /** 0 text, 1 binary. */
  format: number
}

/** The fields of an ErrorResponse / NoticeResponse (protocol field codes in comments). */
export interface WireError {
  severity: 'ERROR' | 'FATAL' | 'WARNING' | 'NOTICE'
  code: string // C
  message: string // M
  detail?: string // D
  hint?: string // H
  position?: string // P
}

const TYPE = {
  authentication: 0x52, // R
  backendKeyData: 0x4b, // K
  bindComplete: 0x32, // 2
  closeComplete: 0x33, // 3
  commandComplete: 0x43, // C
  emptyQuery: 0x49, // I
  error: 0x45, // E
  noData: 0x6e, // n
  notice: 0x4e, // N
  parameterDescription: 0x74, // t
  parameterStatus: 0x53, // S
  parseComplete: 0x31, // 1
  portalSuspended: 0x73, // s
  readyForQuery: 0x5a, // Z
  rowDescription: 0x54 // T
} as const

const empty = (code: number): Buffer => new Writer(5).flush(code)

export const authenticationOk = (): Buffer => new Writer().addInt32(0).flush(TYPE.authentication)
export const authenticationCleartextPassword = (): Buffer => new Writer().addInt32(3).flush(TYPE.authentication)
export const parameterStatus = (name: string, value: string): Buffer =>
  new Writer().addCString(name).addCString(value).flush(TYPE.parameterStatus)
export const backendKeyData = (pid: number, secret: number): Buffer =>
  new Writer().addInt32(pid).addInt32(secret).flush(TYPE.backendKeyData)
/** `status`: I idle, T in a transaction block, E in a failed transaction block. */
export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer =>
  new Writer().addString(status).flush(TYPE.readyForQuery)
export const parseComplete = (): Buffer => empty(TYPE.parseComplete)
export const bindComplete = (): Buffer => empty(TYPE.bindComplete)
export const closeComplete = (): Buffer => empty(TYPE.closeComplete)
export const noData = (): Buffer => empty(TYPE.noData)
export const portalSuspended = (): Buffer => empty(TYPE.portalSuspended)
export const emptyQueryResponse = (): Buffer => empty(TYPE.emptyQuery)
export const commandComplete = (tag: string): Buffer => new Writer().addCString(tag).flush(TYPE.commandComplete)

export function parameterDescription (oids: readonly number[]): Buffer {
  const w = new Writer().addInt16(oids.length)
  for (const oid of oids) w.addInt32(oid)
  return w.flush(TYPE.parameterDescription)
}

export function rowDescription (fields: readonly WireField[]): Buffer {
  const w = new Writer().addInt16(fields.length)
  for (const f of fields) {
    w.addCString(f.name).addInt32(f.tableOid).addInt16(f.column).addInt32(f.typeOid)
      .addInt16(f.typeSize).addInt32(f.typeModifier).addInt16(f.format)
  }
  return w.flush(TYPE.rowDescription)
}

function fields (w: Writer, e: WireError): Writer {
  // S and V: libpq reads V (non-localised) when present, older clients S.
  w.addString('S').addCString(e.severity).addString('V').addCString(e.severity)
  w.addString('C').addCString(e.code).addString('M').addCString(e.message)
  if (e.detail !== undefined) w.addString('D').addCString(e.detail)
  if (e.hint !== undefined) w.addString('H').addCString(e.hint)
  if (e.position !== undefined) w.addString('P').addCString(e.position)
  return w.add(Buffer.from([0]))
}

export const errorResponse = (e: WireError): Buffer => fields(new Writer(), e).flush(TYPE.error)
export const noticeResponse = (e: WireError): Buffer => fields(new Writer(), e).flush(TYPE.notice)

/** The single byte answering SSLRequest / GSSENCRequest: S (go ahead with TLS) or N. */
export const sslAnswer = (accept: boolean): Buffer => Buffer.from(accept ? 'S' : 'N')
