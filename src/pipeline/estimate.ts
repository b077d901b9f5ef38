// What a warehouse says a statement would cost, asked without running it (BigQuery's dry run,
// Snowflake's EXPLAIN). A front end that can ask puts `estimate` on the statement; the pipeline
// calls it only when something needs the answer (a cost-aware rule, an approval's preview), so
// the common path pays nothing.

export interface WarehouseEstimate {
  /** Bytes the statement would read (BigQuery totalBytesProcessed, Snowflake bytesAssigned). */
  bytes?: number
  /** Snowflake: micro-partitions in the tables read, and those the pruned plan would scan. */
  partitionsTotal?: number
  partitionsAssigned?: number
  /** Which of the warehouse's mechanisms gave it. */
  source: 'bigquery-dry-run' | 'snowflake-explain'
  /** The warehouse's own answer (referenced tables, plan summary), for the approval's preview. */
  detail?: unknown
}

/** Asks the warehouse once; resolves undefined when it cannot say (the caller fails closed). */
export type Estimator = () => Promise<WarehouseEstimate | undefined>
