// The one error catalogue. Every error a request path can raise is declared here with a stable
// SLUICE_ code, so front ends can translate it into their own protocol's error shape and agents
// (and auditors) can act on the code rather than parse prose.
import createError from '@fastify/error'

/**
 * Base of every Sluice error; `family` lets front ends map a whole family at once. It is a
 * getter, not a field: @fastify/error builds instances without running subclass initialisers.
 */
export class SluiceError extends Error {
  get family (): string { return 'sluice' }
}
export class ConfigError extends SluiceError {
  override get family (): string { return 'config' }
}
export class AuthError extends SluiceError {
  override get family (): string { return 'auth' }
}
export class StoreError extends SluiceError {
  override get family (): string { return 'store' }
}
export class PolicyError extends SluiceError {
  override get family (): string { return 'policy' }
}
export class RequestError extends SluiceError {
  override get family (): string { return 'request' }
}
export class UpstreamError extends SluiceError {
  override get family (): string { return 'upstream' }
}
export class ApprovalError extends SluiceError {
  override get family (): string { return 'approval' }
}

// @fastify/error types its Base as ErrorConstructor; our subclasses are compatible at run time.
const base = (ctor: typeof SluiceError): ErrorConstructor => ctor as unknown as ErrorConstructor

// ── config ────────────────────────────────────────────────────────────────────────────────
export const ERR_CONFIG_INVALID = createError<[string]>(
  'SLUICE_CONFIG_INVALID', 'invalid configuration: %s', 500, base(ConfigError))
export const ERR_CONFIG_UNREADABLE = createError<[string, string]>(
  'SLUICE_CONFIG_UNREADABLE', 'cannot read configuration file %s: %s', 500, base(ConfigError))
export const ERR_CONFIG_REFERENCE = createError<[string, string]>(
  'SLUICE_CONFIG_REFERENCE', 'configuration key %s: %s', 500, base(ConfigError))

// ── identity ──────────────────────────────────────────────────────────────────────────────
export const ERR_AUTH_MISSING = createError<[]>(
  'SLUICE_AUTH_MISSING', 'a bearer token is required: send Authorization: Bearer <OIDC token>', 401, base(AuthError))
export const ERR_AUTH_INVALID = createError<[string]>(
  'SLUICE_AUTH_INVALID', 'the token was rejected: %s', 401, base(AuthError))
export const ERR_AUTH_ISSUER_UNAVAILABLE = createError<[string]>(
  'SLUICE_AUTH_ISSUER_UNAVAILABLE', 'the identity provider could not be reached: %s', 503, base(AuthError))
export const ERR_FORBIDDEN = createError<[string]>(
  'SLUICE_FORBIDDEN', 'forbidden: %s', 403, base(AuthError))

// ── store ─────────────────────────────────────────────────────────────────────────────────
export const ERR_STORE_UNAVAILABLE = createError<[string]>(
  'SLUICE_STORE_UNAVAILABLE', 'the audit store is unavailable, nothing was executed; retry later: %s', 503, base(StoreError))
// The warehouse already ran the statement (its admitted event is in the trail), but its
// completion could not be recorded: the result is withheld, and a retry would run it again.
export const ERR_RESULT_UNRECORDED = createError<[string]>(
  'SLUICE_RESULT_UNRECORDED', 'the statement ran, but its result is withheld because it could not be recorded in the audit store (%s); do not simply retry: the statement may have changed data, check its effect first', 500, base(StoreError))
export const ERR_MIGRATION_FAILED = createError<[string, string]>(
  'SLUICE_MIGRATION_FAILED', 'migration %s failed: %s', 500, base(StoreError))

// ── policy ────────────────────────────────────────────────────────────────────────────────
export const ERR_POLICY_DENIED = createError<[string, string]>(
  'SLUICE_POLICY_DENIED', 'denied by rule %s: %s', 403, base(PolicyError))
export const ERR_APPROVAL_REQUIRED = createError<[string, string]>(
  'SLUICE_APPROVAL_REQUIRED', 'approval required by rule %s: %s', 403, base(PolicyError))
export const ERR_POLICY_INVALID = createError<[string, string]>(
  'SLUICE_POLICY_INVALID', 'policy file %s is invalid: %s', 500, base(PolicyError))

