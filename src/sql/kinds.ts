// Statement kind from the parser's own statement variant — never from the text.
// A variant not listed here is `unknown` (fail closed): a new sqlparser release that adds a
// statement type must be classified here before Sluice lets it through.
import { variantOf } from './parser.js'
import type { StatementKind } from './types.js'

type Json = Record<string, unknown>

const BY_VARIANT: Record<string, StatementKind> = {
  Insert: 'insert',
  Update: 'update',
  Delete: 'delete',
  Merge: 'merge',

  CreateTable: 'ddl', CreateVirtualTable: 'ddl', CreateView: 'ddl', CreateIndex: 'ddl',
  CreateSchema: 'ddl', CreateDatabase: 'ddl', CreateFunction: 'ddl', CreateProcedure: 'ddl',
  CreateTrigger: 'ddl', CreateMacro: 'ddl', CreateStage: 'ddl', CreateFileFormat: 'ddl',
  CreateWarehouse: 'ddl', CreateSequence: 'ddl', CreateDomain: 'ddl', CreateType: 'ddl',
  CreateExtension: 'ddl', CreateCollation: 'ddl', CreateSecret: 'ddl', CreateServer: 'ddl',
  CreatePolicy: 'ddl', CreateConnector: 'ddl', CreateOperator: 'ddl', CreateOperatorFamily: 'ddl',
  CreateOperatorClass: 'ddl', CreateTextSearch: 'ddl',
  AlterTable: 'ddl', AlterSchema: 'ddl', AlterIndex: 'ddl', AlterView: 'ddl', AlterFunction: 'ddl',
  AlterType: 'ddl', AlterCollation: 'ddl', AlterOperator: 'ddl', AlterOperatorFamily: 'ddl',
  AlterOperatorClass: 'ddl', AlterTextSearch: 'ddl', AlterPolicy: 'ddl', AlterConnector: 'ddl',
  Drop: 'ddl', DropFunction: 'ddl', DropDomain: 'ddl', DropProcedure: 'ddl', DropSecret: 'ddl',
  DropPolicy: 'ddl', DropConnector: 'ddl', DropExtension: 'ddl', DropOperator: 'ddl',
  DropOperatorFamily: 'ddl', DropOperatorClass: 'ddl', DropTrigger: 'ddl',
  Truncate: 'ddl', Comment: 'ddl', RenameTable: 'ddl', Msck: 'ddl', Analyze: 'ddl',
  Vacuum: 'ddl', OptimizeTable: 'ddl', Undrop: 'ddl',

  Grant: 'dcl', Revoke: 'dcl', Deny: 'dcl',
  CreateRole: 'dcl', AlterRole: 'dcl', CreateUser: 'dcl', AlterUser: 'dcl',

  Copy: 'copy', CopyIntoSnowflake: 'copy', Unload: 'copy', ExportData: 'copy', LoadData: 'copy',
  Directory: 'copy', Put: 'copy', Get: 'copy', Remove: 'copy',

  Call: 'call', Execute: 'call',

  Commit: 'transaction', Rollback: 'transaction', Savepoint: 'transaction',
  ReleaseSavepoint: 'transaction', Lock: 'transaction', LockTables: 'transaction',
  UnlockTables: 'transaction',

  Set: 'session', Use: 'session', AlterSession: 'session', Declare: 'session', Reset: 'session',
  Discard: 'session', Prepare: 'session', Deallocate: 'session', Open: 'session',
  Close: 'session', Fetch: 'session',

  // PostgreSQL's asynchronous notifications: a channel between sessions, not a setting of this one.
  LISTEN: 'notify', UNLISTEN: 'notify', NOTIFY: 'notify',

  ShowFunctions: 'show', ShowVariable: 'show', ShowStatus: 'show', ShowVariables: 'show',
  ShowCreate: 'show', ShowColumns: 'show', ShowCatalogs: 'show', ShowDatabases: 'show',
  ShowProcessList: 'show', ShowSchemas: 'show', ShowCharset: 'show', ShowObjects: 'show',
  ShowTables: 'show', ShowViews: 'show', ShowCollation: 'show', ExplainTable: 'show', List: 'show',

  If: 'scripting', While: 'scripting', Case: 'scripting', Raise: 'scripting',
  Return: 'scripting', RaisError: 'scripting', Throw: 'scripting', Print: 'scripting',
  WaitFor: 'scripting', Assert: 'scripting'
}

/** Drop of these object types is about access control, not schema. */
const DCL_OBJECTS = new Set(['Role', 'User'])

export interface KindResult {
  kind: StatementKind
  /** Set when the variant is one this module does not classify. */
  unclassified?: string
}

export function kindOf (stmt: unknown): KindResult {
  const variant = variantOf(stmt)
  if (variant === undefined) return { kind: 'unknown', unclassified: 'unrecognised statement shape' }
  const body = (stmt as Json)[variant]
  const v: Json = body !== null && typeof body === 'object' ? body as Json : {}
  switch (variant) {
    case 'Query':
      return { kind: queryKind(v) }
    case 'StartTransaction':
      // Snowflake/BigQuery `BEGIN … END` blocks carry their statements; a bare BEGIN does not.
      return { kind: Array.isArray(v.statements) && v.statements.length > 0 ? 'scripting' : 'transaction' }
    case 'Explain':
      // EXPLAIN ANALYZE runs the statement: it is what it explains.
      return explainAnalyzes(v) ? kindOf(v.statement) : { kind: 'show' }
    case 'Drop':
      return { kind: typeof v.object_type === 'string' && DCL_OBJECTS.has(v.object_type) ? 'dcl' : 'ddl' }
  }
  const kind = BY_VARIANT[variant]
  return kind !== undefined ? { kind } : { kind: 'unknown', unclassified: `statement type ${variant} is not classified` }
}

function queryKind (q: Json): StatementKind {
  const body = q.body
  const variant = variantOf(body)
  if (variant === undefined) return 'select'
  const inner = (body as Json)[variant]
  switch (variant) {
    case 'Insert': return 'insert'
    case 'Update': return 'update'
    case 'Delete': return 'delete'
    case 'Merge': return 'merge'
    case 'Query': return inner !== null && typeof inner === 'object' ? queryKind(inner as Json) : 'select'
    default: return 'select'
  }
}

export function explainAnalyzes (v: Json): boolean {
  if (v.analyze === true) return true
  const options = Array.isArray(v.options) ? v.options : []
  return options.some((o: unknown) => {
    const name = (o as { name?: { value?: unknown } } | null)?.name?.value
    return typeof name === 'string' && name.toLowerCase() === 'analyze'
  })
}

/** Whether the outermost query already limits its rows (LIMIT, TOP, FETCH). */
export function hasLimit (stmt: unknown): boolean {
  if (variantOf(stmt) !== 'Query') return false
  return queryLimited((stmt as Json).Query as Json)
}

function queryLimited (q: Json): boolean {
  if (q === null || typeof q !== 'object') return false
  const limit = q.limit_clause
  if (limit !== undefined && limit !== null) {
    const lc = limit as Json
    const lo = lc.LimitOffset as Json | undefined
    if (lo === undefined || (lo.limit !== undefined && lo.limit !== null)) return true
  }
  if (q.limit !== undefined && q.limit !== null) return true // older sqlparser JSON
  if (q.fetch !== undefined && q.fetch !== null) return true
  const body = q.body as Json | undefined
  if (body === undefined || body === null) return false
  if (body.Select !== undefined) {
    const top = (body.Select as Json).top
    return top !== undefined && top !== null
  }
  if (body.Query !== undefined) return queryLimited(body.Query as Json)
  return false
}
