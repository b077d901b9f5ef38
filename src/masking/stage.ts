// The pipeline's mask stage: inference check at admission, a plan per result (lineage + rules in
// force + result schema), and the page masker applied to every page on every result path.
import { createHmac, randomBytes } from 'node:crypto'
import type { ConnectionConfig, MaskingConfig } from '../config/types.js'
import { ERR_MASKING_INFERENCE, ERR_MASKING_UNRESOLVED } from '../errors.js'
import type { MaskStage } from '../pipeline/stages.js'
import type { Admission, MaskCount, MaskPlan, ResultPage, Statement } from '../pipeline/types.js'
import type { CompiledMaskingRule } from '../policy/model.js'
import { treeOf } from '../sql/ast.js'
import { lineageOf, traceStatement, type StatementLineage } from '../sql/lineage.js'
import type { Dialect, StatementAnalysis } from '../sql/types.js'
import { createScanner, DETECTOR_KINDS, type DetectorKind, type Scanner } from './detectors.js'
import { safeUpstreamMessage } from './errors.js'
import type { MaskSecrets } from './functions.js'
import { inferenceViolation, untracedRoute } from './inference.js'
import { createPageMasker } from './page.js'
import { guardRule, planColumns } from './planner.js'
import { activeRules, exemptedRules } from './rules.js'

export interface MaskStageOptions {
  /** The masking rules of the policy set in force now (re-read per statement: hot reload). */
  rules: () => readonly CompiledMaskingRule[]
  /** Top-level `masking` settings; defaults apply when absent. */
  settings?: Partial<MaskingConfig>
  /** Connections, for their `masking` overrides. */
  connections?: Readonly<Record<string, Pick<ConnectionConfig, 'masking'>>>
  /** Column names of a table, when a catalogue knows them (star expansion before the result). */
  schemaOf?: (connection: string, table: string) => readonly string[] | undefined
  /**
   * Root of the default salt and token key where `masking.salt` / `masking.tokenKey` are not
   * set: shared by replicas when derived from `secrets.key`; random per process when absent.
   */
  secret?: Buffer
}

export interface MaskingStage extends MaskStage {
  /** Throws SLUICE_MASKING_INFERENCE / SLUICE_MASKING_UNRESOLVED before anything runs upstream. */
  check (statement: Statement, admission: Admission): void
  /** Always present here: the configured stage never releases an upstream error as it is. */
  safeError: NonNullable<MaskStage['safeError']>
}

const DIALECTS: Record<string, Dialect> = { snowflake: 'snowflake', bigquery: 'bigquery', postgres: 'postgres' }

/** Kinds whose results pass through the masker (or carry only metadata). */
const TRACED_RESULTS: ReadonlySet<string> = new Set(['select', 'show'])

/** Statements whose results may come from any table: unparsed SQL, procedures, scripts. */
const OPAQUE: ReadonlySet<string> = new Set(['unknown', 'call', 'scripting'])

interface Effective {
  unresolved: 'mask' | 'deny'
  detectors: { mode: 'mask' | 'flag' | 'off', kinds?: DetectorKind[] }
  secrets: MaskSecrets
}