// ── masking ───────────────────────────────────────────────────────────────────────────────
// Inference: filtering / joining / sorting / grouping on a column the caller sees masked would
// reveal what the mask hides (`WHERE ssn LIKE '123%'`, `ORDER BY salary`).
export const ERR_MASKING_INFERENCE = createError<[string, string]>(
  'SLUICE_MASKING_INFERENCE', 'denied by masking rule %s: %s', 403, base(PolicyError))
// Fail closed when `masking.unresolved: deny` and a result column cannot be traced.
export const ERR_MASKING_UNRESOLVED = createError<[string, string]>(
  'SLUICE_MASKING_UNRESOLVED', 'denied by masking rule %s: %s', 403, base(PolicyError))

// ── request ───────────────────────────────────────────────────────────────────────────────
export const ERR_BAD_REQUEST = createError<[string]>(
  'SLUICE_BAD_REQUEST', 'malformed request: %s', 400, base(RequestError))
// A statement the parser could not read: front ends answer it as the warehouse's own syntax
// error (Snowflake 001003 / 42000, BigQuery 400 invalidQuery), not as a policy denial.
export const ERR_SQL_SYNTAX = createError<[string]>(
  'SLUICE_SQL_SYNTAX', 'Sluice could not parse this statement; it was not run: %s', 400, base(RequestError))
// Caps that keep one statement from stalling the gateway (policies.maxStatementBytes, the
// parser pool's time and memory budget): refused before anything runs, as the client's mistake.
export const ERR_STATEMENT_TOO_LARGE = createError<[number, number]>(
  'SLUICE_STATEMENT_TOO_LARGE', 'the statement is %d bytes, more than the %d bytes Sluice accepts (policies.maxStatementBytes); it was not run: split it, or load large value lists into a table', 400, base(RequestError))
export const ERR_STATEMENT_TOO_COMPLEX = createError<[string]>(
  'SLUICE_STATEMENT_TOO_COMPLEX', 'the statement is too complex for Sluice to analyse (%s); it was not run: simplify it (less nesting, shorter value lists)', 400, base(RequestError))
export const ERR_UNKNOWN_CONNECTION = createError<[string]>(
  'SLUICE_UNKNOWN_CONNECTION', 'unknown connection %s: check the connection name configured for this client', 404, base(RequestError))
export const ERR_NOT_FOUND = createError<[string]>(
  'SLUICE_NOT_FOUND', '%s not found', 404, base(RequestError))
// Raised by Node's HTTP parser, before there is a request to authenticate or record.
export const ERR_HEADERS_TOO_LARGE = createError<[number, string]>(
  'SLUICE_HEADERS_TOO_LARGE', 'the request headers exceed %d bytes (listen.maxHeaderBytes)%s', 431, base(RequestError))
// Answered after authentication (and the route's role check), so the API's shape is not told to strangers.
export const ERR_METHOD_NOT_ALLOWED = createError<[string, string, string]>(
  'SLUICE_METHOD_NOT_ALLOWED', '%s is not allowed on %s; it accepts %s', 405, base(RequestError))
// An idempotency key (SQL API / connector requestId) belongs to one principal, connection and
// request: reused for another statement it is refused, never answered with the first result.
export const ERR_IDEMPOTENCY_CONFLICT = createError<[string, string, string, string]>(
  'SLUICE_IDEMPOTENCY_CONFLICT', 'requestId %s was already used on connection %s for %s (statement %s); nothing was run: a retry must resend the same request, a new statement needs a new requestId', 400, base(RequestError))
// A retry that comes after the first result expired cannot be answered with it; it is not run twice.
export const ERR_IDEMPOTENCY_UNAVAILABLE = createError<[string, string, string]>(
  'SLUICE_IDEMPOTENCY_UNAVAILABLE', 'requestId %s already ran as statement %s, whose result cannot be served here (%s); it was not run again: send a new requestId to run it again', 400, base(RequestError))

// ── upstream ──────────────────────────────────────────────────────────────────────────────
// Only for a request the warehouse certainly never received (unsent.ts): each protocol answers
// it as retryable (SQL API 503 + Retry-After, connector HTTP 503, BigQuery 503 backendError).
export const ERR_UPSTREAM_UNAVAILABLE = createError<[string, string]>(
  'SLUICE_UPSTREAM_UNAVAILABLE', 'warehouse connection %s is unreachable, nothing was executed; retry later: %s', 503, base(UpstreamError))
