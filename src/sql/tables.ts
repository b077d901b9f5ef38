// Tables read and written, and functions called, found by walking sqlparser's JSON AST.
//
// The walk is generic (it descends into every object and array) so that a table reference
// anywhere — subquery, CTE, lateral join, scripting block, EXPLAIN target — is seen as a read.
// Statement variants that name a write target (INSERT INTO t, UPDATE t, DROP TABLE t, …) have
// a handler that records that name as written and walks the rest generically.
// CTE names are scoped: a one-part name is a CTE reference only where that CTE is visible, so
// a real `orders` read outside `WITH orders AS (…)` is still reported.
import { functionName, normalizeIdent, objectNameParts, qualify, type IdentJson } from './names.js'
import type { Dialect, QualifyDefaults, StatementKind } from './types.js'

type Json = Record<string, unknown>
type Scope = ReadonlySet<string>

export interface Collected {
  read: Set<string>
  written: Set<string>
  functions: Set<string>
  /** Kinds of DML statements met anywhere in the tree (data-modifying CTEs, blocks, EXPLAIN). */
  dml: StatementKind[]
  /** SELECT … INTO <table> was met (Postgres: creates a table). */
  selectInto: boolean
  /** Why a table name could not be known (e.g. Snowflake IDENTIFIER(:var)). */
  unresolved?: string
}

/** Object types whose DROP/COMMENT names a table-like object. */
const TABLE_OBJECTS = new Set(['Table', 'View', 'MaterializedView', 'Stream', 'DynamicTable', 'ExternalTable'])

export function collect (stmt: unknown, dialect: Dialect, defaults: QualifyDefaults): Collected {
  const c = new Walker(dialect, defaults)
  c.walk(stmt, new Set())
  return c.out
}

