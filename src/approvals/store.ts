// Pending approvals as records in the store (migrations/0008_approvals.sql), behind a port so
// no gateway keeps them in memory: an approval given through one replica is seen by all, and
// the statement it releases runs once (`claim`). One SQL implementation for both engines
// (Postgres and PGlite), tested on both. Expiry is part of every lookup — a pending or approved
// row past `expires_at` reads as expired — so correctness never waits for `expire` to run.
import { ERR_BAD_REQUEST, ERR_STORE_UNAVAILABLE } from '../errors.js'
import type { ApprovalSettings } from '../policy/types.js'
import type { Store, StoreTx } from '../store/store.js'
import { requesterKey } from './people.js'
import type { ApprovalDecisionRecord, ApprovalRecord, ApprovalStatus, NewApproval, Page } from './types.js'

export interface DecisionInput {
  approverIssuer: string
  approverSubject: string
  decision: 'approve' | 'deny'
  reason?: string
  grantMinutes?: number
}

export type DecideResult =
  /** Counted; more distinct approvers are needed. */
  | { result: 'recorded', approval: ApprovalRecord }
  /** This decision closed it (approved: minApprovals reached; denied). */
  | { result: 'approved' | 'denied', approval: ApprovalRecord }
  /** This approver already approved it. */
  | { result: 'duplicate', approval: ApprovalRecord }
  /** It is no longer pending (decided, expired, withdrawn, run). */
  | { result: 'closed', approval: ApprovalRecord }

export interface ApprovalListFilter {
  status?: ApprovalStatus
  connection?: string
  /** The requester's subject, or any subject of its chain. */
  requester?: string
}

export interface ApprovalStore {
  /**
   * A new pending approval — or, when this statement of this requester already has one (a
   * concurrent request won the race), that one: compare ids to tell.
   */
  create: (approval: NewApproval) => Promise<ApprovalRecord>
  /** The approval with its decisions; undefined when there is none. */
  get: (id: string) => Promise<ApprovalRecord | undefined>
  list: (filter: ApprovalListFilter, cursor?: string, limit?: number) => Promise<Page<ApprovalRecord>>
  /**
   * The newest live (pending, or approved and not yet run) approval of this exact statement
   * (text and binds) by this requester on this connection: a re-sent statement finds it.
   */
  findOpen: (requesterKey: string, connection: string, statementHash: string) => Promise<ApprovalRecord | undefined>
  /**
   * Records one approver's decision and closes the approval when it decides it, atomically
   * (the approval row is locked), so two approvers at once never both close it or both miss.
   * `onApproved` runs in the same transaction when this decision approved it (grants).
   */
  decide: (id: string, input: DecisionInput, settings: Pick<ApprovalSettings, 'minApprovals' | 'expiresAfterMinutes'>,
    onApproved?: (tx: StoreTx, approval: ApprovalRecord, decisions: ApprovalDecisionRecord[]) => Promise<void>) => Promise<DecideResult>
  /** The requester takes it back (client cancel): pending or approved-not-run → withdrawn. */
  withdraw: (id: string, requesterKey: string) => Promise<ApprovalRecord | undefined>
  /**
   * Takes the approved statement for execution: succeeds for exactly one caller, whichever
   * replicas race, and only while it is approved and unexpired. The row is `executed` after.
   * `lease`: a poll of the held statement claims it, to start it next (migrations/0014).
   */
  claim: (id: string, replica: string, options?: { lease?: boolean }) => Promise<ApprovalRecord | undefined>
  /**
   * A leased claim whose replica never started the statement: the approval when it was claimed at
   * least `leaseSeconds` ago (the store's clock, so no replica's clock skews it), else undefined.
   */
  staleClaim: (id: string, leaseSeconds: number) => Promise<ApprovalRecord | undefined>
  /**
   * Takes over a stale claim for `replica` (claimed_by and claimed_at renewed): exactly one of
   * racing callers wins. Only for a statement that cannot run twice whoever starts it (a
   * BigQuery job under its fixed id).
   */
  reclaim: (id: string, replica: string, leaseSeconds: number) => Promise<ApprovalRecord | undefined>
  /** Marks up to `limit` live approvals past their expiry as expired, oldest first; those it marked. */
  expire: (limit: number) => Promise<ApprovalRecord[]>
  /** How many statements wait for a decision now (pending and unexpired), for monitoring. */
  pendingCount: () => Promise<number>
}

