// MCP sessions in the store (migration 0012): the `Mcp-Session-Id` Sluice issues at initialize,
// bound to its principal, so any replica serves the session's next request and a principal
// presenting another's session id is refused as if it did not exist. Every request reads (and
// renews) its session in the store, without a local cache: a session ended through one replica
// must be gone on all of them at once.
import { createHash, randomUUID } from 'node:crypto'
import type { Principal } from '../../identity/principal.js'
import type { Store } from '../../store/store.js'

export interface McpSession {
  id: string
  clientName?: string
  clientVersion?: string
  protocolVersion?: string
  capabilities: Record<string, unknown>
}

export interface McpSessionStore {
  open: (principal: Principal, facts: Omit<McpSession, 'id'>) => Promise<McpSession>
  /** The principal's own live session, or undefined (unknown, expired, deleted, or someone else's). */
  find: (principal: Principal, id: string) => Promise<McpSession | undefined>
  remove: (principal: Principal, id: string) => Promise<boolean>
}

export function ownerOf (p: Principal): string {
  return createHash('sha256').update(`${p.issuer}\n${p.subject}`, 'utf8').digest('hex')
}

const PRUNE_EVERY_MS = 60_000

export function storeMcpSessions (store: Store, ttlSeconds: number): McpSessionStore {
  let pruned = 0
  return {
    async open (principal, facts) {
      // Expired sessions are already refused; their rows go once a minute, as new ones open.
      if (Date.now() - pruned > PRUNE_EVERY_MS) {
        pruned = Date.now()
        await store.query('delete from mcp_sessions where expires_at < now()').catch(() => undefined)
      }
      const session: McpSession = { id: randomUUID(), ...facts }
      const owner = ownerOf(principal)
      await store.query(
        `insert into mcp_sessions (id, owner, client_name, client_version, protocol_version, capabilities, expires_at)
         values ($1, $2, $3, $4, $5, $6::text::jsonb, now() + make_interval(secs => $7::int))`,
        [session.id, owner, facts.clientName ?? null, facts.clientVersion ?? null, facts.protocolVersion ?? null, JSON.stringify(facts.capabilities), ttlSeconds])
      return session
    },
    async find (principal, id) {
      const owner = ownerOf(principal)
      // Used: its expiry moves on, in the same statement that reads it.
      const rows = await store.query<{ client_name: string | null, client_version: string | null, protocol_version: string | null, capabilities: Record<string, unknown> | string }>(
        `update mcp_sessions set expires_at = now() + make_interval(secs => $3::int)
         where id = $1 and owner = $2 and expires_at > now()
         returning client_name, client_version, protocol_version, capabilities`, [id, owner, ttlSeconds])
      const row = rows[0]
      if (row === undefined) return undefined
      const session: McpSession = {
        id,
        ...(row.client_name !== null && { clientName: row.client_name }),
        ...(row.client_version !== null && { clientVersion: row.client_version }),
        ...(row.protocol_version !== null && { protocolVersion: row.protocol_version }),
        capabilities: typeof row.capabilities === 'string' ? JSON.parse(row.capabilities) as Record<string, unknown> : row.capabilities
      }
      return session
    },
    async remove (principal, id) {
      const rows = await store.query<{ id: string }>('delete from mcp_sessions where id = $1 and owner = $2 returning id', [id, ownerOf(principal)])
      return rows.length === 1
    }
  }
}
