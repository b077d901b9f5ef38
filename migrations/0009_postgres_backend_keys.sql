-- Backend keys the PostgreSQL front end issued (BackendKeyData), so a CancelRequest reaching any
-- replica cancels the right statement: a cancel arrives on a new connection, which a load
-- balancer may send to another gateway than the session's. The row maps Sluice's key to the
-- upstream backend's own key, with which any replica can cancel on the upstream directly. It
-- lives as long as the client session (deleted at its end; stale rows of a crashed replica only
-- ever cancel a backend that no longer exists or runs another session's statement never, since
-- the upstream checks its own secret).

create table postgres_backend_keys (
  pid integer primary key,
  secret integer not null,
  connection text not null,
  upstream_pid integer not null,
  upstream_secret integer not null,
  created_at timestamptz not null default now()
);