/** ISO 8601 UTC with microseconds, as every reader of the store formats times. */
export const iso = (col: string): string => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** The effective status: a live row past its expiry is expired, swept or not. */
const STATUS = `case when a.status in ('pending', 'approved') and a.expires_at <= now() then 'expired' else a.status end`

const COLUMNS = `a.id::text as id, a.requester_issuer, a.requester_subject, a.requester_type, a.requester_client_id, a.delegation,
  a.connection, a.connection_kind, a.front_end, a.sql_text, a.fingerprint, a.statement_hash, a.params, a.analysis, a.rule_id,
  a.settings, a.reason, a.preview, ${STATUS} as status, a.grant_id::text as grant_id, ${iso('a.created_at')} as created_at,
  ${iso('a.expires_at')} as expires_at, ${iso('a.decided_at')} as decided_at, a.decided_by, a.decision_reason, a.claimed_by,
  ${iso('a.claimed_at')} as claimed_at, a.justification`

interface Row {
  id: string
  requester_issuer: string
  requester_subject: string
  requester_type: 'human' | 'machine'
  requester_client_id: string | null
  delegation: ApprovalRecord['requester']['delegation']
  connection: string
  connection_kind: string
  front_end: string
  sql_text: string
  fingerprint: string
  statement_hash: string
  params: unknown
  analysis: ApprovalRecord['analysis']
  rule_id: string
  settings: ApprovalSettings
  reason: string
  preview: unknown
  status: ApprovalStatus
  grant_id: string | null
  created_at: string
  expires_at: string
  decided_at: string | null
  decided_by: string | null
  decision_reason: string | null
  claimed_by: string | null
  claimed_at: string | null
  justification: string | null
}

interface DecisionRow {
  approval_id: string
  approver_issuer: string
  approver_subject: string
  decision: 'approve' | 'deny'
  reason: string | null
  grant_minutes: number | null
  decided_at: string
}

const DECISIONS = `select approval_id::text as approval_id, approver_issuer, approver_subject, decision, reason, grant_minutes,
  ${iso('decided_at')} as decided_at from approval_decisions where approval_id = any($1::uuid[]) order by decided_at, approver_subject`

function toDecision (d: DecisionRow): ApprovalDecisionRecord {
  return {
    approver: d.approver_subject,
    approverIssuer: d.approver_issuer,
    decision: d.decision,
    ...(d.reason !== null && { reason: d.reason }),
    ...(d.grant_minutes !== null && { grantMinutes: Number(d.grant_minutes) }),
    at: d.decided_at
  }
}

function toRecord (r: Row, decisions: ApprovalDecisionRecord[]): ApprovalRecord {
  const opt = <K extends string, V>(key: K, v: V | null): Partial<Record<K, V>> => (v === null ? {} : { [key]: v } as Record<K, V>)
  return {
    id: r.id,
    requester: { issuer: r.requester_issuer, subject: r.requester_subject, type: r.requester_type, ...opt('clientId', r.requester_client_id), delegation: r.delegation ?? [] },
    connection: r.connection,
    connectionKind: r.connection_kind,
    frontEnd: r.front_end,
    sql: r.sql_text,
    fingerprint: r.fingerprint,
    statementHash: r.statement_hash,
    ...opt('params', r.params),
    analysis: r.analysis,
    ruleId: r.rule_id,
    settings: r.settings,
    reason: r.reason,
    ...opt('preview', r.preview),
    status: r.status,
    ...opt('grantId', r.grant_id),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    ...opt('decidedAt', r.decided_at),
    ...opt('decidedBy', r.decided_by),
    ...opt('decisionReason', r.decision_reason),
    ...opt('claimedBy', r.claimed_by),
    ...opt('claimedAt', r.claimed_at),
    ...opt('justification', r.justification),
    decisions
  }
}

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v))

