-- Recording before execution: a statement's "admitted" event is committed before the warehouse
-- is called, and its completion before the result is released. Both carry the statement's id
-- so an admitted statement that never completed (the gateway died, or the store failed after
-- the warehouse ran it) is found by a query, not by guessing from request ids. Additive: events
-- written before this have NULLs and hash exactly as they did.

alter table session_events
  -- Sluice's own id of the admitted statement, shared by its admitted event and its completion(s).
  add column statement_id text,
  -- 'admitted' (before the warehouse is called), 'completed' (before the result is released),
  -- NULL for every other round trip (refusals, polls still running, catalogue reads).
  add column phase text check (phase in ('admitted', 'completed'));

create index session_events_statement_idx on session_events (statement_id, phase) where statement_id is not null;
