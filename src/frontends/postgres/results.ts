// One statement's result, from the upstream to the client: upstream batches become neutral
// pages, the pipeline masks them, and each masked row is written as a DataRow in the format the
// client asked for. Rows are pulled a batch at a time and written with socket backpressure, so
// the gateway holds one batch per session whatever the result size.
import type { Socket } from 'node:net'
import type { NeutralResult, ResultPage, StatementRun } from '../../pipeline.js'
import { BinaryFormatRefused, binaryEncodable, encodeBinary, toNeutral, toText } from '../../warehouses/postgres/codec.js'
import { isArrayType, typeName } from '../../warehouses/postgres/types.js'
import type { Execution, UpstreamField } from '../../warehouses/postgres/upstream.js'
import { formatAt } from './frames.js'
import { DataRowChunks, type WireValue } from './data-rows.js'
import { noticeResponse, type WireField } from './messages.js'

/** A chunk of DataRows goes to the socket once it holds this much. */
const FLUSH_BYTES = 60 * 1024

export function wireFields (fields: readonly UpstreamField[], formats: readonly number[]): WireField[] {
  return fields.map((f, i) => ({
    name: f.name,
    tableOid: f.tableID,
    column: f.columnID,
    typeOid: f.dataTypeID,
    typeSize: f.dataTypeSize,
    typeModifier: f.dataTypeModifier,
    format: formatAt(formats, i)
  }))
}

/** Refuses, before any row, a binary result column Sluice cannot encode. */
export function checkBinary (fields: readonly UpstreamField[], formats: readonly number[]): void {
  fields.forEach((f, i) => {
    if (formatAt(formats, i) === 1 && !binaryEncodable(f.dataTypeID)) throw new BinaryFormatRefused(f.name, f.dataTypeID)
  })
}

