-- Idempotency keys of the Snowflake front ends (the SQL API's and the connector's requestId).
-- A key belongs to one principal on one connection and is bound to the first request that used
-- it: the statement handle it got and digests of what it asked for. A retry (same digests) is
-- answered with that handle; the same key with another statement is refused. Kept in the store,
-- not in a gateway's memory, so a conflict is caught whichever replica the reuse reaches.

create table idempotency_keys (
  -- sha256 (hex) of the principal's issuer and subject: never another principal's key.
  owner text not null,
  connection text not null,
  request_id text not null,
  -- The handle (statement handle / query id) the first request was given.
  handle_id uuid not null,
  front_end text not null,
  -- sha256 (hex) of the statement text, and of everything else that shapes the result
  -- (bindings, parameters, context, describe-only), kept apart so a refusal can say which differs.
  statement_hash text not null,
  request_hash text not null,
  -- The gateway process that holds the handle, so a retry elsewhere is told why it cannot be served.
  replica text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (owner, connection, request_id)
);

-- Expired keys are purged in small batches by this index, oldest first; lookups by the key
-- itself ignore expired rows, so nothing depends on the purge having run.
create index idempotency_keys_expires_idx on idempotency_keys (expires_at);
