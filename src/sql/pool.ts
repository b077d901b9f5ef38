// The parser pool: statements are parsed and analysed on worker threads, never on the event
// loop, so one huge or pathological statement cannot stall every other client (a 1 MB IN list
// took 18-25 s on the main thread, and /healthz timed out meanwhile).
//
// Each statement has a budget: a deadline from the moment a thread starts on it, and the
// thread's heap limit (resourceLimits). Past either, the thread is terminated (WebAssembly
// cannot be interrupted any other way), the statement is refused as too complex, and a fresh
// thread takes its place; the statements queued behind it are not affected.
//
// Threads cost memory (tens of MB each: an isolate, the compiled parser, its WebAssembly
// memory), so only `warmWorkers` run while the gateway is idle; more start, up to `workers`,
// when statements wait or a long one occupies the last free thread, and stop again after
// IDLE_MS without work. A WebAssembly memory never
// shrinks: a thread one huge statement left with more than RECYCLE_WASM_BYTES is replaced by a
// fresh one once it has answered, so that statement's high-water mark is not kept for good.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ERR_STATEMENT_TOO_COMPLEX } from '../errors.js'
import type { TextFacts } from '../recording/text-facts.js'
import type { AnalysisJob, AnalysisReply } from './analysis-worker.js'
import type { Analysis, Dialect, QualifyDefaults } from './types.js'

export interface ParserPoolOptions {
  /** Threads at most; default 2 (on a 2-core machine one pathological statement leaves one free). */
  workers?: number
  /** Threads kept running while idle (default 1, at most `workers`); the others start on demand. */
  warmWorkers?: number
  /** How long a thread beyond the warm ones stays without work before it stops, ms (default IDLE_MS). */
  idleMs?: number
  /** Time one statement may take on a thread, in milliseconds; default 5000. */
  timeoutMs?: number
  /** Heap of each thread in MiB (V8 old generation); default 512. */
  memoryMb?: number
}

export interface PoolResult { analysis: Analysis, trees: Array<string | null>, text: TextFacts }

interface Pending {
  job: AnalysisJob
  resolve: (result: PoolResult) => void
  reject: (err: Error) => void
}

interface Slot {
  worker: Worker
  ready: boolean
  current?: Pending
  timer?: NodeJS.Timeout
  /** Set while a thread beyond the warm ones waits for work; it stops when this fires. */
  idleTimer?: NodeJS.Timeout
}

/** A thread beyond the warm ones stops after this long without a statement. */
const IDLE_MS = 30_000
/** A statement this long takes tens of ms or more to parse: a spare thread starts beside it. */
const LONG_STATEMENT_CHARS = 16 * 1024
/** WebAssembly memory past which a thread is replaced after its statement (a fresh one holds ~6 MB). */
const RECYCLE_WASM_BYTES = 64 * 1024 * 1024

// Under the TypeScript loader (tests, the bench) the thread registers the same loader and runs
// the .ts source: Node 20 does not apply `--import` hooks to a worker's own entry module.
const SOURCE = import.meta.url.endsWith('.ts')
const WORKER_URL = new URL(SOURCE ? './analysis-worker.ts' : './analysis-worker.js', import.meta.url)

