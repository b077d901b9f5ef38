// A finished result as the store keeps it: its description and page list, never its rows
// (DESIGN.md §1: results stream). The first page is the upstream's inline rowset, masked at run
// time and kept with the handle, cut into slices of the connection's partitionRows: an upstream
// (or emulator) that inlines a large result still yields bounded answers, and slicing rows
// already in hand costs nothing. Every upstream chunk is a page of its own, fetched, masked and
// encoded when a client asks for it, at the upstream's own size.
// When the upstream pages the result in chunks (a large result), only the first firstPageRows
// inline rows are masked and kept before the first answer: the rest of the inline rowset become
// pages re-read from the upstream by query id when asked for, like chunks. The first answer then
// waits on masking and recording a thousand rows, not the whole inline rowset.
import type { ResultSchema } from '../../pipeline/types.js'
import type { FormatChoices } from './result-format.js'
import { rowsetFromRows } from './rowset.js'
import type { QueryData, RowTypeEntry, SessionContext } from './query-data.js'

/** One client page: a slice of the stored first page, or an upstream chunk. */
export interface PageRef {
  rows: number
  /** Uncompressed size as the upstream reported it (chunks) or as encoded (first-page slices). */
  bytes: number
  /** Offset into the stored first page. */
  offset?: number
  /** Offset into the upstream's inline rowset, not stored: re-read from the upstream by query id. */
  inline?: number
  /** Index of the upstream chunk. */
  chunk?: number
}

export interface ResultManifest {
  rowtype: RowTypeEntry[]
  schema: ResultSchema
  final: { database?: string, schema?: string, warehouse?: string, role?: string }
  parameters: Array<{ name: string, value: unknown }>
  statementTypeId?: number
  upstreamQueryId?: string
  /** The context the statement ran in: a later page re-requests its result in a session of it. */
  context?: SessionContext
  /** Child ids of a multi-statement request, in order, and their statement type ids. */
  children?: string[]
  childTypes?: number[]
  /** The result format the statement's parameters asked for (children inherit the request's). */
  formats?: FormatChoices
  /** Said to the client instead of "Statement executed successfully." (a result cut at its row limit). */
  notice?: string
  /** How the upstream encodes its chunks. */
  upstreamArrow: boolean
  /** Rows of the whole result as released (after the row cap). */
  total: number
  pages: PageRef[]
}

/** A finished result as a front end encodes it: the manifest and the masked first page. */
export interface StoredResult {
  manifest: ResultManifest
  firstPage: unknown[][]
}

/** The upstream's chunk list: rows per chunk and sizes, from its own manifest. */
export function upstreamChunks (data: QueryData): Array<{ rows: number, bytes: number }> {
  return (data.chunks ?? []).map((c) => ({ rows: c.rowCount, bytes: c.uncompressedSize ?? c.compressedSize ?? 0 }))
}

/** Rows in the whole upstream result: the inline page and every chunk. */
export function upstreamTotal (inlineRows: number, data: QueryData): number {
  return (data.chunks ?? []).reduce((n, c) => n + c.rowCount, inlineRows)
}

/**
 * The page list under the row cap: pages past the cap dropped, the last one kept cut, so every
 * replica serves the same rows without reading any page it will not hand out.
 */
export function pageList (firstPage: unknown[][], chunks: Array<{ rows: number, bytes: number }>, sliceRows: number, cap: number | undefined, unstored = 0): { pages: PageRef[], total: number } {
  const pages: PageRef[] = []
  let left = cap ?? Number.POSITIVE_INFINITY
  for (let offset = 0; offset < firstPage.length && left > 0; offset += sliceRows) {
    const rows = Math.min(sliceRows, firstPage.length - offset, left)
    pages.push({ rows, offset, bytes: sliceBytes(firstPage, offset, rows) })
    left -= rows
  }
  // The inline rows after the stored ones: sized like the stored rows (the client only plans with it).
  const perRow = firstPage.length === 0 ? 0 : (pages.reduce((n, p) => n + p.bytes, 0) / firstPage.length)
  for (let done = 0; done < unstored && left > 0; done += sliceRows) {
    const rows = Math.min(sliceRows, unstored - done, left)
    pages.push({ rows, inline: firstPage.length + done, bytes: Math.ceil(perRow * rows) })
    left -= rows
  }
  chunks.forEach((c, chunk) => {
    if (left <= 0 || c.rows === 0) return
    const rows = Math.min(c.rows, left)
    pages.push({ rows, chunk, bytes: rows === c.rows ? c.bytes : Math.ceil(c.bytes * rows / c.rows) })
    left -= rows
  })
  // Every result has a first page, an empty one included (partition 0, the inline rowset).
  if (pages.length === 0) pages.push({ rows: 0, offset: 0, bytes: 2 })
  return { pages, total: pages.reduce((n, p) => n + p.rows, 0) }
}

function sliceBytes (rows: unknown[][], offset: number, count: number): number {
  return Buffer.byteLength(JSON.stringify(rowsetFromRows(rows.slice(offset, offset + count))))
}

/** A result Sluice builds itself (a multi-statement parent, Snowpark's cancel-all answer). */
export function syntheticResult (rowtype: RowTypeEntry[], schema: ResultSchema, rows: unknown[][], extra: Partial<ResultManifest> = {}): StoredResult {
  const { pages, total } = pageList(rows, [], Math.max(1, rows.length), undefined)
  return { manifest: { rowtype, schema, final: {}, parameters: [], upstreamArrow: false, total, pages, ...extra }, firstPage: rows }
}

/** Rows of a first-page slice. */
export function sliceOf (result: StoredResult, page: PageRef): unknown[][] {
  const offset = page.offset ?? 0
  return result.firstPage.slice(offset, offset + page.rows)
}
