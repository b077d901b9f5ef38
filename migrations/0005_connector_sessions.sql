-- Sluice's connector sessions (snowflake-sdk, the Python connector): what a client's login
-- created, kept in the store so any replica answers the client's next request. Sluice's own
-- session and master tokens are kept as digests only; the dedicated upstream session's tokens
-- are credentials, sealed (AES-256-GCM, a key derived from secrets.key) so the row alone opens
-- nothing upstream.

create table connector_sessions (
  -- The Sluice session id the client was told (login's sessionId, SYSTEM$CANCEL_ALL_QUERIES).
  id bigint primary key,
  -- sha256 (base64url) of Sluice's session and master tokens.
  token_hash text not null unique,
  master_hash text not null unique,
  token_expires_at timestamptz not null,
  -- The row's own end: past it neither token works and the purge may take the row.
  expires_at timestamptz not null,
  -- The verified principal (JSON; expiresAt as ISO 8601) the session acts for.
  principal jsonb not null,
  -- The connection, by name: its settings and upstream client live in each replica's config.
  connection text not null,
  application text,
  formats jsonb,
  -- The upstream session: its context and what the warehouse said at login, in clear …
  upstream_context jsonb not null,
  upstream_session_id jsonb,
  upstream_parameters jsonb not null,
  upstream_server_version text,
  -- … and its session / master tokens, sealed (iv ‖ tag ‖ ciphertext, the row id as AAD).
  upstream_sealed bytea not null,
  -- Bumped by every renewal or re-login of the upstream session, so a replica holding older
  -- tokens can tell, and two replicas renewing at once cannot overwrite each other.
  upstream_version integer not null default 0,
  -- While set and in the future, one replica is renewing (or re-logging-in) the upstream
  -- session; the others wait for its tokens instead of renewing too.
  upstream_refresh_until timestamptz,
  created_at timestamptz not null default now()
);

-- Expired sessions are claimed in small batches by this index, oldest first; lookups ignore
-- expired rows, so nothing depends on the purge having run.
create index connector_sessions_expires_idx on connector_sessions (expires_at);
