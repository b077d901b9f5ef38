// snowflake-connector-python's get_query_status when Sluice no longer knows the session: the
// refusal must carry `data.queries` (the driver parses it before success and code), so the
// agent is told its session is gone instead of the driver failing on "missing field `queries`".
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { PYTHON } from '../support/snowflake-python.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const SCRIPT = fileURLToPath(new URL('./python/monitoring_client.py', import.meta.url))

describe('Python connector monitoring after the Sluice session is gone', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let dir: string

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT 1', { rowtype: [{ name: 'N', type: 'fixed', scale: 0, precision: 38, nullable: false }], rowset: [['1']] })
    gw = await startSnowflakeGateway({ connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' } } })
    dir = await mkdtemp(join(tmpdir(), 'sluice-monitoring-'))
  })
  afterAll(async () => {
    await gw?.close()
    await stub?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('reports the session error, not a parse failure', async () => {
    const flag = join(dir, 'dropped')
    const child = spawn(PYTHON, [SCRIPT, JSON.stringify({ account: 'acme', port: gw.port, token: await gw.token('alice'), flag })],
      { env: { ...process.env, PYTHONWARNINGS: 'ignore' } })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>((resolve) => { child.on('close', resolve) })
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString()
        if (stdout.includes('READY')) resolve()
      })
      child.on('close', () => { reject(new Error(`monitoring_client.py ended early:\n${stdout}\n${stderr.slice(-3000)}`)) })
    })
    // What a restarted (or swept) gateway looks like to the client: its session is unknown.
    await gw.store.query('delete from connector_sessions')
    await writeFile(flag, '')
    expect(await exited, stderr.slice(-3000)).toBe(0)
    const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { before: string, after: { error?: { msg: string } } | string }
    expect(out.before).toBe('SUCCESS')
    expect(typeof out.after === 'object' ? out.after.error?.msg : out.after).not.toMatch(/missing field/)
    expect(out.after).toMatchObject({ error: { msg: expect.stringMatching(/session is not valid|390104/) } })
  }, 120_000)
})
