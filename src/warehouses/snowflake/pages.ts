// Later pages of a finished result, produced when a client asks for one (a SQL API partition, a
// connector chunk), on whichever replica it asks: the upstream chunk is fetched (its URL and
// SSE-C key re-requested from the upstream by query id when this process has none), decoded,
// masked under the statement's stored decision and handed to the front end to encode. A page of
// the upstream's inline rows that was not stored (manifest.ts) is re-read the same way, by query
// id. A JSON chunk is parsed, masked and encoded a slice of rows at a time (chunk-slices.ts),
// so what the page holds while it is produced is its encoded text, not its rows; the two
// caches are bounded and only save work.
import type { Pipeline, RoundTrip } from '../../pipeline.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import { ERR_NOT_FOUND, ERR_UPSTREAM_FAILED } from '../../errors.js'
import { rowsFromArrow } from './arrow.js'
import type { SnowflakeSettings } from './config.js'
import { releaseFailure } from './execute.js'
import { inlineOf } from './inline-rowset.js'
import { ownerKey, type Handle } from './handles.js'
import { sliceOf, type PageRef } from './manifest.js'
import { chunkDownloadHeaders } from './result.js'
import { ROWS_PER_SLICE, chunkSlices, rowSlices } from './chunk-slices.js'
import type { SnowflakeUpstream } from './upstream.js'
import type { QueryData } from './query-data.js'

/**
 * How a front end encodes one page: handed the masked rows slice by slice as they are released
 * (it keeps their encoding, not the rows), then asked for the body. Nothing is sent before
 * `end`: the round trip's event, written before the response leaves, covers every row.
 */
export interface PageEncoder<T> {
  add: (rows: unknown[][]) => void
  end: () => T
}

/** Where an upstream keeps one result's chunks: short-lived URLs and their credentials. */
interface ChunkSource {
  urls: string[]
  headers: Record<string, string>
  at: number
}

export interface ResultPagesOptions {
  pipeline: Pipeline
  upstreamOf: (connection: string) => { upstream: SnowflakeUpstream, settings: SnowflakeSettings } | undefined
  /** Entries kept per cache (default 256). */
  cacheSize?: number
  /** How long fetched chunk URLs are reused before the upstream is asked again (default 5 min). */
  sourceSeconds?: number
}

