-- Why the requester says a held statement should run (a rule's `approval.justification`): asked
-- by the MCP query tool (elicitation, or its `justification` argument) before the approval is
-- created; null when none was given (the wire protocols cannot ask).
alter table approvals add column justification text;

-- Messages for a tool call that reach a replica other than the one running it: a client's
-- `notifications/cancelled` (kind 'cancel') and its answer to an elicitation Sluice sent
-- (kind 'reply'). The running replica watches for its own calls' rows; bound to the principal
-- (owner digest) and MCP session; kept an hour.
create table mcp_signals (
  id bigserial primary key,
  owner text not null,
  session_id text not null,
  kind text not null check (kind in ('cancel', 'reply')),
  request_id text not null,
  message jsonb,
  created_at timestamptz not null default now()
);

create index mcp_signals_target on mcp_signals (owner, session_id, kind, request_id);
create index mcp_signals_created on mcp_signals (created_at);
