// Hot reload of the policies directory. An edit is only adopted when the whole directory
// validates again: a half-saved or broken file keeps the previous engine running (never an empty
// or permissive one) and reports why, so a typo in production cannot open or close the gateway.
import { EventEmitter } from 'node:events'
import { watch, type FSWatcher } from 'node:fs'
import { createPolicyEngine, type CompiledPolicyEngine } from './evaluator.js'
import { loadPolicyDirectory } from './loader.js'
import type { PolicySet } from './model.js'
import type { Decision, DecisionInput, PolicyEngine } from './types.js'

/** pino-compatible subset. */
export interface PolicyLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

export interface PolicyStoreOptions {
  /** Watch the directory and reload on change. Default true. */
  watch?: boolean
  /** Quiet period after the last file event before reloading. Default 150 ms. */
  debounceMs?: number
  logger?: PolicyLogger
}

export interface PolicyStoreEvents {
  /** A new, valid policy set is active. */
  reload: [engine: CompiledPolicyEngine, previousVersion: string]
  /** A reload failed; `current` is unchanged. */
  error: [err: Error]
}

export class PolicyStore extends EventEmitter<PolicyStoreEvents> {
  #current: CompiledPolicyEngine
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #reloading: Promise<boolean> | undefined
  #again = false
  #closed = false
  readonly #dir: string
  readonly #debounceMs: number
  readonly #logger: PolicyLogger | undefined

  /**
   * A PolicyEngine that always delegates to the current policy set; hand it to the pipeline
   * once and reloads take effect without rewiring.
   */
  readonly engine: PolicyEngine

  private constructor (dir: string, initial: CompiledPolicyEngine, options: PolicyStoreOptions) {
    super()
    this.#dir = dir
    this.#current = initial
    this.#debounceMs = options.debounceMs ?? 150
    this.#logger = options.logger
    const self = this
    this.engine = {
      decide: (input: DecisionInput): Decision => self.#current.decide(input),
      needsEstimate: (input: Omit<DecisionInput, 'analysis' | 'estimate'>): boolean => self.#current.needsEstimate(input),
      get version () { return self.#current.version }
    }
  }

  /** Loads `dir` (throws ERR_POLICY_INVALID if it is invalid at start) and starts watching. */
  static async open (dir: string, options: PolicyStoreOptions = {}): Promise<PolicyStore> {
    const set = await loadPolicyDirectory(dir)
    const store = new PolicyStore(dir, createPolicyEngine(set), options)
    store.#logWarnings(set)
    options.logger?.info({ policyVersion: set.version, files: set.files, rules: set.rules.length }, 'policies loaded')
    if (options.watch ?? true) store.#startWatching()
    return store
  }

  get current (): CompiledPolicyEngine {
    return this.#current
  }

  get policySet (): PolicySet {
    return this.#current.policySet
  }

  /**
   * Re-reads the directory now. Resolves true when a new version became active, false when the
   * content is unchanged or invalid (the error is reported, the old engine kept). Concurrent
   * calls coalesce into one extra pass so the last write is always seen.
   */
  async reload (): Promise<boolean> {
    if (this.#reloading !== undefined) {
      this.#again = true
      return await this.#reloading
    }
    this.#reloading = (async () => {
      let changed = false
      do {
        this.#again = false
        changed = (await this.#reloadOnce()) || changed
      } while (this.#again && !this.#closed)
      return changed
    })()
    try {
      return await this.#reloading
    } finally {
      this.#reloading = undefined
    }
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#watcher?.close()
    this.#watcher = undefined
  }

  async #reloadOnce (): Promise<boolean> {
    let set: PolicySet
    try {
      set = await loadPolicyDirectory(this.#dir)
    } catch (err) {
      if (!this.#closed) this.#report(err as Error)
      return false
    }
    if (this.#closed || set.version === this.#current.version) return false
    const previous = this.#current.version
    this.#current = createPolicyEngine(set)
    this.#logWarnings(set)
    this.#logger?.info({ policyVersion: set.version, previousVersion: previous, files: set.files, rules: set.rules.length }, 'policies reloaded')
    this.emit('reload', this.#current, previous)
    return true
  }

  #report (err: Error): void {
    this.#logger?.error({ err, policyVersion: this.#current.version }, `policy reload refused, keeping version ${this.#current.version}: ${err.message}`)
    // An 'error' event with no listener would throw and take the gateway down with it.
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  #logWarnings (set: PolicySet): void {
    for (const w of set.warnings) this.#logger?.warn({ policyVersion: set.version }, w)
  }

  #startWatching (): void {
    try {
      // Any event may matter (editors write via rename, ConfigMaps swap a symlinked dir), and
      // the loader filters file names itself, so every event just schedules a full re-read.
      this.#watcher = watch(this.#dir, { persistent: false }, () => this.#schedule())
      this.#watcher.on('error', (err) => this.#report(err))
    } catch (err) {
      this.#report(err as Error)
    }
  }

  #schedule (): void {
    if (this.#closed) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.reload()
    }, this.#debounceMs)
  }
}
