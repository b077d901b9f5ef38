-- BigQuery job bindings and page cursors of the BigQuery front end (src/state/bigquery-jobs.ts).
-- Every job id and query id Sluice hands out is bound to the principal that created it, with the
-- statement and decision it ran under, so that any replica can serve its later requests
-- (jobs.get, getQueryResults pages, tabledata.list on its anonymous result table) to that
-- principal only, masked under the same decision. BigQuery keeps anonymous results about a day;
-- rows expire with them. Lookups ignore expired rows, so nothing depends on a purge having run.

create table bigquery_jobs (
  connection text not null,
  -- 'job', or 'query' for the queryId of a JOB_CREATION_OPTIONAL query that created no job.
  kind text not null check (kind in ('job', 'query')),
  id text not null,
  -- Changes whenever the id is bound again (its owner reran it): a replica's cached
  -- admission of an earlier binding is never used for the new one.
  binding_id uuid not null,
  -- sha256 (hex) of the principal's issuer and subject: a job id is bound once, and another
  -- principal reusing it never takes it over.
  owner text not null,
  project text not null,
  location text,
  -- The anonymous result table, learned from the job resource; tabledata.list on it is served
  -- to the owner only, under the job's statement.
  destination_project text,
  destination_dataset text,
  destination_table text,
  -- The admitted statement (no bind values) and its decision: src/pipeline/admitted.ts.
  admitted jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (connection, kind, id)
);

create index bigquery_jobs_expires_idx on bigquery_jobs (expires_at);
-- Result table → job, expiry included, so the lookup never reads an expired binding's row.
create index bigquery_jobs_destination_idx on bigquery_jobs (connection, destination_project, destination_dataset, destination_table, expires_at)
  where destination_table is not null;

-- Where the page behind a page token Sluice handed out starts (rows counted from the first row
-- of the result), per caller and result, so a policy's maxRows is kept on whichever replica the
-- next page reaches. The token is the upstream's own, passed through; the result is a job id or
-- a named table.
create table bigquery_page_cursors (
  owner text not null,
  connection text not null,
  result_id text not null,
  page_token text not null,
  start_row bigint not null,
  expires_at timestamptz not null,
  primary key (owner, connection, result_id, page_token)
);

create index bigquery_page_cursors_expires_idx on bigquery_page_cursors (expires_at);
