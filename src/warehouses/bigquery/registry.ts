// Who owns which job, query id and anonymous result table (DESIGN.md §1: handles belong to
// their caller). Every job or query id Sluice hands out is bound to the principal that created
// it together with the statement and decision it ran under, so later pages (getQueryResults,
// tabledata.list on the result table) are masked under the same decision. Another principal
// asking for it gets 404, exactly as if it did not exist.
//
// The bindings and page cursors are store records (src/state/bigquery-jobs.ts), so any replica
// answers any request. A replica that did not admit a statement gets its Admission back with
// Pipeline.resume (the analysis made again off the event loop, the decision as stored) and
// keeps it in a small cache by binding; the store stays the truth for who owns what.
import { createHash } from 'node:crypto'
import type { Principal } from '../../identity/principal.js'
import type { Pipeline } from '../../pipeline.js'
import { admittedRecord } from '../../pipeline/admitted.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import type { BigQueryJobStore, HeldJob, JobKind, PageCursor, StoredJobBinding } from '../../state/bigquery-jobs.js'
import type { TableReference } from './wire.js'

export interface JobBinding {
  bindingId: string
  /** A digest of the principal (see ownerOf). */
  owner: string
  connection: string
  projectId: string
  /** The job id, or the query id of a JOB_CREATION_OPTIONAL query that created no job. */
  id: string
  kind: JobKind
  location?: string
  /** The statement as admitted, without its bind values (the trail has those). */
  statement: Statement
  admission: Admission
  destination?: TableReference
  /** Epoch milliseconds (the store's clock): the rule's statement timeout counts from here. */
  createdAt: number
  /** Waiting for approval: nothing ran upstream under this id yet (held.ts). */
  held?: HeldJob
}

export interface NewBinding {
  owner: string
  connection: string
  projectId: string
  id: string
  kind: JobKind
  location?: string
  destination?: TableReference
  statement: Statement
  admission: Admission
  held?: HeldJob
}

/** sha256 of issuer + subject: the same person through two IdPs is two principals. */
export function ownerOf (principal: Principal): string {
  return createHash('sha256').update(`${principal.issuer}\n${principal.subject}`, 'utf8').digest('hex')
}

export interface JobRegistryOptions {
  /** How long bindings and page cursors live (BigQuery keeps anonymous results about a day). */
  ttlSeconds?: number
  /** Resumed admissions kept per process. */
  cacheEntries?: number
  /** A bounded purge of expired rows runs at most this often, off the request's path. */
  purgeEverySeconds?: number
  purgeBatch?: number
  log?: { warn: (obj: object, msg?: string) => void }
}

export class JobRegistry {
  readonly #store: BigQueryJobStore
  readonly #pipeline: Pipeline
  readonly #ttlSeconds: number
  readonly #cacheEntries: number
  readonly #purgeEveryMs: number
  readonly #purgeBatch: number
  readonly #log: JobRegistryOptions['log']
  /** bindingId → its admission (Map order: least recently used first). */
  readonly #admissions = new Map<string, Promise<Admission>>()
  #lastPurge = 0

  constructor (store: BigQueryJobStore, pipeline: Pipeline, options: JobRegistryOptions = {}) {
    this.#store = store
    this.#pipeline = pipeline
    this.#ttlSeconds = options.ttlSeconds ?? 86_400
    this.#cacheEntries = options.cacheEntries ?? 1000
    this.#purgeEveryMs = (options.purgeEverySeconds ?? 60) * 1000
    this.#purgeBatch = options.purgeBatch ?? 500
    this.#log = options.log
  }