export const ERR_UPSTREAM_FAILED = createError<[string, string]>(
  'SLUICE_UPSTREAM_FAILED', 'warehouse connection %s returned an error: %s', 502, base(UpstreamError))
// The policy's statementTimeoutSeconds, enforced by Sluice (the upstream statement is cancelled):
// worded as Snowflake's own 000630, which agents and drivers already know.
export const ERR_STATEMENT_TIMEOUT = createError<[number, string]>(
  'SLUICE_STATEMENT_TIMEOUT', 'Statement reached its statement or warehouse timeout of %d second(s) and was canceled. (Sluice policy limit statementTimeoutSeconds on connection %s)', 422, base(UpstreamError))
// limits.maxRowsAction: refuse — the result is withheld whole rather than cut.
export const ERR_ROWS_LIMIT = createError<[number, string]>(
  'SLUICE_ROWS_LIMIT', 'the result has more than %d rows, the most rule %s allows (limits.maxRows, maxRowsAction: refuse); no rows were returned: add a LIMIT or narrow the query', 403, base(PolicyError))

/** True for any catalogue error; used by the error handler to decide what may be shown. */
export function isSluiceError (err: unknown): err is SluiceError & { code: string, statusCode?: number } {
  return err instanceof SluiceError
}

// ── snowflake front ends ──────────────────────────────────────────────────────────────────
// Each carries what the Snowflake protocols need to render it (code, sqlState); the front
// ends map these onto the connector's `success:false` body or a SQL API status body.
export const ERR_SNOWFLAKE_STATEMENT_FAILED = createError<[string, string]>(
  'SLUICE_SNOWFLAKE_STATEMENT_FAILED', 'statement failed on connection %s: %s', 422, base(UpstreamError))
export const ERR_SNOWFLAKE_SESSION = createError<[string]>(
  'SLUICE_SNOWFLAKE_SESSION', 'the Sluice session is not valid (%s); log in again', 401, base(AuthError))
export const ERR_SNOWFLAKE_SESSION_EXPIRED = createError<[]>(
  'SLUICE_SNOWFLAKE_SESSION_EXPIRED', 'the Sluice session token has expired; renew it with the master token', 401, base(AuthError))
export const ERR_SNOWFLAKE_MASTER_EXPIRED = createError<[]>(
  'SLUICE_SNOWFLAKE_MASTER_EXPIRED', 'the Sluice master token is unknown or has expired; log in again with a fresh OIDC token', 401, base(AuthError))
export const ERR_SNOWFLAKE_FILE_TRANSFER = createError<[string]>(
  'SLUICE_SNOWFLAKE_FILE_TRANSFER', 'PUT and GET file transfers are not available through Sluice (%s); load files with COPY INTO from an external stage instead', 403, base(RequestError))
export const ERR_SNOWFLAKE_STATEMENT_COUNT = createError<[number, number]>(
  'SLUICE_SNOWFLAKE_STATEMENT_COUNT', 'Actual statement count %d did not match the desired statement count %d; set MULTI_STATEMENT_COUNT (0 for any number) to run several statements', 400, base(RequestError))
export const ERR_SNOWFLAKE_CONTEXT_REFUSED = createError<[string, string, string, string]>(
  'SLUICE_SNOWFLAKE_CONTEXT_REFUSED', '%s %s is not allowed on connection %s; allowed: %s', 403, base(PolicyError))
export const ERR_SNOWFLAKE_CANCELLED = createError<[string]>(
  'SLUICE_SNOWFLAKE_CANCELLED', 'statement %s was canceled before it finished', 422, base(RequestError))
export const ERR_SNOWFLAKE_UNSUPPORTED = createError<[string]>(
  'SLUICE_SNOWFLAKE_UNSUPPORTED', 'not supported through this endpoint: %s', 422, base(RequestError))
export const ERR_SNOWFLAKE_PARAMETER_REFUSED = createError<[string, string]>(
  'SLUICE_SNOWFLAKE_PARAMETER_REFUSED', 'statement parameter %s is not accepted through Sluice; allowed: %s', 400, base(RequestError))
// Fail closed: a session that may still act with the upstream user's secondary roles is never used.
export const ERR_UPSTREAM_SECONDARY_ROLES = createError<[string, string]>(
  'SLUICE_UPSTREAM_SECONDARY_ROLES', 'connection %s: USE SECONDARY ROLES NONE failed on a new upstream session, so the session was not used (%s); set secondaryRoles: keep on the connection only if the warehouse (an emulator) lacks the statement', 502, base(UpstreamError))
