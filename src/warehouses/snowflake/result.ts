// Upstream query response → neutral result. Every row source the upstream can use — the inline
// JSON rowset, the inline Arrow rowsetBase64, and result chunks in cloud storage (downloaded by
// Sluice with the upstream's SSE-C qrmk or chunk headers) — is read here. The front ends keep
// only the inline page (execute.ts) and fetch each chunk when a client asks for it (pages.ts);
// `neutralFromQueryData` reads a whole result page by page, one chunk in memory at a time.
import type { NeutralResult, ResultPage } from '../../pipeline/types.js'
import { rowsFromArrow } from './arrow.js'
import { rowsFromRowset, schemaFromRowtype } from './rowset.js'
import { inlineRows, isArrow } from './inline-rowset.js'
import type { SnowflakeUpstream } from './upstream.js'
import type { QueryData, RowTypeEntry } from './query-data.js'

/** The headers a chunk download needs: the upstream's chunkHeaders, else SSE-C from qrmk. */
export function chunkDownloadHeaders (data: QueryData): Record<string, string> {
  if (data.chunkHeaders !== undefined && data.chunkHeaders !== null) return { ...data.chunkHeaders }
  if (typeof data.qrmk === 'string') {
    return {
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key': data.qrmk
    }
  }
  return {}
}

/** Parses a JSON chunk body: rows separated by commas without the enclosing brackets. */
export function rowsFromJsonChunk (body: Buffer): unknown[][] {
  const text = body.toString('utf8').trim()
  if (text === '') return []
  const parsed = JSON.parse(text.startsWith('[[') || text === '[]' ? text : `[${text}]`) as unknown[][]
  return rowsFromRowset(parsed)
}

export function neutralFromQueryData (data: QueryData, upstream: SnowflakeUpstream): NeutralResult {
  const rowtype: RowTypeEntry[] = data.rowtype ?? []
  const arrow = isArrow(data)
  const headers = chunkDownloadHeaders(data)
  const chunks = data.chunks ?? []

  async function * pages (): AsyncIterable<ResultPage> {
    yield { rows: inlineRows(data) }
    for (const chunk of chunks) {
      const body = await upstream.chunk(chunk.url, headers)
      yield { rows: arrow ? rowsFromArrow(body, rowtype) : rowsFromJsonChunk(body) }
    }
  }

  const result: NeutralResult = { schema: schemaFromRowtype(rowtype), pages: pages() }
  if (data.queryId !== undefined) result.upstreamId = data.queryId
  return result
}
