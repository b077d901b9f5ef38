-- Statement handles of the Snowflake front ends (SQL API statement handles, connector query
-- ids), so any replica can answer a poll, a partition, a chunk or a cancel. A row holds what a
-- statement is and how it ended, never its rows: the result is described by its manifest (the
-- upstream query id and the page list) and every later page is fetched from the upstream and
-- masked when a client asks for it. Only the masked inline first page, bounded by what the
-- upstream inlines, is kept with the handle.

create table statement_handles (
  -- Sluice's own id, handed to the client.
  id uuid primary key,
  -- sha256 (hex) of the principal's issuer and subject: a foreign id looks like an unknown one.
  owner text not null,
  connection text not null,
  sql text not null,
  state text not null check (state in ('running', 'succeeded', 'failed', 'aborted')),
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  expires_at timestamptz not null,
  -- The gateway process running it, and when that process last said it still does.
  replica text not null,
  heartbeat_at timestamptz not null default now(),
  -- Set by a cancel on any replica (client) or the request timeout; the runner aborts on it.
  cancel_reason text check (cancel_reason in ('client', 'timeout')),
  client_request_id text,
  session_key text,
  -- How it failed, as released to the client: catalogue code, Snowflake code, SQL state, text.
  error jsonb,
  -- The admitted statement (no bind values) and its decision: later pages are masked under it.
  admitted jsonb,
  -- Rowtype, schema, final context, parameters, upstream query id, page list: never rows.
  manifest jsonb,
  -- The masked inline first page.
  first_page jsonb,
  -- What the run recorded (masked columns, row limit, upstream id), for the answer that serves it.
  trip jsonb
);

-- Expired rows are purged in small batches through this index; every lookup ignores them anyway.
create index statement_handles_expires_idx on statement_handles (expires_at);
-- abort-request by the client's requestId, and a session's running statements (Snowpark's close).
create index statement_handles_request_idx on statement_handles (owner, client_request_id) where client_request_id is not null;
create index statement_handles_session_idx on statement_handles (owner, session_key) where state = 'running';