function workerEntry (): { entry: string | URL, eval: boolean } {
  if (!SOURCE) return { entry: WORKER_URL, eval: false }
  const tsx = new URL('dist/esm/api/index.mjs', pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json'))).href
  return { entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}) })`, eval: true }
}

export class ParserPool {
  readonly #timeoutMs: number
  readonly #memoryMb: number
  readonly #maxWorkers: number
  readonly #warmWorkers: number
  readonly #idleMs: number
  readonly #slots: Slot[] = []
  readonly #queue: Pending[] = []
  #nextId = 1
  #closed = false
  /** After a thread failed to start, none is started on demand before this time (ms epoch). */
  #retryAt = 0
  /** Threads terminated for going over budget; for health output and tests. */
  replaced = 0
  /** Threads replaced because a statement left their WebAssembly memory past RECYCLE_WASM_BYTES. */
  recycled = 0

  constructor (options: ParserPoolOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000
    this.#memoryMb = options.memoryMb ?? 512
    this.#maxWorkers = Math.max(1, options.workers ?? 2)
    this.#warmWorkers = Math.min(this.#maxWorkers, Math.max(1, options.warmWorkers ?? 1))
    this.#idleMs = options.idleMs ?? IDLE_MS
    for (let i = 0; i < this.#warmWorkers; i++) this.#slots.push(this.#spawn())
  }

  get timeoutMs (): number { return this.#timeoutMs }

  /** Threads running or starting now. */
  get threads (): number { return this.#slots.length }

  analyze (sql: string, dialect: Dialect, defaults: QualifyDefaults): Promise<PoolResult> {
    if (this.#closed) return Promise.reject(new ERR_STATEMENT_TOO_COMPLEX('the parser pool is closed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ job: { id: this.#nextId++, sql, dialect, defaults }, resolve, reject })
      this.#dispatch()
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const p of this.#queue.splice(0)) p.reject(new ERR_STATEMENT_TOO_COMPLEX('the parser pool is closed'))
    await Promise.all(this.#slots.map(async (slot) => {
      clearTimeout(slot.timer)
      clearTimeout(slot.idleTimer)
      slot.current?.reject(new ERR_STATEMENT_TOO_COMPLEX('the parser pool is closed'))
      await slot.worker.terminate()
    }))
  }

  #spawn (): Slot {
    const { entry, eval: isEval } = workerEntry()
    const worker = new Worker(entry, {
      eval: isEval,
      resourceLimits: { maxOldGenerationSizeMb: this.#memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, this.#memoryMb >> 3)) }
    })
    // The pool never keeps the process alive on its own.
    worker.unref()
    const slot: Slot = { worker, ready: false }
    worker.on('message', (msg: AnalysisReply) => {
      if ('ready' in msg) {
        slot.ready = true
        this.#dispatch()
        return
      }
      if ('started' in msg) {
        if (slot.current?.job.id !== msg.started) return
        clearTimeout(slot.timer)
        slot.timer = setTimeout(() => { this.#lost(slot, `parsing took longer than ${this.#timeoutMs} ms`) }, this.#timeoutMs)
        slot.timer.unref()
        return
      }
      const pending = slot.current
      if (pending === undefined || pending.job.id !== msg.id) return
      clearTimeout(slot.timer)
      slot.current = undefined
      if (msg.ok) pending.resolve({ analysis: msg.analysis as Analysis, trees: msg.trees, text: msg.text })
      else pending.reject(new ERR_STATEMENT_TOO_COMPLEX(`its analysis failed (${msg.error})`))
      if ((msg.wasmBytes ?? 0) > RECYCLE_WASM_BYTES) this.#recycle(slot)
      this.#dispatch()
    })
    // Out of memory (ERR_WORKER_OUT_OF_MEMORY) or any other death: that statement is refused.
    worker.on('error', (err) => { this.#lost(slot, `the parser ran out of its budget (${err.message})`) })
    worker.on('exit', () => { this.#lost(slot, 'the parser thread stopped') })
    return slot
  }

  #dispatch (): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break
      if (!slot.ready || slot.current !== undefined) continue
      const pending = this.#queue.shift() as Pending
      clearTimeout(slot.idleTimer)
      slot.idleTimer = undefined
      slot.current = pending
      // Until the thread says it started (then the statement's own deadline runs): a thread that
      // never takes the statement is replaced too.
      slot.timer = setTimeout(() => { this.#lost(slot, 'the parser thread did not take the statement') }, Math.max(30_000, this.#timeoutMs * 4))
      slot.timer.unref()
      slot.worker.postMessage(pending.job)
    }
    if (this.#closed) return
    // Statements still waiting: start threads for them, up to the limit (one per statement
    // beyond those already starting). A long statement taking the last free thread starts one
    // too, so another client's short statement does not wait for it to be parsed.
    let starting = this.#slots.filter((s) => !s.ready).length
    const long = this.#slots.some((s) => s.current !== undefined && s.current.job.sql.length >= LONG_STATEMENT_CHARS)
    const free = this.#slots.some((s) => s.ready && s.current === undefined)
    const wanted = this.#queue.length + (long && !free ? 1 : 0)
    while (wanted > starting && this.#slots.length < this.#maxWorkers && Date.now() >= this.#retryAt) {
      this.#slots.push(this.#spawn())
      starting++
    }
    // Threads beyond the warm ones that have nothing to do stop after a while.
    let idle = this.#slots.length - this.#warmWorkers
    for (let i = this.#slots.length - 1; i >= 0 && idle > 0; i--) {
      const slot = this.#slots[i]!
      if (!slot.ready || slot.current !== undefined) continue
      idle--
      if (slot.idleTimer !== undefined) continue
      slot.idleTimer = setTimeout(() => { this.#retire(slot) }, this.#idleMs)
      slot.idleTimer.unref()
    }
  }

  /** Stops an idle thread beyond the warm ones. */
  #retire (slot: Slot): void {
    const at = this.#slots.indexOf(slot)
    if (at === -1 || slot.current !== undefined || this.#slots.length <= this.#warmWorkers) return
    this.#slots.splice(at, 1)
    this.#stop(slot)
  }

  /** Replaces a thread that has answered but holds a large WebAssembly memory with a fresh one. */
  #recycle (slot: Slot): void {
    const at = this.#slots.indexOf(slot)
    if (at === -1 || this.#closed) return
    this.recycled++
    this.#stop(slot)
    // A warm thread is needed anyway; one beyond them starts again only if statements wait.
    if (this.#slots.length <= this.#warmWorkers) this.#slots[at] = this.#spawn()
    else this.#slots.splice(at, 1)
  }

  #stop (slot: Slot): void {
    clearTimeout(slot.timer)
    clearTimeout(slot.idleTimer)
    slot.worker.removeAllListeners('exit')
    slot.worker.removeAllListeners('error')
    slot.worker.on('error', () => {})
    slot.worker.terminate().catch(() => {})
  }

  /** Refuses the slot's statement, terminates its thread and puts a fresh one in its place. */
  #lost (slot: Slot, why: string): void {
    const at = this.#slots.indexOf(slot)
    if (at === -1) return // already replaced
    clearTimeout(slot.timer)
    clearTimeout(slot.idleTimer)
    const pending = slot.current
    slot.current = undefined
    if (pending !== undefined) pending.reject(new ERR_STATEMENT_TOO_COMPLEX(why))
    slot.worker.removeAllListeners('exit')
    slot.worker.terminate().catch(() => {})
    if (this.#closed) return
    this.replaced++
    if (slot.ready) {
      this.#slots[at] = this.#spawn()
      return
    }
    // A thread that dies before it is ready will die again: fail what waits, retry in a while.
    if (this.#slots.every((s) => !s.ready)) {
      for (const p of this.#queue.splice(0)) p.reject(new ERR_STATEMENT_TOO_COMPLEX(`the parser could not start (${why})`))
    }
    this.#slots.splice(at, 1)
    this.#retryAt = Date.now() + 1000
    setTimeout(() => {
      if (this.#closed) return
      if (this.#slots.length < this.#warmWorkers) this.#slots.push(this.#spawn())
      else this.#dispatch()
    }, 1000).unref()
  }
}
