-- BigQuery jobs held for approval (src/warehouses/bigquery/held.ts). A query a rule holds gets
-- a Sluice job id at once (jobComplete: false, state PENDING) and nothing runs upstream; the job
-- that runs once an approver releases it must be exactly the statement the approval was given
-- for, text and binds, from whichever replica the client's next poll reaches. So the held row
-- keeps the approval id and the job configuration to insert, query parameters included, until
-- the job runs: binding it again for the upstream job clears it.
alter table bigquery_jobs add column held jsonb;
