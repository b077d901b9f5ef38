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
