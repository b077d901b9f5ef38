// Property-based conformance: schemathesis generates requests from the published descriptions —
// Snowflake's SQL API v2 document (snowflake-sqlapi.yaml) and Sluice's /admin/v1/openapi.json —
// and sends them with an agent's, an auditor's and no token to a gateway on fakesnow running the
// shipped default policy. Every run must pass: no 5xx, responses conform to the document (with
// the deviations in DEVIATIONS.md), a denied statement is never answered as a success, and 401 /
// 403 come before any validation detail (the checks are in hooks.py).
//
// Each run is bounded by its examples per operation (schemathesis's --max-time is a budget it
// spends in full, not a cap) and its seed is fixed, so a failure reproduces; SLUICE_ST_SEED picks
// another seed and SLUICE_ST_EXAMPLES more examples. The six runs take about a minute.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ST = join(ROOT, '.venv/schemathesis/bin/st')
const SEED = process.env.SLUICE_ST_SEED ?? '20260101'
const EXAMPLES = process.env.SLUICE_ST_EXAMPLES ?? '25'

// Deviations the runs apply outside hooks.py: schemathesis checks left out, by DEVIATIONS.md id.
const EXCLUDED: Record<string, Record<string, string>> = {
  sqlapi: { 'policy-refusals': 'positive_data_acceptance' },
  admin: {}
}

type Api = 'sqlapi' | 'admin'
type Role = 'agent' | 'auditor' | 'none'

interface Run { code: number | null, output: string }

describe('schemathesis against the SQL API and the admin API', () => {
  let fakesnow: Fakesnow
  let gw: SnowflakeGateway
  let work: string
  const tokens: Record<Role, string> = { agent: '', auditor: '', none: '' }

  beforeAll(async () => {
    // Fail, never skip: CI must have installed it (npm test runs setup-python.sh).
    if (!existsSync(ST)) throw new Error(`schemathesis is not installed at ${ST}: run test/support/setup-python.sh`)
    fakesnow = await startFakesnow()
    gw = await startSnowflakeGateway({
      connections: {
        fake: { kind: 'snowflake', url: fakesnow.url, secondaryRoles: 'keep', default: true, user: 'sluice', password: 'upstream-secret', database: SEED_DATABASE, schema: SEED_SCHEMA, syncWaitSeconds: 5 }
      },
      // The shipped default policy: agents read; DDL, DCL and writes are refused.
      stages: 'configured',
      groupRoles: { security: ['auditor'] }
    })
    tokens.agent = await gw.token('alice')
    tokens.auditor = await gw.idp.userToken({ subject: 'carol', groups: ['security'] })
    // schemathesis and hypothesis write their caches into the working directory: not the repo's.
    work = await mkdtemp(join(tmpdir(), 'sluice-schemathesis-'))
  }, 600_000) // fakesnow is installed on first use

  afterAll(async () => {
    await gw?.close()
    await fakesnow?.close()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  async function schemathesis (api: Api, role: Role): Promise<Run> {
    const location = api === 'sqlapi' ? join(HERE, 'snowflake-sqlapi.yaml') : `${gw.url}/admin/v1/openapi.json`
    const args = [
      'run', location, '--url', api === 'sqlapi' ? gw.url : `${gw.url}/admin/v1`,
      '--checks', 'all', '--phases', 'examples,coverage,fuzzing',
      '--max-examples', EXAMPLES, '--seed', SEED,
      '--request-timeout', '30', '--workers', '1', '--generation-database', 'none', '--no-color'
    ]
    const excluded = Object.values(EXCLUDED[api] ?? {})
    if (excluded.length > 0) args.push('--exclude-checks', excluded.join(','))
    if (role !== 'none') args.push('--header', `Authorization: Bearer ${tokens[role]}`)
    const env = {
      ...process.env,
      PYTHONPATH: HERE,
      SCHEMATHESIS_HOOKS: 'hooks',
      SLUICE_ST_API: api,
      SLUICE_ST_ROLE: role,
      SLUICE_ST_TOKEN: tokens[role],
      SLUICE_ST_BASE: gw.url,
      SLUICE_ST_AUDITOR: tokens.auditor,
      PYTHONWARNINGS: 'ignore',
      // No __pycache__ beside hooks.py in the checkout.
      PYTHONDONTWRITEBYTECODE: '1'
    }
    return await new Promise((resolve) => {
      execFile(ST, args, { cwd: work, env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
        resolve({ code, output: `${stdout}\n${stderr}` })
      })
    })
  }

  /** The FAILURES section, each line capped: a generated URL can be tens of kilobytes. */
  function failures (output: string): string {
    const start = output.indexOf('= FAILURES =')
    const section = start === -1 ? output.slice(-8000) : output.slice(start, output.indexOf('= SUMMARY =', start) + 2000)
    return section.split('\n').map((line) => (line.length > 400 ? `${line.slice(0, 400)}…` : line)).join('\n').slice(0, 30_000)
  }

  const runs: Array<[Api, Role]> = [
    ['sqlapi', 'agent'], ['sqlapi', 'auditor'], ['sqlapi', 'none'],
    ['admin', 'auditor'], ['admin', 'agent'], ['admin', 'none']
  ]

  it.each(runs)('%s with the %s token: no 5xx, conformant answers, auth first, nothing denied answered as success', async (api, role) => {
    const run = await schemathesis(api, role)
    // The report's failures when it fails: each names its check, the answer and how to replay it.
    expect(run.code, failures(run.output)).toBe(0)
    const summary = /(\d+) generated, (\d+) passed/.exec(run.output)
    expect(summary, run.output.slice(-4000)).not.toBeNull()
    expect(Number(summary?.[1])).toBeGreaterThan(50)
    expect(summary?.[2]).toBe(summary?.[1])
  }, 300_000)

  it('applies exactly the deviations DEVIATIONS.md marks as applied by the runs', async () => {
    const doc = await readFile(join(HERE, 'DEVIATIONS.md'), 'utf8')
    const marked = [...doc.matchAll(/^- \*\*([a-z0-9-]+)\*\* \(run\)/gm)].map((m) => m[1]).sort()
    const hooks = await readFile(join(HERE, 'hooks.py'), 'utf8')
    const applied = JSON.parse((/^APPLIED = (\[.*\])$/m.exec(hooks)?.[1] ?? '[]').replace(/'/g, '"')) as string[]
    const excluded = Object.values(EXCLUDED).flatMap((byId) => Object.keys(byId))
    expect([...applied, ...excluded].sort()).toEqual(marked)
  })
})
