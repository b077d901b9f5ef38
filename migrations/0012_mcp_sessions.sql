-- MCP sessions (Streamable HTTP `Mcp-Session-Id`), kept in the store so any replica answers any
-- request of a session: the session id is issued at initialize and bound to the principal that
-- initialized it (issuer + subject digest), with the client's name, version and capabilities as
-- it announced them, so a tool call served by another replica records the same clientInfo and
-- knows whether the client can answer an elicitation. Deleted by the client's DELETE, or after
-- `expires_at` (renewed as the session is used).

create table mcp_sessions (
  id text primary key,
  owner text not null,
  client_name text,
  client_version text,
  protocol_version text,
  capabilities jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);

create index mcp_sessions_expires on mcp_sessions (expires_at);

-- The messages Sluice sent on each MCP response stream (SSE), for resumption: a client whose
-- stream broke reconnects with `Last-Event-ID` to any replica and gets what it missed, the tool
-- call's result included, while the call finishes on the replica that started it. Bound to the
-- principal that opened the stream; kept a day.
create table mcp_events (
  id bigserial primary key,
  stream_id text not null,
  owner text not null,
  message jsonb not null,
  created_at timestamptz not null default now()
);

create index mcp_events_stream on mcp_events (stream_id, id);
create index mcp_events_created on mcp_events (created_at);
