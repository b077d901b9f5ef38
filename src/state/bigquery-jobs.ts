// BigQuery job bindings and page cursors as records in the store (migrations/0007_bigquery_jobs.sql),
// behind a port so no gateway keeps them in its memory: a job inserted through one replica is
// read, paged and cancelled through any other, by its owner only. One SQL implementation runs
// on both store engines (Postgres and PGlite), which the tests run it on. Expiry is part of
// every lookup (`expires_at > now()`), so correctness never waits for a purge; the purge is a
// bounded, indexed delete of the oldest expired rows.
import { randomUUID } from 'node:crypto'
import { ERR_STORE_UNAVAILABLE } from '../errors.js'
import { decodeAdmitted, encodeAdmitted, type AdmittedRecord } from '../pipeline/admitted.js'
import type { Store } from '../store/store.js'

export type JobKind = 'job' | 'query'

export interface ResultTable {
  projectId: string
  datasetId: string
  tableId: string
}

/** A job id, or the query id of a JOB_CREATION_OPTIONAL query that created no job. */
export interface JobKey {
  connection: string
  kind: JobKind
  id: string
}

/**
 * A job a rule holds for approval (migrations/0011_bigquery_held_jobs.sql): nothing ran upstream
 * yet. What runs once it is approved is this job configuration, binds included.
 */
export interface HeldJob {
  approvalId: string
  /** The job to insert upstream under the binding's id (the statement's query parameters in it). */
  configuration: Record<string, unknown>
}

export interface NewJobBinding extends JobKey {
  /** A digest of the principal (issuer and subject), never the subject in clear. */
  owner: string
  project: string
  location?: string
  destination?: ResultTable
  admitted: AdmittedRecord
  /** Set while the job waits for approval; binding the id again without it clears it. */
  held?: HeldJob
}

export interface StoredJobBinding extends NewJobBinding {
  /** New with every (re)binding of the id: what a replica caches the resumed admission under. */
  bindingId: string
  /** Epoch milliseconds, by the store's clock. */
  createdAt: number
  expiresAt: number
}

/** A page token Sluice handed out, placed per caller and per result (job id or table). */
export interface PageCursor {
  owner: string
  connection: string
  resultId: string
  pageToken: string
}

export interface BigQueryJobStore {
  /**
   * Binds the id unless another principal holds it live: `bound` says whether this call bound it
   * (its owner may bind its own id again); the binding returned is the one in force.
   */
  bind: (binding: NewJobBinding, ttlSeconds: number) => Promise<{ bound: boolean, binding: StoredJobBinding }>
  /** The live binding of the id, whoever owns it. */
  find: (key: JobKey) => Promise<StoredJobBinding | undefined>
  /** The live bindings among `ids` (one page of jobs.list), in no particular order. */
  findMany: (connection: string, kind: JobKind, ids: string[]) => Promise<StoredJobBinding[]>
  /** Records the anonymous result table of the binding `bindingId` (if it is still the one in force). */
  setDestination: (key: JobKey, bindingId: string, destination: ResultTable) => Promise<void>
  /**
   * The live binding whose result table this is: `owner`'s own when it has one, else the newest
   * of another principal (a cached query can name one table for several jobs).
   */
  resultTable: (connection: string, table: ResultTable, owner: string) => Promise<StoredJobBinding | undefined>
  rememberPageStart: (cursor: PageCursor, start: number, ttlSeconds: number) => Promise<void>
  pageStart: (cursor: PageCursor) => Promise<number | undefined>
  /** Deletes up to `limit` expired bindings and up to `limit` expired cursors, oldest first; how many went. */
  purgeExpired: (limit: number) => Promise<number>
}

interface Row {
  connection: string
  kind: JobKind
  id: string
  bindingId: string
  owner: string
  project: string
  location: string | null
  destinationProject: string | null
  destinationDataset: string | null
  destinationTable: string | null
  admitted: string | AdmittedRecord
  held: string | HeldJob | null
  createdAt: number | string
  expiresAt: number | string
}

const COLUMNS = `connection, kind, id, binding_id::text as "bindingId", owner, project, location,
  destination_project as "destinationProject", destination_dataset as "destinationDataset",
  destination_table as "destinationTable", admitted, held,
  (extract(epoch from created_at) * 1000)::float8 as "createdAt", (extract(epoch from expires_at) * 1000)::float8 as "expiresAt"`

// A row that expired, or the caller's own, is as good as absent: the conflict branch takes it
// over. Another principal's live row stays, atomically, whichever replica asks.
const BIND = `insert into bigquery_jobs as j
    (connection, kind, id, binding_id, owner, project, location, destination_project, destination_dataset, destination_table, admitted, held, created_at, expires_at)
  values ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11::text::jsonb, $13::text::jsonb, now(), now() + make_interval(secs => $12::float8))
  on conflict (connection, kind, id) do update set
    binding_id = excluded.binding_id, owner = excluded.owner, project = excluded.project, location = excluded.location,
    destination_project = excluded.destination_project, destination_dataset = excluded.destination_dataset,
    destination_table = excluded.destination_table, admitted = excluded.admitted, held = excluded.held,
    created_at = excluded.created_at, expires_at = excluded.expires_at
  where j.expires_at <= now() or j.owner = excluded.owner
  returning ${COLUMNS}`

const FIND = `select ${COLUMNS} from bigquery_jobs where connection = $1 and kind = $2 and id = $3 and expires_at > now()`

