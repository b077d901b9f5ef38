// Who owns which job, query id and anonymous result table (DESIGN.md §1: handles belong to
// their caller). Every job or query id Sluice hands out is bound to the principal that created
// it together with the statement and admission it ran under, so later pages (getQueryResults,
// tabledata.list on the result table) are masked under the same decision. Another principal
// asking for it gets 404, exactly as if it did not exist.
//
// The bindings live in this process, bounded in number and time (BigQuery keeps anonymous
// results about a day): a gateway restart forgets them, and the jobs then read as not found.
import type { Principal } from '../../identity/principal.js'
import type { Admission, Statement } from '../../pipeline/types.js'
import type { TableReference } from './wire.js'

export interface JobBinding {
  owner: string
  connection: string
  projectId: string
  /** The job id, or the query id of a JOB_CREATION_OPTIONAL query that created no job. */
  id: string
  kind: 'job' | 'query'
  location?: string
  statement: Statement
  admission: Admission
  destination?: TableReference
  createdAt: number
}

/** issuer + subject: the same person through two IdPs is two principals. */
export function ownerOf (principal: Principal): string {
  return `${principal.issuer}\n${principal.subject}`
}

function tableKey (ref: TableReference): string {
  return `${ref.projectId}\n${ref.datasetId}\n${ref.tableId}`
}

export class JobRegistry {
  readonly #bindings = new Map<string, JobBinding>()
  readonly #tables = new Map<string, string>()
  /** scope (caller + result) + page token → the row index that page starts at (maxRows). */
  readonly #pageStarts = new Map<string, number>()
  readonly #ttlMs: number
  readonly #max: number
  readonly #now: () => number

  constructor (options: { ttlSeconds?: number, maxEntries?: number, now?: () => number } = {}) {
    this.#ttlMs = (options.ttlSeconds ?? 86_400) * 1000
    this.#max = options.maxEntries ?? 100_000
    this.#now = options.now ?? Date.now
  }

  static key (connection: string, kind: 'job' | 'query', id: string): string {
    return `${connection}\n${kind}\n${id}`
  }

  bind (binding: Omit<JobBinding, 'createdAt'>): JobBinding {
    const entry = { ...binding, createdAt: this.#now() }
    const key = JobRegistry.key(entry.connection, entry.kind, entry.id)
    const existing = this.#bindings.get(key)
    // A job id is bound once: a second principal reusing an id never takes it over.
    if (existing !== undefined && existing.owner !== entry.owner) return existing
    this.#bindings.delete(key)
    this.#bindings.set(key, entry)
    if (entry.destination !== undefined) this.#tables.set(tableKey(entry.destination), key)
    this.#evict()
    return entry
  }

  /** The binding when `owner` owns it; undefined for unknown, expired and foreign ids alike. */
  find (connection: string, kind: 'job' | 'query', id: string, owner: string): JobBinding | undefined {
    const entry = this.#live(JobRegistry.key(connection, kind, id))
    return entry?.owner === owner ? entry : undefined
  }

  /** True when some principal other than `owner` holds this id. */
  heldByAnother (connection: string, kind: 'job' | 'query', id: string, owner: string): boolean {
    const entry = this.#live(JobRegistry.key(connection, kind, id))
    return entry !== undefined && entry.owner !== owner
  }

  /** Records the anonymous result table of an owned job (learned from jobs.get). */
  setDestination (binding: JobBinding, destination: TableReference): void {
    binding.destination = destination
    this.#tables.set(tableKey(destination), JobRegistry.key(binding.connection, binding.kind, binding.id))
  }

  /** The job whose result table this is, or undefined when it is no job's (known to Sluice). */
  tableOwner (ref: TableReference): JobBinding | undefined {
    const key = this.#tables.get(tableKey(ref))
    return key === undefined ? undefined : this.#live(key)
  }

  /** The caller's live bindings on one connection, for jobs.list. */
  ownedIds (connection: string, owner: string): Set<string> {
    const ids = new Set<string>()
    for (const entry of this.#bindings.values()) {
      if (entry.connection === connection && entry.owner === owner && this.#now() - entry.createdAt <= this.#ttlMs) ids.add(entry.id)
    }
    return ids
  }

  /** Remembers where the page behind a token Sluice handed out (in `scope`) starts. */
  rememberPageStart (scope: string, pageToken: string, start: number): void {
    const key = `${scope}\n${pageToken}`
    this.#pageStarts.delete(key)
    this.#pageStarts.set(key, start)
    for (const oldest of this.#pageStarts.keys()) {
      if (this.#pageStarts.size <= this.#max) break
      this.#pageStarts.delete(oldest)
    }
  }

  pageStart (scope: string, pageToken: string): number | undefined {
    return this.#pageStarts.get(`${scope}\n${pageToken}`)
  }

  #live (key: string): JobBinding | undefined {
    const entry = this.#bindings.get(key)
    if (entry === undefined) return undefined
    if (this.#now() - entry.createdAt > this.#ttlMs) {
      this.#drop(key, entry)
      return undefined
    }
    return entry
  }

  #drop (key: string, entry: JobBinding): void {
    this.#bindings.delete(key)
    if (entry.destination !== undefined) this.#tables.delete(tableKey(entry.destination))
  }

  #evict (): void {
    // Map iteration is insertion order, so the first entries are the oldest.
    for (const [key, entry] of this.#bindings) {
      if (this.#bindings.size <= this.#max && this.#now() - entry.createdAt <= this.#ttlMs) break
      this.#drop(key, entry)
    }
  }
}
