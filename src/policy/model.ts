// The policy file format (what `policies/schema.json` validates) and its compiled form (what the
// evaluator runs). Keep the two halves of this file and the schema in step: the schema is the
// published contract, these types are how the code reads it.
import type { RereadKind } from '../sql/rereads.js'
import type { StatementKind } from '../sql/types.js'
import type { ApprovalSettings, Effect, Limits } from './types.js'

export type PrincipalType = 'human' | 'machine'
export type ConnectionKind = 'snowflake' | 'bigquery' | 'postgres'
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'

export const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']

/** Every statement kind the analyzer can produce, in the order the schema lists them. */
export const STATEMENT_KINDS: readonly StatementKind[] = [
  'select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'copy', 'call',
  'transaction', 'session', 'show', 'notify', 'scripting', 'unknown'
]

/** The rule id reported when no rule matched. Reserved: a file may not use it. */
export const DEFAULT_DENY_RULE_ID = 'default-deny'

/** The rule id of Sluice's own refusal of sources that re-read results (rereads.ts). Reserved. */
export const REREAD_RULE_ID = 'result-reread'

// ── file format ───────────────────────────────────────────────────────────────────────────

export interface TimeWindowSpec {
  /** IANA zone name (`Europe/Paris`); `UTC` when absent. */
  timezone?: string
  /** Days the window is open; every day when absent. */
  days?: Weekday[]
  /** `HH:MM-HH:MM` ranges, end exclusive, `24:00` allowed as an end; may wrap midnight. */
  hours?: string[]
}

export interface MatchSpec {
  roles?: string[]
  groups?: string[]
  principalTypes?: PrincipalType[]
  /** Connection names; globs allowed (`*-prod`). */
  connections?: string[]
  connectionKinds?: ConnectionKind[]
  kinds?: StatementKind[]
  /** Table globs over the analyzer's qualified names (`db.schema.table`, `project.dataset.table`). */
  tables?: string[]
  /** Re-reading sources (RESULT_SCAN, QUERY_HISTORY, JOBS…) this rule is about; see rereads.ts. */
  rereads?: RereadKind[]
  /**
   * Function globs (`pg_read_file`, `lo_*`, `dblink*`), matched against the name a statement
   * calls with and without its schema: the statement calls one of them (an allow: only those).
   */
  functions?: string[]
  time?: TimeWindowSpec
  /** The warehouse's estimate of bytes read is over this (`10GiB` or bytes); see bytes.ts. */
  estimatedBytesOver?: number | string
}

export interface RuleSpec {
  id: string
  description?: string
  effect: Effect
  match?: MatchSpec
  /** What the agent should do next; appended to the reason of a deny or require_approval. */
  message?: string
  limits?: Limits
  /** Only on require_approval rules: who may approve and how; defaults in `approvalSettings`. */
  approval?: ApprovalSpec
  /** With `match.estimatedBytesOver`, when the warehouse gives no estimate: refuse (default) or hold. */
  onNoEstimate?: 'deny' | 'hold'
}

export interface ApprovalSpec {
  approvers?: { roles?: string[], groups?: string[] }
  minApprovals?: number
  expiresAfterMinutes?: number
  allowSelfApproval?: boolean
  reasonRequiredToDeny?: boolean
  justification?: 'required' | 'optional' | 'none'
  grant?: { maxMinutes?: number }
  notify?: string[]
}

/** The mask functions a masking rule may name (see `src/masking/functions.ts`); `hash` = sha256. */
export const MASK_FUNCTIONS = ['redact', 'nullify', 'default', 'sha256', 'hash', 'token', 'last4', 'first4', 'email', 'year', 'partial'] as const
export type MaskFunctionName = typeof MASK_FUNCTIONS[number]

/** How a statement may use a masked column without returning it (inference resistance). */
export const INFERENCE_USAGES = ['equality', 'range', 'pattern', 'grouping', 'ordering', 'expression'] as const
export type InferenceUsage = typeof INFERENCE_USAGES[number]