// The replica running an asynchronous statement stopped heartbeating it (it was killed or lost
// the store): the statement's outcome is unknown, so the client is told to run it again.
export const ERR_STATEMENT_RUNNER_LOST = createError<[string]>(
  'SLUICE_STATEMENT_RUNNER_LOST', 'the gateway replica running statement %s stopped; run it again', 422, base(SluiceError))

/**
 * A statement's failure as the store keeps it (statement-handles.ts): the catalogue code, the
 * text exactly as it was released to the client and the Snowflake codes. Whichever replica
 * serves a poll renders it again, so the failure is decided (and released) once.
 */
export class RecordedFailure extends SluiceError {
  readonly code: string
  readonly statusCode: number
  readonly snowflakeCode: string | undefined
  readonly sqlState: string | undefined

  constructor (stored: { code: string, message: string, statusCode?: number, snowflakeCode?: string, sqlState?: string }) {
    super(stored.message)
    this.name = 'RecordedFailure'
    this.code = stored.code
    this.statusCode = stored.statusCode ?? 422
    this.snowflakeCode = stored.snowflakeCode
    this.sqlState = stored.sqlState
  }
}

// ── bigquery front end ────────────────────────────────────────────────────────────────────
// Rendered in Google's JSON error shape by the BigQuery front end; an upstream error keeps the
// upstream's HTTP status and reason (invalidQuery, notFound, duplicate…) when it is the
// client's to fix, and becomes 502 when the warehouse itself failed.
export const ERR_BIGQUERY_UPSTREAM = createError<[string, string]>(
  'SLUICE_BIGQUERY_UPSTREAM', 'BigQuery (connection %s): %s', 502, base(UpstreamError))
export const ERR_BIGQUERY_REFUSED = createError<[string]>(
  'SLUICE_BIGQUERY_REFUSED', 'refused by Sluice: %s', 403, base(PolicyError))
export const ERR_BIGQUERY_UNSUPPORTED = createError<[string]>(
  'SLUICE_BIGQUERY_UNSUPPORTED', '%s is not available through Sluice; it serves jobs.query, jobs.insert (query jobs), jobs.get, jobs.getQueryResults, jobs.cancel, jobs.list, tabledata.list, datasets.list/get and tables.list/get', 403, base(RequestError))
export const ERR_BIGQUERY_DUPLICATE_JOB = createError<[string]>(
  'SLUICE_BIGQUERY_DUPLICATE_JOB', 'Already Exists: Job %s; choose another job id', 409, base(RequestError))

// ── approvals ─────────────────────────────────────────────────────────────────────────────
// What a held statement's client is told once a human decided (or nobody did in time), in the
// client's own protocol; and what an approver is told when a decision is refused.
export const ERR_APPROVAL_DENIED = createError<[string, string, string]>(
  'SLUICE_APPROVAL_DENIED', 'approval %s denied by %s: %s', 403, base(ApprovalError))
export const ERR_APPROVAL_EXPIRED = createError<[string, number]>(
  'SLUICE_APPROVAL_EXPIRED', 'approval %s expired after %d min; ask again or change the statement', 403, base(ApprovalError))
export const ERR_APPROVAL_WITHDRAWN = createError<[string]>(
  'SLUICE_APPROVAL_WITHDRAWN', 'approval %s was withdrawn by the requester; the statement was not run', 409, base(ApprovalError))
// A decision on an approval that is no longer pending (decided, expired, withdrawn, run).
export const ERR_APPROVAL_CLOSED = createError<[string, string]>(
  'SLUICE_APPROVAL_CLOSED', 'approval %s is %s; it can no longer be decided', 409, base(ApprovalError))
export const ERR_APPROVAL_SELF = createError<[string, string]>(
  'SLUICE_APPROVAL_SELF', 'approval %s: %s cannot approve a statement they asked for (directly or through an agent acting for them); ask another approver', 403, base(ApprovalError))
export const ERR_APPROVAL_NOT_APPROVER = createError<[string, string, string]>(
  'SLUICE_APPROVAL_NOT_APPROVER', 'approval %s cannot be decided by this caller: %s (rule %s names its approvers)', 403, base(ApprovalError))