  /** Binds an id to its caller; undefined when another principal holds it (never served to this one). */
  async bind (binding: NewBinding): Promise<JobBinding | undefined> {
    this.#purgeNowAndThen()
    const { bound, binding: stored } = await this.#store.bind({
      connection: binding.connection,
      kind: binding.kind,
      id: binding.id,
      owner: binding.owner,
      project: binding.projectId,
      location: binding.location,
      destination: binding.destination,
      admitted: admittedRecord(binding.statement, binding.admission),
      ...(binding.held !== undefined && { held: binding.held })
    }, this.#ttlSeconds)
    if (!bound) return undefined
    this.#remember(stored.bindingId, Promise.resolve(binding.admission))
    return await this.#served(stored)
  }

  /** The binding when `owner` owns it; undefined for unknown, expired and foreign ids alike. */
  async find (connection: string, kind: JobKind, id: string, owner: string): Promise<JobBinding | undefined> {
    const stored = await this.#store.find({ connection, kind, id })
    return stored?.owner === owner ? await this.#served(stored) : undefined
  }

  /** True when some principal other than `owner` holds this id. */
  async heldByAnother (connection: string, kind: JobKind, id: string, owner: string): Promise<boolean> {
    const stored = await this.#store.find({ connection, kind, id })
    return stored !== undefined && stored.owner !== owner
  }

  /** Records the anonymous result table of an owned job (learned from jobs.get or jobs.insert). */
  async setDestination (binding: JobBinding, destination: TableReference): Promise<void> {
    if (sameTable(binding.destination, destination)) return
    await this.#store.setDestination(binding, binding.bindingId, destination)
    binding.destination = destination
  }

  /**
   * Whose result this table is: `mine` when the caller owns a job that wrote it, `held` when
   * only another principal does (so it reads as not found), neither when no job known to Sluice did.
   */
  async tableOwner (connection: string, table: TableReference, owner: string): Promise<{ mine?: JobBinding, held: boolean }> {
    const stored = await this.#store.resultTable(connection, table, owner)
    if (stored === undefined) return { held: false }
    if (stored.owner !== owner) return { held: true }
    return { mine: await this.#served(stored), held: false }
  }

  /** The caller's live bindings among one page of listed job ids (and their parents), by id. */
  async ownedAmong (connection: string, owner: string, ids: string[]): Promise<Map<string, JobBinding>> {
    const found = await this.#store.findMany(connection, 'job', [...new Set(ids)])
    const owned = new Map<string, JobBinding>()
    for (const stored of found) {
      if (stored.owner === owner) owned.set(stored.id, await this.#served(stored))
    }
    return owned
  }

  /** Remembers where the page behind a token Sluice handed out starts. */
  async rememberPageStart (cursor: PageCursor, start: number): Promise<void> {
    await this.#store.rememberPageStart(cursor, start, this.#ttlSeconds)
  }

  async pageStart (cursor: PageCursor): Promise<number | undefined> {
    return await this.#store.pageStart(cursor)
  }

  async #served (stored: StoredJobBinding): Promise<JobBinding> {
    const binding: JobBinding = {
      bindingId: stored.bindingId,
      owner: stored.owner,
      connection: stored.connection,
      projectId: stored.project,
      id: stored.id,
      kind: stored.kind,
      statement: stored.admitted.statement,
      admission: await this.#admission(stored),
      createdAt: stored.createdAt
    }
    if (stored.location !== undefined) binding.location = stored.location
    if (stored.destination !== undefined) binding.destination = stored.destination
    if (stored.held !== undefined) binding.held = stored.held
    return binding
  }

  /** The admission of a binding: cached, or resumed from its stored record (once per process). */
  async #admission (stored: StoredJobBinding): Promise<Admission> {
    const cached = this.#admissions.get(stored.bindingId)
    if (cached !== undefined) {
      this.#remember(stored.bindingId, cached)
      return await cached
    }
    const resumed = this.#pipeline.resume(stored.admitted)
    this.#remember(stored.bindingId, resumed)
    try {
      return await resumed
    } catch (err) {
      // A failed resume (parser pool busy or down) is not kept: the next request tries again.
      if (this.#admissions.get(stored.bindingId) === resumed) this.#admissions.delete(stored.bindingId)
      throw err
    }
  }

  #remember (bindingId: string, admission: Promise<Admission>): void {
    this.#admissions.delete(bindingId)
    this.#admissions.set(bindingId, admission)
    for (const oldest of this.#admissions.keys()) {
      if (this.#admissions.size <= this.#cacheEntries) break
      this.#admissions.delete(oldest)
    }
  }

  /** A bounded, indexed purge of expired rows, at most once a minute, off the request's path. */
  #purgeNowAndThen (): void {
    const now = Date.now()
    if (now - this.#lastPurge < this.#purgeEveryMs) return
    this.#lastPurge = now
    this.#store.purgeExpired(this.#purgeBatch).catch((err: unknown) => {
      this.#log?.warn({ err: (err as Error).message }, 'bigquery: purging expired job bindings failed; lookups ignore them anyway')
    })
  }
}

function sameTable (a: TableReference | undefined, b: TableReference): boolean {
  return a !== undefined && a.projectId === b.projectId && a.datasetId === b.datasetId && a.tableId === b.tableId
}
