-- A claim taken by a poll of a held statement (its Snowflake handle, its BigQuery job) is a
-- lease: the claiming replica starts that statement next, which moves the handle or job out of
-- `held`. Still held once claimed_at is older than the lease, the claimer stopped in between
-- (killed, or a store write failed), and the next poll ends the statement saying so (Snowflake)
-- or takes the claim over (BigQuery, whose fixed job id keeps it to one run). A resend or a
-- grant claims and runs in one request: no held statement waits on it, so no lease.
alter table approvals add column claim_leased boolean not null default false;