export const ERR_APPROVAL_REASON_REQUIRED = createError<[string, string]>(
  'SLUICE_APPROVAL_REASON_REQUIRED', 'approval %s: rule %s requires a reason to deny; send { "reason": "…" }', 400, base(ApprovalError))
export const ERR_APPROVAL_ALREADY_DECIDED = createError<[string, string]>(
  'SLUICE_APPROVAL_ALREADY_DECIDED', 'approval %s: %s has already approved it; it needs another approver', 409, base(ApprovalError))
export const ERR_APPROVAL_GRANT_REFUSED = createError<[string, string]>(
  'SLUICE_APPROVAL_GRANT_REFUSED', 'approval %s: %s', 400, base(ApprovalError))
// A poll naming an approval must carry exactly the statement it was given for.
export const ERR_APPROVAL_MISMATCH = createError<[string]>(
  'SLUICE_APPROVAL_MISMATCH', 'approval %s was given for another statement (text, binds or connection differ); nothing was run: send the statement it was asked for, or a new one', 409, base(ApprovalError))
// The approved statement already ran (claimed once, by one replica); its result comes from that run.
export const ERR_APPROVAL_EXECUTED = createError<[string, string]>(
  'SLUICE_APPROVAL_EXECUTED', 'approval %s was already used: its statement was run by gateway %s and is not run again', 409, base(ApprovalError))
// Approved and claimed by a replica that stopped (killed, or its store write failed) before it
// started the statement: what the client is told once the claim's lease lapsed, where running it
// again could run it twice (Snowflake). A statement failure (422, as the SQL API answers one):
// nothing is known to have run, and a resend asks again.
export const ERR_APPROVAL_CLAIM_LOST = createError<[string, string]>(
  'SLUICE_APPROVAL_CLAIM_LOST', 'approval %s was approved, but gateway %s, which took the statement to run it, stopped before running it; the statement was not run: send it again', 422, base(ApprovalError))
// A held statement's stored request is sealed under secrets.key: a gateway configured with
// another key cannot run it (and will not guess); a replica that shares the key can.
export const ERR_APPROVAL_HELD_UNREADABLE = createError<[string, string]>(
  'SLUICE_APPROVAL_HELD_UNREADABLE', 'statement %s is held for approval %s, but this gateway cannot open its stored request (its secrets.key differs from the gateway that held it); nothing was run', 503, base(ApprovalError))

// ── postgres front end ────────────────────────────────────────────────────────────────────
// Rendered as ErrorResponse with a SQLSTATE by the PostgreSQL listener (src/frontends/postgres).
export const ERR_POSTGRES_UNSUPPORTED = createError<[string]>(
  'SLUICE_POSTGRES_UNSUPPORTED', '%s', 400, base(RequestError))
export const ERR_POSTGRES_UPSTREAM = createError<[string, string]>(
  'SLUICE_POSTGRES_UPSTREAM', 'PostgreSQL (connection %s): %s', 502, base(UpstreamError))

// ── mcp front end ─────────────────────────────────────────────────────────────────────────
// Tool failures are tool results (isError) carrying these codes; session errors are HTTP answers.
export const ERR_MCP_SESSION_UNKNOWN = createError<[string]>(
  'SLUICE_MCP_SESSION_UNKNOWN', 'MCP session %s is not known (ended, expired, or opened by someone else): initialize a new session', 404, base(RequestError))
export const ERR_MCP_ONE_STATEMENT = createError<[number]>(
  'SLUICE_MCP_ONE_STATEMENT', 'the query tool runs one statement per call; this SQL has %d: call query once per statement', 400, base(RequestError))
export const ERR_MCP_HELD = createError<[string, string]>(
  'SLUICE_MCP_HELD', 'held for approval %s: %s; call approval_status with this id, or run exactly the same query again once it is approved', 403, base(PolicyError))
// A rule asks the requester why the statement should run, and the client gave no answer it can use.
export const ERR_MCP_JUSTIFICATION_REQUIRED = createError<[string, string]>(
  'SLUICE_MCP_JUSTIFICATION_REQUIRED', 'approval required by rule %s, which needs a justification before it asks an approver: %s; nothing was held or run', 400, base(PolicyError))
export const ERR_MCP_UPSTREAM = createError<[string, string]>(
  'SLUICE_MCP_UPSTREAM', 'the warehouse refused the statement on connection %s: %s', 502, base(UpstreamError))