export function createMaskStage (options: MaskStageOptions): MaskingStage {
  // Kept with the analysed statement itself, per connection context: the inference check and
  // the plan of one request share it, and a statement the analyzer caches (every repeated small
  // one) keeps its lineage exactly as long as its analysis. Keyed by the text instead, every
  // lookup of a 1 MB statement built and hashed a 1 MB key, and the cache held it.
  const lineages = new WeakMap<StatementAnalysis, Map<string, StatementLineage>>()
  const pages = new WeakMap<MaskPlan, (page: ResultPage) => ResultPage>()
  // Without configured secrets, salts and keys come from secrets.key (shared by replicas) or are
  // random per process: safe, but tokens and hashes then change on restart.
  const processSecret = options.secret ?? randomBytes(32)
  // Every plan asks for its connection's salt and key: two HMACs a request, 2% of a small
  // statement's gateway CPU in a profile. They depend only on the secret and the connection's
  // name; connections are configured, and the bound keeps any other name from growing it.
  const derivedOnce = new Map<string, string>()
  const derived = (purpose: string, connection: string): string => {
    const input = `${purpose}\u0000${connection}`
    let out = derivedOnce.get(input)
    if (out === undefined) {
      out = createHmac('sha256', processSecret).update(input).digest('hex')
      if (derivedOnce.size >= 1024) derivedOnce.clear()
      derivedOnce.set(input, out)
    }
    return out
  }

  function effective (connection: string): Effective {
    const own = options.connections?.[connection]?.masking ?? {}
    const top = options.settings ?? {}
    const detectors = { mode: 'mask' as const, ...top.detectors, ...own.detectors }
    const salt = own.salt ?? (top.salt === undefined ? derived('salt', connection) : `${top.salt}\u0000${connection}`)
    return {
      unresolved: own.unresolved ?? top.unresolved ?? 'mask',
      detectors: { mode: detectors.mode, ...(detectors.kinds !== undefined && { kinds: detectors.kinds as DetectorKind[] }) },
      secrets: { salt, tokenKey: own.tokenKey ?? top.tokenKey ?? derived('token', '') }
    }
  }

  function lineageFor (statement: Statement, analysed: StatementAnalysis): StatementLineage {
    const text = analysed.text
    const dialect = DIALECTS[statement.connection.kind] ?? 'postgres'
    const { database = '', schema = '' } = statement.connection.defaults
    const key = `${statement.connection.name}\u0000${dialect}\u0000${database}\u0000${schema}`
    let known = lineages.get(analysed)
    if (known === undefined) {
      known = new Map()
      lineages.set(analysed, known)
    }
    let hit = known.get(key)
    if (hit === undefined) {
      const schemaOf = options.schemaOf
      try {
        const trace = {
          dialect,
          defaults: statement.connection.defaults,
          ...(schemaOf !== undefined && { schemaOf: (table: string) => schemaOf(statement.connection.name, table) })
        }
        // The analyzer's own parse tree when it kept one: a statement is parsed once, off the
        // event loop; only an analysis made elsewhere (tests, a pass-through) is parsed here.
        const tree = treeOf(analysed)
        const traced = tree !== undefined ? [traceStatement(tree, trace)] : lineageOf(text, trace)
        hit = traced.length === 1 ? traced[0] as StatementLineage : { outputs: [], uses: traced.flatMap((t) => t.uses), unresolved: 'several statements in one text' }
      } catch (err) {
        // A walk that fails (an AST shape never met, nesting too deep) knows nothing: every
        // column is unresolved and any use of masked data is refused (the `?` use).
        const why = `lineage failed: ${err instanceof Error ? err.message : String(err)}`
        hit = { outputs: [], uses: [{ column: '?', usage: 'expression', clause: 'where', unresolved: why }], unresolved: why }
      }
      known.set(key, hit)
    }
    return hit
  }

  /** The analysed statement a (possibly split) statement text belongs to. */
  function analysed (statement: Statement, admission: Admission): StatementAnalysis | undefined {
    const list = admission.analysis.statements
    if (list.length === 1) return list[0]
    const text = statement.sql.trim().replace(/;\s*$/, '')
    return list.find((s) => s.text.trim().replace(/;\s*$/, '') === text)
  }

  // Error messages are scanned with the connection's detector kinds whatever its mode: a value
  // in an error cannot be counted or flagged per column, so it is always redacted.
  const scanners = new Map<string, Scanner>()
  function errorScanner (connection: string | undefined): Scanner {
    const kinds = connection === undefined ? DETECTOR_KINDS : effective(connection).detectors.kinds ?? DETECTOR_KINDS
    const key = [...kinds].sort().join(',')
    let scan = scanners.get(key)
    if (scan === undefined) {
      scan = createScanner(kinds)
      scanners.set(key, scan)
    }
    return scan
  }

  function rulesFor (statement: Statement): CompiledMaskingRule[] {
    return activeRules(options.rules(), statement.principal.roles, statement.connection.name)
  }

  return {
    name: 'mask',
    enforcing: true,

    check (statement, admission) {
      const rules = rulesFor(statement)
      if (rules.length === 0) return
      const settings = effective(statement.connection.name)
      for (const s of admission.analysis.statements) {
        if (s.kind === 'unknown') continue
        let guard = guardRule([...s.tablesRead, ...s.tablesWritten], rules)
        if (guard === undefined && s.kind !== 'select') continue
        const lineage = lineageFor(statement, s)
        // A table function whose sources Sluice cannot see may read any masked table.
        const first = rules[0] as CompiledMaskingRule
        if (guard === undefined && lineage.opaque !== undefined) guard = { rule: first, table: `table function ${lineage.opaque.map((f) => f.toUpperCase()).join(', ')} (Sluice cannot see which tables it reads)` }
        if (guard === undefined) continue
        const violation = inferenceViolation(lineage.uses, rules, guard.rule)
        if (violation !== undefined) throw new ERR_MASKING_INFERENCE(violation.rule, violation.reason)
        // A statement that reads masked data and returns or writes it by a route lineage cannot
        // follow (COPY INTO a stage, COPY … TO STDOUT, MERGE) could take values out unmasked.
        const reads = guardRule(s.tablesRead, rules)
        if (lineage.unresolved !== undefined && reads !== undefined && !TRACED_RESULTS.has(s.kind)) {
          throw new ERR_MASKING_INFERENCE(reads.rule.id, untracedRoute(s, reads.table, lineage.unresolved))
        }
        if (settings.unresolved === 'deny' && s.kind === 'select') {
          const why = lineage.unresolved ?? (lineage.opaque !== undefined ? `the rows of table function ${lineage.opaque.join(', ')} are not traced` : undefined) ??
            lineage.outputs.find((o) => o.kind === 'column' && o.unresolved !== undefined)?.unresolved
          if (why !== undefined) {
            throw new ERR_MASKING_UNRESOLVED(guard.rule.id, `a result column cannot be traced (${why}) and the statement reads ${guard.table}, which has masking rules; name the columns explicitly`)
          }
        }
      }
    },

    plan (statement, admission, schema) {
      const rules = rulesFor(statement)
      const settings = effective(statement.connection.name)
      const s = analysed(statement, admission)
      const counts: MaskCount[] = []
      const lineage = s === undefined ? undefined : lineageFor(statement, s)
      const columns = planColumns({
        lineage,
        tablesRead: s === undefined ? admission.analysis.statements.flatMap((x) => x.tablesRead) : s.tablesRead,
        rules,
        exempted: exemptedRules(options.rules(), statement.principal.roles, statement.connection.name),
        schema,
        unresolved: settings.unresolved,
        why: s === undefined ? 'the result could not be matched to an analysed statement' : undefined,
        reads: s === undefined || OPAQUE.has(s.kind) ? 'opaque' : s.kind === 'show' ? 'metadata' : 'tables'
      })
      if (columns.deny !== undefined) throw new ERR_MASKING_UNRESOLVED(columns.deny.rule, columns.deny.reason)
      const plan: MaskPlan = {
        columns: columns.columns.map(({ spec: _spec, structured: _s, ...c }) => c),
        counts
      }
      const kind = statement.connection.kind
      pages.set(plan, createPageMasker({
        schema,
        kind,
        secrets: settings.secrets,
        columns: columns.columns,
        uncovered: columns.uncovered,
        skip: columns.skip,
        structured: columns.structured,
        detectors: settings.detectors,
        counts
      }))
      return plan
    },

    mask (plan, page) {
      const apply = pages.get(plan)
      return apply === undefined ? page : apply(page)
    },

    safeError (statement, admission, message, codes = {}) {
      const scan = errorScanner(statement?.connection.name)
      // Without a statement the rules in force are unknown; the detectors still run.
      const rules = statement === undefined ? [] : rulesFor(statement)
      return safeUpstreamMessage(message, { ...codes, rules, scan, ...(admission !== undefined && { statements: admission.analysis.statements }) })
    }
  }
}