const FIND_MANY = `select ${COLUMNS} from bigquery_jobs
  where connection = $1 and kind = $2 and id in (select jsonb_array_elements_text($3::text::jsonb)) and expires_at > now()`

const SET_DESTINATION = `update bigquery_jobs set destination_project = $5, destination_dataset = $6, destination_table = $7
  where connection = $1 and kind = $2 and id = $3 and binding_id = $4::uuid and expires_at > now()`

/** Exported for the test that shows it is served by the destination index. */
export const RESULT_TABLE = `select ${COLUMNS} from bigquery_jobs
  where connection = $1 and destination_project = $2 and destination_dataset = $3 and destination_table = $4 and expires_at > now()
  order by (owner = $5) desc, created_at desc limit 1`

const REMEMBER = `insert into bigquery_page_cursors as c (owner, connection, result_id, page_token, start_row, expires_at)
  values ($1, $2, $3, $4, $5::bigint, now() + make_interval(secs => $6::float8))
  on conflict (owner, connection, result_id, page_token) do update set start_row = excluded.start_row, expires_at = excluded.expires_at`

const PAGE_START = `select start_row::text as start from bigquery_page_cursors
  where owner = $1 and connection = $2 and result_id = $3 and page_token = $4 and expires_at > now()`

/** Exported for the tests that show they are served by the expiry indexes. */
export const PURGE_JOBS = `delete from bigquery_jobs where (connection, kind, id) in (
  select connection, kind, id from bigquery_jobs where expires_at <= now() order by expires_at limit $1)`
export const PURGE_CURSORS = `delete from bigquery_page_cursors where (owner, connection, result_id, page_token) in (
  select owner, connection, result_id, page_token from bigquery_page_cursors where expires_at <= now() order by expires_at limit $1)`

function fromRow (row: Row): StoredJobBinding {
  const binding: StoredJobBinding = {
    connection: row.connection,
    kind: row.kind,
    id: row.id,
    bindingId: row.bindingId,
    owner: row.owner,
    project: row.project,
    admitted: decodeAdmitted(row.admitted),
    createdAt: Number(row.createdAt),
    expiresAt: Number(row.expiresAt)
  }
  if (row.location !== null) binding.location = row.location
  if (row.held !== null) binding.held = typeof row.held === 'string' ? JSON.parse(row.held) as HeldJob : row.held
  if (row.destinationProject !== null && row.destinationDataset !== null && row.destinationTable !== null) {
    binding.destination = { projectId: row.destinationProject, datasetId: row.destinationDataset, tableId: row.destinationTable }
  }
  return binding
}

export class StoreBigQueryJobs implements BigQueryJobStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  async bind (binding: NewJobBinding, ttlSeconds: number): Promise<{ bound: boolean, binding: StoredJobBinding }> {
    const d = binding.destination
    // A live row the insert ran into can expire (or be purged) before it is read: try again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const [mine] = await this.#store.query<Row>(BIND, [binding.connection, binding.kind, binding.id, randomUUID(), binding.owner,
        binding.project, binding.location ?? null, d?.projectId ?? null, d?.datasetId ?? null, d?.tableId ?? null,
        encodeAdmitted(binding.admitted), ttlSeconds, binding.held === undefined ? null : JSON.stringify(binding.held)])
      if (mine !== undefined) return { bound: true, binding: fromRow(mine) }
      const held = await this.find(binding)
      if (held !== undefined) return { bound: false, binding: held }
    }
    throw new ERR_STORE_UNAVAILABLE(`the BigQuery ${binding.kind} id ${binding.id} could be neither bound nor read`)
  }

  async find (key: JobKey): Promise<StoredJobBinding | undefined> {
    const [row] = await this.#store.query<Row>(FIND, [key.connection, key.kind, key.id])
    return row === undefined ? undefined : fromRow(row)
  }

  async findMany (connection: string, kind: JobKind, ids: string[]): Promise<StoredJobBinding[]> {
    if (ids.length === 0) return []
    return (await this.#store.query<Row>(FIND_MANY, [connection, kind, JSON.stringify(ids)])).map(fromRow)
  }

  async setDestination (key: JobKey, bindingId: string, destination: ResultTable): Promise<void> {
    await this.#store.query(SET_DESTINATION, [key.connection, key.kind, key.id, bindingId, destination.projectId, destination.datasetId, destination.tableId])
  }

  async resultTable (connection: string, table: ResultTable, owner: string): Promise<StoredJobBinding | undefined> {
    const [row] = await this.#store.query<Row>(RESULT_TABLE, [connection, table.projectId, table.datasetId, table.tableId, owner])
    return row === undefined ? undefined : fromRow(row)
  }

  async rememberPageStart (cursor: PageCursor, start: number, ttlSeconds: number): Promise<void> {
    await this.#store.query(REMEMBER, [cursor.owner, cursor.connection, cursor.resultId, cursor.pageToken, String(start), ttlSeconds])
  }

  async pageStart (cursor: PageCursor): Promise<number | undefined> {
    const [row] = await this.#store.query<{ start: string }>(PAGE_START, [cursor.owner, cursor.connection, cursor.resultId, cursor.pageToken])
    return row === undefined ? undefined : Number(row.start)
  }

  async purgeExpired (limit: number): Promise<number> {
    const count = async (purge: string): Promise<number> =>
      Number((await this.#store.query<{ n: string }>(`with gone as (${purge} returning 1) select count(*) as n from gone`, [limit]))[0]?.n ?? 0)
    return await count(PURGE_JOBS) + await count(PURGE_CURSORS)
  }
}