/** The insert of a new approval; `status`, `grant_id` and claim columns are parameters 20–22, the justification 24. */
const INSERT_VALUES = `insert into approvals as a (id, requester_issuer, requester_subject, requester_type, requester_client_id, delegation,
    requester_key, connection, connection_kind, front_end, sql_text, fingerprint, statement_hash, params, analysis, rule_id, settings,
    reason, preview, status, grant_id, claimed_by, claimed_at, expires_at, justification)
  values ($1::uuid, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15::text::jsonb, $16,
    $17::text::jsonb, $18, $19::text::jsonb, $20, $21::uuid, $22, case when $22::text is null then null else now() end,
    now() + make_interval(secs => $23::float8), $24)`

export const INSERT = `${INSERT_VALUES} returning ${COLUMNS}`

// The loser of a race for the one pending slot gets no row, and reads the winner's approval.
const INSERT_PENDING = `${INSERT_VALUES} on conflict (requester_key, connection, statement_hash) where status = 'pending' do nothing
  returning ${COLUMNS}`

export function insertParams (a: NewApproval, status: ApprovalStatus, grantId: string | null, claimedBy: string | null): unknown[] {
  const r = a.requester
  return [a.id, r.issuer, r.subject, r.type, r.clientId ?? null, JSON.stringify(r.delegation), requesterKey(r), a.connection,
    a.connectionKind, a.frontEnd, a.sql, a.fingerprint, a.statementHash, json(a.params), JSON.stringify(a.analysis), a.ruleId,
    JSON.stringify(a.settings), a.reason, json(a.preview), status, grantId, claimedBy, a.expiresInSeconds, a.justification ?? null]
}

const CURSOR_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\|([0-9a-f-]{36})$/

function decodeCursor (cursor: string): [string, string] {
  const m = CURSOR_RE.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (m === null) throw new ERR_BAD_REQUEST('cursor is not one this API issued')
  return [m[1] as string, m[2] as string]
}

export class StoreApprovals implements ApprovalStore {
  readonly #store: Store

  constructor (store: Store) {
    this.#store = store
  }

  async create (approval: NewApproval): Promise<ApprovalRecord> {
    const key = requesterKey(approval.requester)
    for (let attempt = 0; attempt < 3; attempt++) {
      // A pending row past its expiry keeps the one pending slot until it is swept: sweep it here.
      await this.#store.query(`update approvals set status = 'expired' where requester_key = $1 and connection = $2
        and statement_hash = $3 and status = 'pending' and expires_at <= now()`, [key, approval.connection, approval.statementHash])
      const [row] = await this.#store.query<Row>(INSERT_PENDING, insertParams(approval, 'pending', null, null))
      if (row !== undefined) return toRecord(row, [])
      const open = await this.findOpen(key, approval.connection, approval.statementHash)
      if (open?.status === 'pending') return open
    }
    throw new ERR_STORE_UNAVAILABLE('a pending approval could be neither created nor read; nothing was run')
  }

  async #withDecisions (rows: Row[], db: StoreTx = this.#store): Promise<ApprovalRecord[]> {
    if (rows.length === 0) return []
    const decisions = await db.query<DecisionRow>(DECISIONS, [rows.map((r) => r.id)])
    return rows.map((r) => toRecord(r, decisions.filter((d) => d.approval_id === r.id).map(toDecision)))
  }

  async get (id: string, db: StoreTx = this.#store): Promise<ApprovalRecord | undefined> {
    if (!isUuid(id)) return undefined
    const rows = await db.query<Row>(`select ${COLUMNS} from approvals a where a.id = $1::uuid`, [id])
    return (await this.#withDecisions(rows, db))[0]
  }

  async list (filter: ApprovalListFilter, cursor?: string, limit = 50): Promise<Page<ApprovalRecord>> {
    const where: string[] = []
    const params: unknown[] = []
    const add = (clause: (n: string) => string, value: unknown): void => { params.push(value); where.push(clause(`$${params.length}`)) }
    // The live statuses are split by the expiry, so the status index still narrows the scan.
    if (filter.status === 'pending' || filter.status === 'approved') add((n) => `a.status = ${n} and a.expires_at > now()`, filter.status)
    else if (filter.status === 'expired') where.push(`(a.status = 'expired' or (a.status in ('pending', 'approved') and a.expires_at <= now()))`)
    else if (filter.status !== undefined) add((n) => `a.status = ${n}`, filter.status)
    if (filter.connection !== undefined) add((n) => `a.connection = ${n}`, filter.connection)
    if (filter.requester !== undefined) {
      add((n) => `(a.requester_subject = ${n} or a.delegation @> jsonb_build_array(jsonb_build_object('subject', ${n}::text)))`, filter.requester)
    }
    if (cursor !== undefined) {
      const [at, id] = decodeCursor(cursor)
      params.push(at, id)
      where.push(`(a.created_at, a.id) < ($${params.length - 1}::text::timestamptz, $${params.length}::uuid)`)
    }
    params.push(limit + 1)
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approvals a ${where.length > 0 ? `where ${where.join(' and ')}` : ''}
      order by a.created_at desc, a.id desc limit $${params.length}`, params)
    const more = rows.length > limit
    const items = await this.#withDecisions(rows.slice(0, limit))
    const last = items[items.length - 1]
    return { items, nextCursor: more && last !== undefined ? Buffer.from(`${last.createdAt}|${last.id}`).toString('base64url') : null }
  }