function isObj (v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

class Walker {
  readonly out: Collected = {
    read: new Set(), written: new Set(), functions: new Set(), dml: [], selectInto: false
  }

  constructor (private readonly dialect: Dialect, private readonly defaults: QualifyDefaults) {}

  walk (node: unknown, scope: Scope): void {
    if (Array.isArray(node)) {
      for (const item of node) this.walk(item, scope)
      return
    }
    if (!isObj(node)) return
    const keys = Object.keys(node)
    if (keys.length === 1) {
      const key = keys[0] as string
      const value = node[key]
      if (isObj(value) && this.statement(key, value, scope)) return
      if (key === 'Table' && isObj(value) && Array.isArray(value.name)) return this.tableFactor(value, scope)
      if (key === 'Function' && isObj(value) && Array.isArray(value.name)) return this.func(value, scope)
    }
    if (isObj(node.body) && isQueryBody(node.body)) return this.query(node, scope)
    if (Array.isArray(node.projection) && isObj(node.into)) {
      this.out.selectInto = true
      this.write(node.into.name)
    }
    this.rest(node, scope)
  }

  /** Walk every field except the ones named (already handled by the caller). */
  private rest (node: Json, scope: Scope, ...skip: string[]): void {
    for (const key in node) {
      if (key === 'span' || key.endsWith('_token') || skip.includes(key)) continue
      const v = node[key]
      if (v !== null && typeof v === 'object') this.walk(v, scope)
    }
  }

  private query (q: Json, scope: Scope): void {
    let inner: Scope = scope
    const ctes = isObj(q.with) && Array.isArray(q.with.cte_tables) ? q.with.cte_tables : undefined
    if (ctes !== undefined && isObj(q.with)) {
      const visible = new Set(scope)
      const recursive = q.with.recursive === true
      for (const cte of ctes) {
        if (!isObj(cte)) continue
        const name = cteName(cte, this.dialect)
        if (recursive && name !== undefined) visible.add(name)
        this.walk(cte.query, visible)
        if (name !== undefined) visible.add(name)
      }
      inner = visible
    }
    this.rest(q, inner, 'with')
  }

  private tableFactor (t: Json, scope: Scope): void {
    if (t.args !== undefined && t.args !== null) {
      // `FROM generate_series(1, 10)`: a table-valued function, not a table.
      const fn = functionName(t.name)
      if (fn !== undefined) this.out.functions.add(fn)
    } else {
      const parts = objectNameParts(onlyFix(t, this.dialect) ?? t.name, this.dialect)
      if (parts === undefined) this.unresolved('table name is not a plain identifier')
      else if (!(parts.length === 1 && scope.has(parts[0] as string))) {
        this.out.read.add(qualify(parts, this.defaults))
      }
    }
    // Snowflake time travel `AT(...)` parses as a function named AT: walk its arguments only.
    const version = t.version
    if (isObj(version) && isObj(version.Function) && isObj(version.Function.Function)) {
      this.walk(version.Function.Function.args, scope)
      this.rest(t, scope, 'name', 'version')
    } else {
      this.rest(t, scope, 'name')
    }
  }

  private func (f: Json, scope: Scope): void {
    const fn = functionName(f.name)
    if (fn !== undefined) this.out.functions.add(fn)
    this.rest(f, scope, 'name')
  }

  private unresolved (why: string): void {
    this.out.unresolved ??= why
  }

  /** Record an ObjectName as written. */
  private write (name: unknown): void {
    const parts = objectNameParts(name, this.dialect)
    if (parts === undefined) this.unresolved('target name is not a plain identifier')
    else this.out.written.add(qualify(parts, this.defaults))
  }

  private readName (name: unknown): void {
    const parts = objectNameParts(name, this.dialect)
    if (parts === undefined) this.unresolved('source name is not a plain identifier')
    else this.out.read.add(qualify(parts, this.defaults))
  }

  /** A TableFactor in a write position: a plain table is written, anything else is walked. */
  private writeFactor (factor: unknown, scope: Scope): void {
    if (isObj(factor) && isObj(factor.Table) && Array.isArray(factor.Table.name)) {
      this.write(factor.Table.name)
      this.rest(factor.Table, scope, 'name')
    } else {
      this.walk(factor, scope)
    }
  }

  /** TableWithJoins in a write position: the relation is written, the joins are read. */
  private writeTableWithJoins (twj: unknown, scope: Scope): void {
    if (!isObj(twj)) return
    this.writeFactor(twj.relation, scope)
    this.walk(twj.joins, scope)
  }

  private intoClauses (clauses: unknown, scope: Scope): void {
    for (const clause of Array.isArray(clauses) ? clauses : []) {
      if (!isObj(clause)) continue
      this.write(clause.table_name)
      this.rest(clause, scope, 'table_name')
    }
  }

  /** Statement variants with write targets. Returns false when `key` is not one of them. */
  private statement (key: string, v: Json, scope: Scope): boolean {
    switch (key) {
      case 'Insert': {
        if (!('source' in v || 'table' in v || 'table_name' in v)) return false
        this.out.dml.push('insert')
        const target = v.table ?? v.table_name
        if (isObj(target) && Array.isArray(target.TableName)) {
          // Snowflake multi-table INSERT ALL/FIRST has an empty target; its INTO clauses name them.
          if (target.TableName.length > 0) this.write(target.TableName)
        } else if (Array.isArray(target)) {
          this.write(target)
        } else if (isObj(target)) {
          this.walk(target, scope)
        }
        this.intoClauses(v.multi_table_into_clauses, scope)
        for (const when of Array.isArray(v.multi_table_when_clauses) ? v.multi_table_when_clauses : []) {
          if (!isObj(when)) continue
          this.intoClauses(when.into_clauses, scope)
          this.rest(when, scope, 'into_clauses')
        }
        this.rest(v, scope, 'table', 'table_name', 'multi_table_into_clauses', 'multi_table_when_clauses')
        return true
      }
      case 'Update': {
        if (!('table' in v)) return false
        this.out.dml.push('update')
        this.writeTableWithJoins(v.table, scope)
        this.rest(v, scope, 'table')
        return true
      }
      case 'Delete': {
        if (!('from' in v)) return false
        this.out.dml.push('delete')
        const from = isObj(v.from) ? (v.from.WithFromKeyword ?? v.from.WithoutKeyword) : undefined
        if (Array.isArray(v.tables) && v.tables.length > 0) {
          for (const name of v.tables) this.write(name)
          this.walk(from, scope)
        } else if (Array.isArray(from)) {
          for (const twj of from) this.writeTableWithJoins(twj, scope)
        }
        this.rest(v, scope, 'tables', 'from')
        return true
      }
      case 'Merge': {
        if (!('source' in v)) return false
        this.out.dml.push('merge')
        this.writeFactor(v.table, scope)
        this.rest(v, scope, 'table')
        return true
      }
      case 'CreateTable': {
        this.write(v.name)
        if (v.clone !== undefined && v.clone !== null) this.readName(v.clone)
        if (v.like !== undefined && v.like !== null) this.readName(nameIn(v.like))
        this.rest(v, scope, 'name', 'clone', 'like')
        return true
      }
      case 'CreateView':
      case 'AlterView':
        this.write(v.name)
        this.rest(v, scope, 'name')
        return true
      case 'CreateIndex':
      case 'CreateTrigger':
      case 'DropTrigger':
      case 'LoadData':
      case 'Msck':
      case 'Analyze':
      case 'Vacuum':
      case 'OptimizeTable':
        if (v.table_name !== undefined && v.table_name !== null) this.write(nameIn(v.table_name))
        this.rest(v, scope, 'table_name')
        return true
      case 'AlterTable': {
        this.write(v.name)
        for (const op of Array.isArray(v.operations) ? v.operations : []) {
          if (isObj(op) && isObj(op.RenameTable) && isObj(op.RenameTable.table_name)) {
            this.write(nameIn(op.RenameTable.table_name))
          }
        }
        this.rest(v, scope, 'name', 'operations')
        return true
      }
      case 'Drop':
        if (typeof v.object_type === 'string' && TABLE_OBJECTS.has(v.object_type) && Array.isArray(v.names)) {
          for (const name of v.names) this.write(name)
        }
        return true
      case 'Truncate':
        for (const t of Array.isArray(v.table_names) ? v.table_names : []) {
          if (isObj(t)) this.write(t.name)
        }
        return true
      case 'Grant':
      case 'Revoke':
      case 'Deny': {
        const objects = v.objects
        if (isObj(objects)) {
          for (const k of ['Tables', 'Views']) {
            const names = objects[k]
            if (Array.isArray(names)) for (const name of names) this.write(name)
          }
        }
        return true
      }
      case 'Comment':
        if (typeof v.object_type === 'string' && TABLE_OBJECTS.has(v.object_type)) this.write(v.object_name)
        return true
      case 'CopyIntoSnowflake': {
        if (v.kind === 'Table') this.write(v.into)
        else if (v.from_obj !== undefined && v.from_obj !== null && !isLocation(v.from_obj)) this.readName(v.from_obj)
        this.walk(v.from_query, scope)
        return true
      }
      case 'Copy': {
        const source = v.source
        if (isObj(source) && isObj(source.Table)) {
          if (v.to === true) this.readName(source.Table.table_name)
          else this.write(source.Table.table_name)
        } else {
          this.walk(source, scope)
        }
        return true
      }
      case 'ExplainTable':
        this.readName(v.table_name)
        return true
      case 'ShowCreate':
        if (typeof v.obj_type === 'string' && TABLE_OBJECTS.has(v.obj_type)) this.readName(v.obj_name)
        return true
      case 'Call': {
        // The procedure called is reported among the functions.
        const fn = functionName(v.name)
        if (fn !== undefined) this.out.functions.add(fn)
        this.rest(v, scope, 'name')
        return true
      }
      default:
        return false
    }
  }
}

function isQueryBody (body: Json): boolean {
  const keys = Object.keys(body)
  return keys.length === 1 && ['Select', 'Query', 'SetOperation', 'Values', 'Insert', 'Update', 'Delete', 'Merge', 'Table']
    .includes(keys[0] as string)
}

function cteName (cte: Json, dialect: Dialect): string | undefined {
  const alias = cte.alias
  if (!isObj(alias) || !isObj(alias.name) || typeof alias.name.value !== 'string') return undefined
  return normalizeIdent(alias.name as unknown as IdentJson, dialect)
}

/** An ObjectName nested one level in a wrapper enum (`{To: name}`, `{Plain: {name}}`, …). */
function nameIn (v: unknown): unknown {
  if (Array.isArray(v)) return v
  if (!isObj(v)) return undefined
  if (Array.isArray(v.name)) return v.name
  const keys = Object.keys(v)
  return keys.length === 1 ? nameIn(v[keys[0] as string]) : undefined
}

/** A Snowflake stage (`@stage/path`) or external location (`'s3://…'`), not a table. */
function isLocation (name: unknown): boolean {
  if (!Array.isArray(name)) return true
  const first = name[0]
  const ident = isObj(first) && isObj(first.Identifier) ? first.Identifier : first
  const value = isObj(ident) ? ident.value : undefined
  return typeof value !== 'string' || value.startsWith('@') || value.includes('://')
}

/**
 * Postgres `FROM ONLY orders`: sqlparser 0.62 reads the reserved word ONLY as the table name and
 * `orders` as its alias. ONLY can never be an unquoted table name in Postgres, so the alias is
 * the table. Returns the corrected name, or undefined when the factor is not this case.
 */
function onlyFix (t: Json, dialect: Dialect): unknown {
  if (dialect !== 'postgres' || !Array.isArray(t.name) || t.name.length !== 1) return undefined
  const part = t.name[0]
  const ident = isObj(part) && isObj(part.Identifier) ? part.Identifier : undefined
  if (ident === undefined || ident.quote_style != null || String(ident.value).toLowerCase() !== 'only') return undefined
  const alias = t.alias
  if (!isObj(alias) || alias.explicit === true || !isObj(alias.name)) return undefined
  return [{ Identifier: alias.name }]
}
