// The README's PostgreSQL client settings, run as the README writes them: the psql line, the
// psycopg, node-postgres and postgres.js snippets and the connection URL are read from
// README.md's "### PostgreSQL" section, pointed at a Sluice with TLS required (only the host,
// port and dbname are replaced, and a query added), and each must read masked rows. The
// gateway's certificate is self-signed for 127.0.0.1; node-postgres, which checks it, is given
// it through NODE_EXTRA_CA_CERTS, as the README says.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWireGateway, type WireGateway } from './harness.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PYTHON = join(ROOT, '.venv/bin/python')
const QUERY = 'select name, email from customers order by id'

let w: WireGateway
let certDir: string
let scratch: string
let blocks: Array<{ lang: string, code: string }>

beforeAll(async () => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('\n### PostgreSQL\n'), readme.indexOf('\n## Performance\n'))
  blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1] as string, code: m[2] as string }))
  certDir = await mkdtemp(join(tmpdir(), 'sluice-pgreadme-'))
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')])
  const tls = { cert: await readFile(join(certDir, 'cert.pem'), 'utf8'), key: await readFile(join(certDir, 'key.pem'), 'utf8') }
  w = await startWireGateway(undefined, { requireTls: true, tls })
  // Inside the repository, so the snippets resolve pg and postgres from its node_modules.
  scratch = join(ROOT, '.sluice', `readme-examples-${process.pid}`)
  await mkdir(scratch, { recursive: true })
}, 120_000)
afterAll(async () => {
  await w?.close()
  await rm(certDir, { recursive: true, force: true })
  await rm(scratch, { recursive: true, force: true })
})

/** The README's placeholders pointed at this gateway. */
function local (code: string): string {
  return code.replaceAll('sluice.example.com', '127.0.0.1').replaceAll('5433', String(w.port)).replaceAll('app-prod', 'app-db')
}

async function env (): Promise<NodeJS.ProcessEnv> {
  return { ...process.env, OIDC_ACCESS_TOKEN: await w.token(), NODE_EXTRA_CA_CERTS: join(certDir, 'cert.pem'), PGCONNECT_TIMEOUT: '20' }
}

function block (lang: string, contains: string): string {
  const found = blocks.find((b) => b.lang === lang && b.code.includes(contains))
  if (found === undefined) throw new Error(`README's PostgreSQL section has no ${lang} block with ${contains}`)
  return found.code
}

const MASKED = [['Ada', '****'], ['Bob', '****']]

describe("the README's PostgreSQL examples, through Sluice with TLS required", () => {
  it('psql', async () => {
    const line = local(block('sh', 'psql').trim())
    const { stdout } = await run('bash', ['-c', `${line} -X -A -t -F '|' -c '${QUERY}'`], { env: await env() })
    expect(stdout.trim().split('\n').map((l) => l.split('|'))).toEqual(MASKED)
  })

  it('psycopg', async () => {
    const file = join(scratch, 'psycopg_example.py')
    await writeFile(file, `${local(block('python', 'psycopg'))}\nprint(json.dumps(conn.execute("${QUERY}").fetchall()))\n`.replace('import os\n', 'import os\nimport json\n'))
    const { stdout } = await run(PYTHON, [file], { env: await env() })
    expect(JSON.parse(stdout)).toEqual(MASKED)
  })

  it('node-postgres and postgres.js', async () => {
    const file = join(scratch, 'node-example.mjs')
    await writeFile(file, `${local(block('js', "from 'pg'"))}
await client.connect()
const viaPg = (await client.query('${QUERY}')).rows.map((r) => [r.name, r.email])
await client.end()
const viaPostgresJs = (await sql.unsafe('${QUERY}')).map((r) => [r.name, r.email])
await sql.end()
console.log(JSON.stringify({ viaPg, viaPostgresJs }))
`)
    const { stdout } = await run(process.execPath, [file], { env: await env(), cwd: scratch })
    expect(JSON.parse(stdout)).toEqual({ viaPg: MASKED, viaPostgresJs: MASKED })
  })

  it('the connection URL, with psql and with node-postgres (as the MCP Postgres server connects)', async () => {
    const url = local(block('text', 'postgres://').trim()).replace('<token>', await w.token())
    const { stdout } = await run('psql', [url, '-X', '-A', '-t', '-F', '|', '-c', QUERY], { env: await env() })
    expect(stdout.trim().split('\n').map((l) => l.split('|'))).toEqual(MASKED)
    // The MCP config names the same URL.
    expect(block('json', 'mcpServers')).toContain(block('text', 'postgres://').trim())
    const file = join(scratch, 'url-example.mjs')
    await writeFile(file, `import pg from 'pg'
const pool = new pg.Pool({ connectionString: process.env.URL })
const rows = (await pool.query('${QUERY}')).rows.map((r) => [r.name, r.email])
await pool.end()
console.log(JSON.stringify(rows))
`)
    const out = await run(process.execPath, [file], { env: { ...await env(), URL: url }, cwd: scratch })
    expect(JSON.parse(out.stdout)).toEqual(MASKED)
  })

  it('refuses the same settings without TLS', async () => {
    const line = local(block('sh', 'psql').trim()).replace('sslmode=require', 'sslmode=disable')
    const err = await run('bash', ['-c', `${line} -X -c 'select 1'`], { env: await env() }).catch((e: unknown) => e) as { stderr: string }
    expect(err.stderr).toMatch(/TLS|SSL/i)
  })
})