export async function write (socket: Socket, chunk: Buffer): Promise<void> {
  if (socket.write(chunk)) return
  if (socket.destroyed) return
  await new Promise<void>((resolve) => {
    const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/** A statement's result being streamed; `send` may stop at a row count (portal suspension). */
export class StreamedResult {
  readonly #execution: Execution
  readonly #fields: UpstreamField[]
  readonly #formats: number[]
  readonly #pages: AsyncIterator<ResultPage>
  readonly #run: StatementRun
  #pending: unknown[][] = []
  #next = 0
  #sent = 0
  #exhausted = false
  #checked = false
  /** The result was cut at the cap after a portal's row limit: announced by the next Execute. */
  #cut = false
  readonly #chunks = new DataRowChunks()
  /** Per column: written in binary format (the client's result formats, resolved once). */
  readonly #binary: boolean[]
  /** Rows written by the last `send`: the count of a SELECT's CommandComplete for that Execute. */
  lastWritten = 0

  constructor (run: StatementRun, execution: Execution, fields: UpstreamField[], formats: number[]) {
    this.#run = run
    this.#execution = execution
    this.#fields = fields
    this.#formats = formats
    this.#binary = fields.map((_, i) => formatAt(formats, i) === 1)
    // Only array columns change shape (text → JS array); the upstream's row arrays are Sluice's
    // own and are converted in place, so a row costs no new array on its way to the masker.
    const arrays = fields.flatMap((f, i) => isArrayType(f.dataTypeID) ? [i] : [])
    async function * pages (): AsyncIterable<ResultPage> {
      for (;;) {
        const batch = await execution.next()
        const rows = batch.rows as unknown[][]
        if (arrays.length > 0) {
          for (const row of rows) for (const i of arrays) row[i] = toNeutral(row[i] as string | null, fields[i]?.dataTypeID as number)
        }
        yield { rows }
        if (batch.done) return
      }
    }
    const result: NeutralResult = {
      schema: { columns: fields.map((f) => ({ name: f.name, type: typeName(f.dataTypeID) })) },
      pages: pages()
    }
    // Under truncate the rows past the cap are cut before the release: the trail counts and
    // captures only the rows the client can be sent (a refusal is decided by `check`).
    const cut = run.cap !== undefined && !run.cap.refuse ? run.capped(result) : result
    this.#pages = run.release(cut).pages[Symbol.asyncIterator]()
  }

  /**
   * Under maxRowsAction: refuse, the result is refused whole or not at all, as the Snowflake and
   * BigQuery front ends refuse it from the upstream's count before any row: PostgreSQL gives no
   * count up front, so the rows up to one past the cap are fetched and masked here, before the
   * first DataRow (and, for a Query, before its RowDescription). The look-ahead holds at most
   * the cap's rows plus one batch; a cap too large to hold is the policy's to choose.
   */
  async check (): Promise<void> {
    if (this.#checked) return
    this.#checked = true
    const cap = this.#run.cap
    if (cap === undefined || !cap.refuse) return
    const held: unknown[][] = []
    while (held.length <= cap.rows) {
      const next = await this.#pages.next()
      if (next.done === true) { this.#exhausted = true; break }
      for (const row of next.value.rows) held.push(row)
    }
    // The rows held are the total PostgreSQL did not tell: past the cap, the run refuses the
    // result with nothing recorded as released.
    try {
      this.#run.checkTotal(held.length)
    } catch (err) {
      this.abandon()
      throw err
    }
    this.#pending = held
    this.#next = 0
  }

  /**
   * Writes up to `maxRows` rows (0: all). Resolves true when the result is complete (the
   * CommandComplete tag is then `execution.tag`), false when suspended with rows left.
   */
  async send (socket: Socket, maxRows: number): Promise<boolean> {
    await this.check()
    this.lastWritten = 0
    if (this.#cut) return await this.#limited(socket)
    // DataRows are written in chunks of about 64 KiB (src/frontends/postgres/data-rows.ts): one
    // socket write per row costs more than the row itself; the chunk is flushed before anything
    // else is written or awaited.
    const chunks = this.#chunks
    const values: WireValue[] = new Array(this.#fields.length)
    const flush = async (): Promise<void> => {
      const out = chunks.take()
      if (out !== undefined) await write(socket, out)
    }
    for (;;) {
      while (this.#next < this.#pending.length) {
        if (maxRows > 0 && this.lastWritten >= maxRows) { await flush(); return false }
        const row = this.#pending[this.#next++] as unknown[]
        for (let i = 0; i < values.length; i++) values[i] = this.#encode(row[i], i)
        chunks.add(values)
        if (chunks.bytes >= FLUSH_BYTES) await flush()
        this.#sent++
        this.lastWritten++
      }
      await flush()
      if (this.#exhausted) return true
      const next = await this.#pages.next()
      // The pages ended at the cap with rows left (run.capped): announced after the last row, in
      // the Execute that would have sent the next one.
      if (next.done === true && this.#run.trip.rowsLimited !== undefined) {
        if (maxRows > 0 && this.lastWritten >= maxRows) { this.#cut = true; return false }
        return await this.#limited(socket)
      }
      if (next.done === true) { this.#exhausted = true; continue }
      this.#pending = next.value.rows
      this.#next = 0
    }
  }

  #encode (v: unknown, i: number): WireValue {
    const text = typeof v === 'string' ? v : toText(v)
    if (text === null) return null
    return this.#binary[i] === true ? encodeBinary(text, (this.#fields[i] as UpstreamField).dataTypeID) : text
  }

  /** More rows than the rule allows: cut and announced (a refusal was decided by `check`). */
  async #limited (socket: Socket): Promise<boolean> {
    this.abandon()
    const notice = this.#run.limited() as string
    await write(socket, noticeResponse({ severity: 'NOTICE', code: '01000', message: notice }))
    this.#exhausted = true
    this.#pending = []
    this.#next = 0
    return true
  }

  get rowsSent (): number { return this.#sent }
  get execution (): Execution { return this.#execution }

  /** Stops fetching: the upstream portal is closed and the connection freed. */
  abandon (): void {
    this.#execution.abandon()
    void this.#pages.return?.()
  }
}

/**
 * The CommandComplete tag for what this client saw. Sluice fetches the upstream in its own
 * batches, so the upstream's SELECT / FETCH count is that of its last batch; PostgreSQL's is the
 * rows of the Execute that finished the portal (drivers such as postgres.js rely on it).
 */
export function completionTag (upstreamTag: string | undefined, rows: number): string {
  if (upstreamTag === undefined) return `SELECT ${rows}`
  const m = /^(SELECT|FETCH|MOVE) \d+$/.exec(upstreamTag)
  return m === null ? upstreamTag : `${m[1] as string} ${rows}`
}
