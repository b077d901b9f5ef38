// `sluice policy test <cases.yaml>` and `sluice policy explain`: the policy engine run from a
// terminal or a policy repository's CI, with the same analyzer and loader as the gateway.
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ERR_BAD_REQUEST } from '../errors.js'
import { explain, formatCasesReport, parsePolicyCases, runPolicyCases } from '../policy/cases.js'
import { createPolicyEngine } from '../policy/evaluator.js'
import { loadPolicyDirectory } from '../policy/loader.js'
import { createSqlAnalyzer } from '../sql/analyzer.js'
import type { Dialect, QualifyDefaults } from '../sql/types.js'
import { configFrom, parseCommon } from './options.js'

const KINDS: readonly Dialect[] = ['snowflake', 'bigquery', 'postgres']

export async function runPolicy (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'test') return await policyTest(rest)
  if (sub === 'explain') return await policyExplain(rest)
  throw new ERR_BAD_REQUEST('usage: sluice policy test <cases.yaml> | sluice policy explain --role R --connection C "SQL"')
}

function policiesDirectory (values: { config?: string | boolean | (string | boolean)[], policies?: unknown }): { dir: string, connections: Record<string, { kind: string, defaults: QualifyDefaults }> } {
  const { config } = configFrom(values)
  const connections = Object.fromEntries(Object.entries(config.connections).map(([name, c]) => [name, {
    kind: c.kind,
    defaults: { database: stringOr(c.database ?? c.project), schema: stringOr(c.schema ?? c.dataset) }
  }]))
  return { dir: typeof values.policies === 'string' ? values.policies : config.policies.directory, connections }
}

function stringOr (value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

async function policyTest (args: string[]): Promise<number> {
  const { values, positionals } = parseCommon(args, { policies: { type: 'string' } })
  if (positionals.length !== 1) throw new ERR_BAD_REQUEST('usage: sluice policy test [--policies DIR] <cases.yaml>')
  const file = positionals[0] as string
  const { dir } = policiesDirectory(values)
  const engine = createPolicyEngine(await loadPolicyDirectory(dir))
  const analyzer = await createSqlAnalyzer()
  const cases = parsePolicyCases(await readFile(resolve(file), 'utf8'), file)
  const report = runPolicyCases(cases, engine, (sql, dialect) => analyzer.analyze(sql, dialect))
  process.stdout.write(`${formatCasesReport(report)}\n`)
  return report.ok ? 0 : 1
}

async function policyExplain (args: string[]): Promise<number> {
  const { values, positionals } = parseCommon(args, {
    policies: { type: 'string' },
    role: { type: 'string', multiple: true },
    group: { type: 'string', multiple: true },
    subject: { type: 'string' },
    machine: { type: 'boolean' },
    connection: { type: 'string' },
    kind: { type: 'string' }
  })
  const sql = positionals.join(' ').trim()
  if (sql === '' || typeof values.connection !== 'string') {
    throw new ERR_BAD_REQUEST('usage: sluice policy explain --role R [--role R2] [--group G] [--machine] --connection C [--kind snowflake|bigquery|postgres] "SQL"')
  }
  const { dir, connections } = policiesDirectory(values)
  const known = connections[values.connection]
  const kind = (typeof values.kind === 'string' ? values.kind : known?.kind) as Dialect | undefined
  if (kind === undefined || !KINDS.includes(kind)) {
    throw new ERR_BAD_REQUEST(`connection ${values.connection} is not configured; name its kind with --kind snowflake|bigquery|postgres`)
  }
  const engine = createPolicyEngine(await loadPolicyDirectory(dir))
  const analyzer = await createSqlAnalyzer()
  const result = explain({
    principal: {
      subject: typeof values.subject === 'string' ? values.subject : 'policy-explain',
      type: values.machine === true ? 'machine' : 'human',
      roles: (values.role as string[] | undefined) ?? [],
      groups: (values.group as string[] | undefined) ?? []
    },
    connection: { name: values.connection, kind },
    sql
  }, engine, (text, dialect) => analyzer.analyze(text, dialect, known?.defaults))
  process.stdout.write(`${result.text}\n`)
  return 0
}
