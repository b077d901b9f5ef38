-- A statement a policy rule holds for approval keeps its Snowflake handle while a human decides:
-- the client polls it (SQL API 202, connector 333333) through any replica, and the replica whose
-- poll finds it approved runs exactly that statement under the same handle. The row names its
-- approval and carries, sealed, what running it needs that the store must not show: the binds and
-- the request's parameters and context (AES-256-GCM under a key derived from secrets.key, the
-- handle's id and owner as additional data).

alter table statement_handles drop constraint statement_handles_state_check;
alter table statement_handles add constraint statement_handles_state_check
  check (state in ('held', 'running', 'succeeded', 'failed', 'aborted'));
alter table statement_handles add column approval_id uuid;
alter table statement_handles add column held_request bytea;

-- Two handles of one approval (a client that sent the statement twice): a poll of the one not
-- released finds the one that was, and serves its result.
create index statement_handles_approval_idx on statement_handles (approval_id) where approval_id is not null;