  async findOpen (key: string, connection: string, statementHash: string): Promise<ApprovalRecord | undefined> {
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approvals a
      where a.requester_key = $1 and a.connection = $2 and a.statement_hash = $3 and a.status in ('pending', 'approved')
        and a.expires_at > now()
      order by a.created_at desc limit 1`, [key, connection, statementHash])
    return (await this.#withDecisions(rows))[0]
  }

  async decide (id: string, input: DecisionInput, settings: Pick<ApprovalSettings, 'minApprovals' | 'expiresAfterMinutes'>,
    onApproved?: (tx: StoreTx, approval: ApprovalRecord, decisions: ApprovalDecisionRecord[]) => Promise<void>): Promise<DecideResult> {
    return await this.#store.transaction(async (tx) => {
      // The row lock serialises approvers of one approval: the count below sees every decision before it.
      const [row] = await tx.query<Row>(`select ${COLUMNS} from approvals a where a.id = $1::uuid for update`, [id])
      if (row === undefined) throw new ERR_BAD_REQUEST(`approval ${id} vanished while it was being decided`)
      const current = (await this.#withDecisions([row], tx))[0] as ApprovalRecord
      if (current.status !== 'pending') return { result: 'closed', approval: current }
      const inserted = await tx.query(`insert into approval_decisions (approval_id, approver_issuer, approver_subject, decision, reason, grant_minutes)
        values ($1::uuid, $2, $3, $4, $5, $6) on conflict do nothing returning 1`,
      [id, input.approverIssuer, input.approverSubject, input.decision, input.reason ?? null, input.grantMinutes ?? null])
      if (inserted.length === 0 && input.decision === 'approve') return { result: 'duplicate', approval: current }
      if (input.decision === 'deny') {
        // One denial closes it, even from an approver who approved before (they changed their mind).
        if (inserted.length === 0) {
          await tx.query(`update approval_decisions set decision = 'deny', reason = $4, grant_minutes = null, decided_at = now()
            where approval_id = $1::uuid and approver_issuer = $2 and approver_subject = $3`, [id, input.approverIssuer, input.approverSubject, input.reason ?? null])
        }
        await tx.query(`update approvals set status = 'denied', decided_at = now(), decided_by = $2, decision_reason = $3 where id = $1::uuid`,
          [id, input.approverSubject, input.reason ?? null])
        return { result: 'denied', approval: await this.get(id, tx) as ApprovalRecord }
      }
      const [count] = await tx.query<{ n: string }>(`select count(*) as n from approval_decisions where approval_id = $1::uuid and decision = 'approve'`, [id])
      if (Number(count?.n ?? 0) < settings.minApprovals) return { result: 'recorded', approval: await this.get(id, tx) as ApprovalRecord }
      // Approved: the client has a fresh window to come back for it (a poll, a resend).
      await tx.query(`update approvals set status = 'approved', decided_at = now(), decided_by = $2, decision_reason = $3,
        expires_at = now() + make_interval(mins => $4::int) where id = $1::uuid`,
      [id, current.decisions.filter((d) => d.decision === 'approve').map((d) => d.approver).concat(input.approverSubject).join(', '),
        input.reason ?? null, settings.expiresAfterMinutes])
      const approved = await this.get(id, tx) as ApprovalRecord
      await onApproved?.(tx, approved, approved.decisions)
      return { result: 'approved', approval: await this.get(id, tx) as ApprovalRecord }
    })
  }

  async withdraw (id: string, key: string): Promise<ApprovalRecord | undefined> {
    if (!isUuid(id)) return undefined
    const rows = await this.#store.query<Row>(`update approvals a set status = 'withdrawn', decided_at = now(), decided_by = a.requester_subject
      where a.id = $1::uuid and a.requester_key = $2 and a.status in ('pending', 'approved') and a.expires_at > now() returning ${COLUMNS}`, [id, key])
    return (await this.#withDecisions(rows))[0]
  }

  async claim (id: string, replica: string, options: { lease?: boolean } = {}): Promise<ApprovalRecord | undefined> {
    if (!isUuid(id)) return undefined
    // One UPDATE: a racing replica's statement waits on the row lock, re-checks `status`, and
    // finds it executed — so exactly one caller gets the row back.
    const rows = await this.#store.query<Row>(`update approvals a set status = 'executed', claimed_by = $2, claimed_at = now(), claim_leased = $3
      where a.id = $1::uuid and a.status = 'approved' and a.expires_at > now() returning ${COLUMNS}`, [id, replica, options.lease === true])
    return (await this.#withDecisions(rows))[0]
  }

  async staleClaim (id: string, leaseSeconds: number): Promise<ApprovalRecord | undefined> {
    if (!isUuid(id)) return undefined
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approvals a where a.id = $1::uuid and a.status = 'executed'
      and a.claim_leased and a.claimed_at <= now() - make_interval(secs => $2::float8)`, [id, leaseSeconds])
    return (await this.#withDecisions(rows))[0]
  }