export interface MaskingRuleSpec {
  id: string
  description?: string
  /** Column globs: `db.schema.table.column`, `project.dataset.table.column`, nested `….record.field`. */
  columns: string[]
  function: MaskFunctionName
  exemptRoles?: string[]
  /** Connection names (globs) the rule applies to; every connection when absent. */
  connections?: string[]
  /** partial: characters left in clear at each end. */
  keep?: { first?: number, last?: number }
  /** partial: replacement character (default `*`). */
  fill?: string
  /** redact: replacement text for strings (default `****`). */
  replacement?: string
  /** Shorthand for `allowInference: [equality, grouping]`; only for sha256 / token. */
  allowEquality?: boolean
  /** Uses of the masked column a query may make in WHERE / JOIN / GROUP BY / ORDER BY / windows. */
  allowInference?: InferenceUsage[]
  /**
   * The keep-nothing mask for values computed from the column (REVERSE(email), SUBSTR(card, 1, 8))
   * when `function` keeps part of the value (email, partial, last4, first4, year). Default redact.
   */
  derived?: 'redact' | 'hash' | 'nullify'
}

export interface PolicyFileSpec {
  $schema?: string
  version: 1
  description?: string
  defaults?: { limits?: Limits }
  rules?: RuleSpec[]
  masking?: MaskingRuleSpec[]
}

// ── compiled form ─────────────────────────────────────────────────────────────────────────

export interface CompiledTimeWindow {
  timezone: string
  /** Indexed by `WEEKDAYS` position (0 = Sunday); absent = every day. */
  days?: ReadonlySet<number>
  /** Minutes since midnight, `[from, to)`; `from > to` wraps midnight. Absent = all day. */
  ranges?: ReadonlyArray<readonly [number, number]>
  /** Local weekday (0 = Sunday) and minute of `at` in this window's zone. */
  localTime: (at: Date) => { day: number, minute: number }
}

export interface CompiledRule {
  id: string
  effect: Effect
  description?: string
  message?: string
  /** Where the rule came from, for explain output and error messages. */
  source: { file: string, index: number }
  limits?: Limits
  /** require_approval rules: the approval settings with defaults applied. */
  approval?: ApprovalSettings
  /** The rule as written, for `explain`. */
  spec: RuleSpec
  roles?: ReadonlySet<string>
  groups?: ReadonlySet<string>
  principalTypes?: ReadonlySet<PrincipalType>
  connections?: (name: string) => boolean
  connectionKinds?: ReadonlySet<string>
  kinds?: ReadonlySet<StatementKind>
  tables?: (name: string) => boolean
  rereads?: ReadonlySet<RereadKind>
  functions?: (name: string) => boolean
  time?: CompiledTimeWindow
  /** Bytes; the rule matches a request the warehouse estimates above this. */
  estimatedBytesOver?: number
  /** What the rule does when no estimate can be had (always set with estimatedBytesOver). */
  onNoEstimate?: 'deny' | 'hold'
}

export interface CompiledMaskingRule {
  id: string
  source: { file: string, index: number }
  spec: MaskingRuleSpec
  columns: (name: string) => boolean
  exemptRoles: ReadonlySet<string>
  /** Connection matcher; absent = every connection. */
  connections?: (name: string) => boolean
  /** Uses allowed in predicates / sorts / groupings despite the mask (empty = none). */
  allowInference: ReadonlySet<InferenceUsage>
}

/** Every policy file of a directory, validated, merged in file-name order and compiled. */
export interface PolicySet {
  /** Content hash of the files (names and bytes), reported as `PolicyEngine.version`. */
  version: string
  /** File names in the order their rules were merged. */
  files: string[]
  rules: CompiledRule[]
  masking: CompiledMaskingRule[]
  defaults: { limits: Limits }
  /** Not errors, but worth a log line (an empty directory, a file with no rules). */
  warnings: string[]
}
