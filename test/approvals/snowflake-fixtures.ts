// What the held-Snowflake suites share: a policy that holds agents' reads of CUSTOMERS (and
// inserts into ORDERS) for approval and redacts EMAIL, an approver's view of the admin API, and
// the ways a test finds and ends a pending approval.
import { request } from 'undici'
import type { Store } from '../../src/store/store.js'

export const HOLD_POLICY = `version: 1
rules:
  - id: hold-customer-reads
    effect: require_approval
    match: { roles: [agent], kinds: [select], tables: ['*.*.customers'] }
    approval: { approvers: { roles: [approver] } }
  - id: hold-order-writes
    effect: require_approval
    match: { roles: [agent], kinds: [insert], tables: ['*.*.orders'] }
    approval: { approvers: { roles: [approver] } }
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: mask-email
    columns: ['*.*.customers.email']
    function: redact
`

export interface Admin {
  get: (path: string) => Promise<{ status: number, body: Record<string, any> }>
  post: (path: string, body: unknown) => Promise<{ status: number, body: Record<string, any> }>
}

/** The admin API (/admin/v1) with an approver's token. */
export function adminOf (base: string, token: string): Admin {
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, body: Record<string, any> }> => {
    const res = await request(`${base}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) })
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, any> }
  }
  return { get: async (path) => await call('GET', path), post: async (path, body) => await call('POST', path, body) }
}

/**
 * The pending approval of exactly this SQL, once the client's request has created it: the
 * client is blocked in its own call meanwhile, so the test asks the approver's queue.
 */
export async function pendingApproval (admin: Admin, sql: string): Promise<Record<string, any>> {
  for (;;) {
    const page = await admin.get('/approvals?status=pending')
    const found = (page.body.items as Array<Record<string, any>> | undefined)?.find((a) => a.sql === sql)
    if (found !== undefined) return found
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** An approval whose time ran out, as nobody decided it: every read treats it as expired. */
export async function expireApproval (store: Store, id: string): Promise<void> {
  await store.query("update approvals set expires_at = now() - interval '1 second' where id = $1::uuid", [id])
}