/** A Map kept in insertion order, trimmed oldest first. */
class Bounded<V> {
  readonly #map = new Map<string, V>()
  constructor (readonly size: number) {}
  get (key: string): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, value)
    }
    return value
  }

  set (key: string, value: V): void {
    this.#map.delete(key)
    this.#map.set(key, value)
    while (this.#map.size > this.size) this.#map.delete(this.#map.keys().next().value as string)
  }

  delete (key: string): void { this.#map.delete(key) }
  clear (): void { this.#map.clear() }
}

export class ResultPages {
  readonly #pipeline: Pipeline
  readonly #upstreamOf: ResultPagesOptions['upstreamOf']
  readonly #admissions: Bounded<Promise<Admission>>
  readonly #sources: Bounded<ChunkSource>
  readonly #sourceMs: number

  constructor (options: ResultPagesOptions) {
    this.#pipeline = options.pipeline
    this.#upstreamOf = options.upstreamOf
    this.#admissions = new Bounded(options.cacheSize ?? 256)
    this.#sources = new Bounded(options.cacheSize ?? 256)
    this.#sourceMs = (options.sourceSeconds ?? 300) * 1000
  }

  /** The replica that ran the statement already holds its chunk list: no need to ask again. */
  seed (handleId: string, data: QueryData): void {
    if ((data.chunks ?? []).length === 0) return
    this.#sources.set(handleId, { urls: (data.chunks ?? []).map((c) => c.url), headers: chunkDownloadHeaders(data), at: Date.now() })
  }

  /** Client page `index` of a finished result, masked and encoded by `encoder`. */
  async page<T> (handle: Handle, index: number, trip: RoundTrip, encoder: PageEncoder<T>): Promise<T> {
    const result = handle.result
    const page = result?.manifest.pages[index]
    if (result === undefined || page === undefined) throw new ERR_NOT_FOUND(`page ${index} of statement ${handle.id}`)
    if (page.chunk === undefined && page.inline === undefined) {
      const rows = sliceOf(result, page)
      this.#pipeline.served(handle.connection, result.manifest.schema, rows, trip)
      encoder.add(rows)
      return encoder.end()
    }
    return await this.#upstreamPage(handle, page, trip, encoder)
  }

  /** A chunk, or inline rows that were not stored, fetched from the upstream and masked. */
  async #upstreamPage<T> (handle: Handle, page: PageRef, trip: RoundTrip, encoder: PageEncoder<T>): Promise<T> {
    const { manifest } = handle.result!
    const admitted = handle.admitted
    const found = this.#upstreamOf(handle.connection)
    if (admitted === undefined || found === undefined || manifest.upstreamQueryId === undefined) {
      throw new ERR_UPSTREAM_FAILED(handle.connection, `statement ${handle.id} has no upstream result to read its pages from`)
    }
    const statement: Statement = admitted.part === undefined ? admitted.record.statement : { ...admitted.record.statement, sql: admitted.part }
    const admission = await this.#admission(handle.id, admitted.record)
    // The rule's statement timeout bounds each page of the statement too, as it bounded the run.
    const run = this.#pipeline.run(statement, admission, trip)
    const failure = (err: unknown): unknown => releaseFailure(this.#pipeline, statement, admission, err)
    try {
      let slices: Iterable<unknown[][]>
      if (page.chunk !== undefined) {
        const chunk = page.chunk
        const body = await run.upstream(async (signal) => await this.#download(handle, found.upstream, statement, chunk, signal), failure)
        // A page cut at the row cap hands out only the rows the manifest counts.
        slices = manifest.upstreamArrow
          ? rowSlices(rowsFromArrow(body, manifest.rowtype).slice(0, page.rows), ROWS_PER_SLICE)
          : chunkSlices(body, handle.connection, page.rows)
      } else {
        const offset = page.inline ?? 0
        const data = await run.upstream(async () => await this.#reread(handle, found.upstream, statement), failure)
        // Its chunk list comes with it: the chunk pages after it need not ask again.
        this.#remember(handle.id, data)
        const inline = inlineOf(data)
        // The upstream answers with the same result for its query id; fewer rows means it did not.
        if (inline.total < offset + page.rows) throw new ERR_UPSTREAM_FAILED(handle.connection, `the upstream's result of statement ${handle.id} no longer holds rows ${offset}–${offset + page.rows - 1}`)
        slices = inline.slices(offset, offset + page.rows)
      }
      const released = run.release({ schema: manifest.schema, pages: pagesOf(slices), upstreamId: manifest.upstreamQueryId })
      for await (const masked of released.pages) encoder.add(masked.rows)
      return encoder.end()
    } catch (err) {
      run.unsent()
      if (run.expired()) throw run.timedOut()
      throw err
    } finally {
      run.close()
    }
  }

  async #admission (id: string, record: Parameters<Pipeline['resume']>[0]): Promise<Admission> {
    let admission = this.#admissions.get(id)
    if (admission === undefined) {
      admission = this.#pipeline.resume(record)
      admission.catch(() => { this.#admissions.delete(id) })
      this.#admissions.set(id, admission)
    }
    return await admission
  }

  async #download (handle: Handle, upstream: SnowflakeUpstream, statement: Statement, chunk: number, signal: AbortSignal | undefined): Promise<Buffer> {
    const cached = this.#sources.get(handle.id)
    const fresh = cached !== undefined && Date.now() - cached.at < this.#sourceMs
    const source = fresh ? cached : await this.#source(handle, upstream, statement)
    const url = source.urls[chunk]
    if (url === undefined) throw new ERR_UPSTREAM_FAILED(handle.connection, `the upstream no longer lists chunk ${chunk} of statement ${handle.id}`)
    try {
      return await upstream.chunk(url, source.headers, signal)
    } catch (err) {
      // A reused URL may have expired upstream: ask for fresh ones once.
      if (!fresh || signal?.aborted === true) throw err
      this.#sources.delete(handle.id)
      const again = await this.#source(handle, upstream, statement)
      return await upstream.chunk(again.urls[chunk] ?? url, again.headers, signal)
    }
  }

  /**
   * The upstream's chunk list for the statement, asked for by query id on a session of the
   * statement's owner (any replica can): the URLs and their key stay in this process only.
   */
  async #source (handle: Handle, upstream: SnowflakeUpstream, statement: Statement): Promise<ChunkSource> {
    return this.#remember(handle.id, await this.#reread(handle, upstream, statement))
  }

  #remember (id: string, data: QueryData): ChunkSource {
    const source = { urls: (data.chunks ?? []).map((c) => c.url), headers: chunkDownloadHeaders(data), at: Date.now() }
    this.#sources.set(id, source)
    return source
  }

  /** The upstream's answer for the statement's query id, on a session of its owner and context. */
  async #reread (handle: Handle, upstream: SnowflakeUpstream, statement: Statement): Promise<QueryData> {
    const { manifest } = handle.result!
    const session = await upstream.lease(ownerKey(statement.principal), manifest.context ?? {})
    try {
      return await upstream.result(session, manifest.upstreamQueryId!)
    } finally {
      upstream.release(session)
    }
  }

  clear (): void {
    this.#admissions.clear()
    this.#sources.clear()
  }
}

async function * pagesOf (slices: Iterable<unknown[][]>): AsyncIterable<{ rows: unknown[][] }> {
  for (const rows of slices) yield { rows }
}
