-- Just-in-time approvals: a statement a policy rule holds (require_approval) waits here for a
-- human's decision, and a scoped grant lets the same statement shape through again for a while.
-- Kept in the store, not in a gateway's memory, so an approval given through one replica
-- releases the statement a client polls through another, and exactly one replica runs it.

create table approvals (
  id uuid primary key,
  -- Who asked: the principal (issuer + subject), its client and the RFC 8693 delegation chain
  -- (outermost actor first), so an approver sees which human an agent acts for.
  requester_issuer text not null,
  requester_subject text not null,
  requester_type text not null,
  requester_client_id text,
  delegation jsonb not null default '[]',
  -- sha256 (hex) of issuer, subject and the chain: one key for "this agent acting for this human".
  requester_key text not null,
  connection text not null,
  connection_kind text not null,
  front_end text not null,
  sql_text text not null,
  -- Literals folded (src/recording/fingerprint.ts): what a grant is scoped to.
  fingerprint text not null,
  -- sha256 (hex) of the exact text and binds: what an approval is for, and all it releases.
  statement_hash text not null,
  -- Bind values as the audit trail keeps them (redacted by recording.redaction).
  params jsonb,
  -- Kinds, tables, masked columns; the rule and its approval settings as they were when held.
  analysis jsonb not null,
  rule_id text not null,
  settings jsonb not null,
  reason text not null,
  -- What the warehouse said without running it (dry run, EXPLAIN): opaque to the store.
  preview jsonb,
  status text not null check (status in ('pending', 'approved', 'denied', 'expired', 'withdrawn', 'executed')),
  -- Set when the approval was released by a scoped grant rather than by approvers.
  grant_id uuid,
  created_at timestamptz not null default now(),
  -- Pending: until a decision; approved: until the statement is claimed. Every read treats a
  -- row past it as expired, so nothing waits on a sweep.
  expires_at timestamptz not null,
  decided_at timestamptz,
  -- Whoever closed it: the last approver, the one who denied, the requester who withdrew.
  decided_by text,
  decision_reason text,
  -- The gateway process that claimed the approved statement to run it (exactly once).
  claimed_by text,
  claimed_at timestamptz
);

-- The approver's queue (status, newest first) and the lookup of a re-sent statement.
create index approvals_status_idx on approvals (status, created_at desc, id desc);
create index approvals_requester_idx on approvals (requester_key, connection, statement_hash, status);
-- One pending approval per statement and requester: two replicas holding the same statement at
-- once (a client retry) share one approval instead of asking approvers twice.
create unique index approvals_one_pending_idx on approvals (requester_key, connection, statement_hash) where status = 'pending';
create index approvals_expires_idx on approvals (expires_at) where status in ('pending', 'approved');

-- One row per approver per approval: minApprovals counts distinct approvers by this key.
create table approval_decisions (
  approval_id uuid not null references approvals (id) on delete cascade,
  approver_issuer text not null,
  approver_subject text not null,
  decision text not null check (decision in ('approve', 'deny')),
  reason text,
  -- The grant this approver asked for, if any (minutes); a grant needs every approver to ask.
  grant_minutes integer,
  decided_at timestamptz not null default now(),
  primary key (approval_id, approver_issuer, approver_subject)
);

create table approval_grants (
  id uuid primary key,
  fingerprint text not null,
  requester_key text not null,
  requester_issuer text not null,
  requester_subject text not null,
  delegation jsonb not null default '[]',
  connection text not null,
  rule_id text not null,
  -- The approval it was given with, and by whom (comma-separated approvers).
  approval_id uuid not null references approvals (id),
  granted_by text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_by text
);

-- A match is one index probe: same statement shape, same principal and chain, same connection.
create index approval_grants_match_idx on approval_grants (fingerprint, requester_key, connection, expires_at);
create index approval_grants_created_idx on approval_grants (created_at desc, id desc);

-- Every statement a grant let through, with the approval record that stands for it.
create table approval_grant_uses (
  grant_id uuid not null references approval_grants (id),
  approval_id uuid not null references approvals (id),
  used_at timestamptz not null default now(),
  primary key (grant_id, approval_id)
);