  async reclaim (id: string, replica: string, leaseSeconds: number): Promise<ApprovalRecord | undefined> {
    if (!isUuid(id)) return undefined
    // As `claim`: one UPDATE, and a racing caller re-checks claimed_at after the row lock.
    const rows = await this.#store.query<Row>(`update approvals a set claimed_by = $2, claimed_at = now()
      where a.id = $1::uuid and a.status = 'executed' and a.claim_leased and a.claimed_at <= now() - make_interval(secs => $3::float8)
      returning ${COLUMNS}`,
    [id, replica, leaseSeconds])
    return (await this.#withDecisions(rows))[0]
  }

  async expire (limit: number): Promise<ApprovalRecord[]> {
    const rows = await this.#store.query<Row>(`update approvals a set status = 'expired' where a.id in (
        select id from approvals where status in ('pending', 'approved') and expires_at <= now() order by expires_at limit $1)
      and a.status in ('pending', 'approved') returning ${COLUMNS}`, [limit])
    return await this.#withDecisions(rows)
  }

  async pendingCount (): Promise<number> {
    const [row] = await this.#store.query<{ n: string }>("select count(*) as n from approvals where status = 'pending' and expires_at > now()")
    return Number(row?.n ?? 0)
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Ids come from URLs and CLI arguments: anything else is simply not found. */
export function isUuid (id: string): boolean {
  return UUID_RE.test(id)
}
