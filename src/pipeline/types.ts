// The neutral request and result every front end decodes into and encodes from. Policy,
// masking, approvals and recording are written once against these types; wire formats
// (Snowflake rowsets, BigQuery f/v rows, Postgres DataRows) never reach those stages.
import type { ConnectionKind } from '../config/types.js'
import type { Principal } from '../identity/principal.js'
import type { Decision } from '../policy/types.js'
import type { Analysis, QualifyDefaults } from '../sql/types.js'
import type { JustificationAsker } from '../approvals/service.js'
import type { Estimator } from './estimate.js'

export interface ClientInfo {
  sourceIp?: string
  userAgent?: string
  /** The client library / application the front end recognised (e.g. snowflake-sdk). */
  application?: string
}

export interface ConnectionRef {
  name: string
  kind: ConnectionKind
  /** Qualifies bare table names: database/schema (Snowflake, Postgres) or project/dataset (BigQuery). */
  defaults: QualifyDefaults
}

/** One client request carrying SQL, as the pipeline sees it. */
export interface Statement {
  requestId: string
  frontEnd: string
  principal: Principal
  connection: ConnectionRef
  sql: string
  /** Bind parameters, positional or named, as the client sent them. */
  params?: unknown[] | Record<string, unknown>
  client: ClientInfo
  sessionId?: string
  /**
   * The approval this request polls for (a front end's held statement): the hold stage then
   * resolves that approval — still waiting, run now (claimed once), or denied / expired /
   * withdrawn — instead of asking again. It must be the same statement the approval was given for.
   */
  approvalId?: string
  /**
   * With `approvalId`: take over the approval when the replica that claimed it stopped before
   * starting it (approvals/service.ts PollOptions), for a statement that cannot run twice.
   */
  reclaimStaleClaim?: boolean
  /** Asks the warehouse what the statement would cost without running it, where it can (estimate.ts). */
  estimate?: Estimator
  /** Why the requester says a held statement should run, when the client gave it with the statement. */
  justification?: string
  /** How a front end that can ask its client for a justification asks (src/approvals/service.ts). */
  askJustification?: JustificationAsker
}

export interface ColumnMeta {
  name: string
  /** The warehouse's own type name (e.g. NUMBER, STRING, TIMESTAMP_NTZ, int4). */
  type: string
  nullable?: boolean
  /** Fields of a RECORD / STRUCT column, in order. */
  fields?: ColumnMeta[]
  /** `REPEATED` for BigQuery arrays. */
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED'
  /** Where the warehouse says the column came from, when it says. */
  source?: { table: string, column: string }
}

export interface ResultSchema {
  columns: ColumnMeta[]
}

/** A page of rows in schema order; nested values are plain arrays and objects. */
export interface ResultPage {
  rows: unknown[][]
}

export interface NeutralResult {
  schema: ResultSchema
  /** Pages are pulled one at a time so memory is bounded by page size, not result size. */
  pages: AsyncIterable<ResultPage>
  /** The warehouse's query / job id. */
  upstreamId?: string
  /** Rows affected, for DML. */
  rowsAffected?: number
}

/** The verdict on a statement before anything runs upstream. */
export interface Admission {
  analysis: Analysis
  decision: Decision
  /**
   * Sluice's id of the admitted statement, set once its admitted event was committed; every
   * later release under this admission (another request, a poll) completes that statement.
   */
  statementId?: string
}

/** One masked output column of a MaskPlan. */
export interface MaskedColumn {
  index: number
  /** The masking rule id (or `detector:<kind>`) that masks it. */
  rule: string
  /** The mask function applied. */
  function?: string
  /** Why: which source column(s) the rule matched, or why lineage failed closed. */
  reason?: string
  /** Field path inside the value when only part of it is masked (a record field, a JSON key). */
  path?: string[]
}

/** Values masked (or, for flag-only detectors, found) per column and rule, as events record them. */
export interface MaskCount {
  column: string
  rule: string
  values: number
  /** `flagged`: a detector found the shape but the connection only reports it. */
  action?: 'masked' | 'flagged'
  reason?: string
}

/** What masking decided for one result schema; opaque to front ends. */
export interface MaskPlan {
  /** Output columns (by index) that are masked, with the rule that masks them. */
  columns: MaskedColumn[]
  /**
   * Live counts kept by the mask stage as pages pass (values actually masked, detector findings
   * included). Absent: the pipeline counts every row of every planned column.
   */
  counts?: MaskCount[]
}
