// Scoped grants as records in the store: "this statement shape (fingerprint), for this
// principal through this chain of agents, on this connection, until then". A match is one
// indexed probe with expiry and revocation in the WHERE clause; every statement a grant lets
// through is an approval row of its own (status executed, grant_id set) plus a use row, so the
// trail names the grant. One SQL implementation for both engines.
import type { Store, StoreTx } from '../store/store.js'
import { requesterKey } from './people.js'
import { INSERT, insertParams, iso, isUuid, StoreApprovals } from './store.js'
import type { ApprovalRecord, GrantRecord, GrantScope, NewApproval, Page } from './types.js'
import { ERR_BAD_REQUEST } from '../errors.js'

export interface NewGrant {
  id: string
  approval: ApprovalRecord
  grantedBy: string
  minutes: number
}

export interface GrantListFilter {
  /** Only grants in force (unexpired, unrevoked); default all. */
  active?: boolean
  connection?: string
  requester?: string
}

export interface GrantStore {
  /** Inside the transaction that approves `approval` (so an approval and its grant land together). */
  create: (tx: StoreTx, grant: NewGrant) => Promise<void>
  get: (id: string) => Promise<GrantRecord | undefined>
  list: (filter: GrantListFilter, cursor?: string, limit?: number) => Promise<Page<GrantRecord>>
  /** The newest grant in force for this scope. */
  match: (scope: GrantScope) => Promise<GrantRecord | undefined>
  /**
   * Records a use: the statement's approval row (already executed by `replica`) and the use,
   * in one transaction that re-checks the grant is still in force (a revoke that raced wins).
   */
  use: (grantId: string, approval: NewApproval, replica: string) => Promise<ApprovalRecord | undefined>
  revoke: (id: string, by: string) => Promise<GrantRecord | undefined>
}

const STATE = `case when g.revoked_at is not null then 'revoked' when g.expires_at <= now() then 'expired' else 'active' end`

const COLUMNS = `g.id::text as id, g.fingerprint, g.requester_issuer, g.requester_subject, g.delegation, g.connection, g.rule_id,
  g.approval_id::text as approval_id, g.granted_by, ${iso('g.created_at')} as created_at, ${iso('g.expires_at')} as expires_at,
  ${iso('g.revoked_at')} as revoked_at, g.revoked_by, ${STATE} as state,
  (select count(*) from approval_grant_uses u where u.grant_id = g.id) as uses`

interface Row {
  id: string
  fingerprint: string
  requester_issuer: string
  requester_subject: string
  delegation: GrantRecord['requester']['delegation']
  connection: string
  rule_id: string
  approval_id: string
  granted_by: string
  created_at: string
  expires_at: string
  revoked_at: string | null
  revoked_by: string | null
  state: GrantRecord['state']
  uses: string
}

function toGrant (r: Row): GrantRecord {
  return {
    id: r.id,
    fingerprint: r.fingerprint,
    requester: { issuer: r.requester_issuer, subject: r.requester_subject, delegation: r.delegation ?? [] },
    connection: r.connection,
    ruleId: r.rule_id,
    approvalId: r.approval_id,
    grantedBy: r.granted_by,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    ...(r.revoked_at !== null && { revokedAt: r.revoked_at }),
    ...(r.revoked_by !== null && { revokedBy: r.revoked_by }),
    state: r.state,
    uses: Number(r.uses)
  }
}

const LIVE = 'g.revoked_at is null and g.expires_at > now()'

export class StoreGrants implements GrantStore {
  readonly #store: Store
  readonly #approvals: StoreApprovals

  constructor (store: Store) {
    this.#store = store
    this.#approvals = new StoreApprovals(store)
  }

  async create (tx: StoreTx, grant: NewGrant): Promise<void> {
    const a = grant.approval
    await tx.query(`insert into approval_grants (id, fingerprint, requester_key, requester_issuer, requester_subject, delegation,
        connection, rule_id, approval_id, granted_by, expires_at)
      values ($1::uuid, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9::uuid, $10, now() + make_interval(mins => $11::int))`,
    [grant.id, a.fingerprint, requesterKey(a.requester), a.requester.issuer, a.requester.subject, JSON.stringify(a.requester.delegation),
      a.connection, a.ruleId, a.id, grant.grantedBy, grant.minutes])
  }

  async get (id: string): Promise<GrantRecord | undefined> {
    if (!isUuid(id)) return undefined
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approval_grants g where g.id = $1::uuid`, [id])
    return rows[0] === undefined ? undefined : toGrant(rows[0])
  }

  async list (filter: GrantListFilter, cursor?: string, limit = 50): Promise<Page<GrantRecord>> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.active === true) where.push(LIVE)
    if (filter.connection !== undefined) { params.push(filter.connection); where.push(`g.connection = $${params.length}`) }
    if (filter.requester !== undefined) { params.push(filter.requester); where.push(`g.requester_subject = $${params.length}`) }
    if (cursor !== undefined) {
      const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\|([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
      if (m === null) throw new ERR_BAD_REQUEST('cursor is not one this API issued')
      params.push(m[1], m[2])
      where.push(`(g.created_at, g.id) < ($${params.length - 1}::text::timestamptz, $${params.length}::uuid)`)
    }
    params.push(limit + 1)
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approval_grants g ${where.length > 0 ? `where ${where.join(' and ')}` : ''}
      order by g.created_at desc, g.id desc limit $${params.length}`, params)
    const items = rows.slice(0, limit).map(toGrant)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > limit && last !== undefined ? Buffer.from(`${last.createdAt}|${last.id}`).toString('base64url') : null }
  }

  async match (scope: GrantScope): Promise<GrantRecord | undefined> {
    const rows = await this.#store.query<Row>(`select ${COLUMNS} from approval_grants g
      where g.fingerprint = $1 and g.requester_key = $2 and g.connection = $3 and ${LIVE}
      order by g.expires_at desc limit 1`, [scope.fingerprint, scope.requesterKey, scope.connection])
    return rows[0] === undefined ? undefined : toGrant(rows[0])
  }

  async use (grantId: string, approval: NewApproval, replica: string): Promise<ApprovalRecord | undefined> {
    const used = await this.#store.transaction(async (tx) => {
      // Locks the grant: a revoke waits for this use to be recorded, or this use sees the revoke.
      const live = await tx.query(`select 1 from approval_grants g where g.id = $1::uuid and ${LIVE} for update`, [grantId])
      if (live.length === 0) return false
      await tx.query(INSERT, insertParams(approval, 'executed', grantId, replica))
      await tx.query('insert into approval_grant_uses (grant_id, approval_id) values ($1::uuid, $2::uuid)', [grantId, approval.id])
      return true
    })
    return used ? await this.#approvals.get(approval.id) : undefined
  }

  async revoke (id: string, by: string): Promise<GrantRecord | undefined> {
    if (!isUuid(id)) return undefined
    const rows = await this.#store.query<{ id: string }>(`update approval_grants g set revoked_at = now(), revoked_by = $2
      where g.id = $1::uuid and g.revoked_at is null returning g.id::text as id`, [id, by])
    if (rows.length === 0) return undefined
    return await this.get(id)
  }
}
