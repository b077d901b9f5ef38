// `sluice audit verify | export | retention` as an operator runs them (in-process `main`, the
// same code the binary runs): against the store, against an export file, with the private key
// from the configuration or only the public key, and after tampering.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../src/cli/main.js'
import { Recording } from '../../src/recording/recorder.js'
import { migrate } from '../../src/store/migrate.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import { createThrowawayDatabase, type ThrowawayDatabase } from '../support/stores.js'
import { alice, ed25519Pem, facts, recordingConfig } from './helpers.js'

async function run (args: string[]): Promise<{ code: number, out: string }> {
  let out = ''
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString()
    return true
  })
  try {
    return { code: await main(args), out }
  } finally {
    spy.mockRestore()
  }
}

describe('sluice audit', { timeout: 120_000 }, () => {
  let db: ThrowawayDatabase
  let dir: string
  let config: string
  const keys = ed25519Pem()

  beforeAll(async () => {
    db = await createThrowawayDatabase()
    dir = await mkdtemp(join(tmpdir(), 'sluice-audit-'))
    await writeFile(join(dir, 'checkpoint.pem'), keys.privatePem)
    await writeFile(join(dir, 'checkpoint.pub.pem'), keys.publicPem)
    config = join(dir, 'sluice.yaml')
    await writeFile(config, `store:\n  url: ${db.url}\nrecording:\n  checkpointKey: \${file:checkpoint.pem}\n  retention: { intervalSeconds: 0 }\n`)
    const store = openPostgresStore({ url: db.url, poolSize: 2 })
    await migrate(store)
    const recording = new Recording(store, recordingConfig({ checkpointKey: keys.privatePem }))
    for (let i = 0; i < 5; i++) await recording.record(facts({ startedAtMicros: Date.parse('2026-11-20T10:00:00Z') * 1000 + i }), { sessionKey: 'cli', principal: alice, frontEnd: 'test' })
    await recording.close()
    await store.close()
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
    await db?.drop()
  })

  it('verifies the store', async () => {
    const { code, out } = await run(['audit', 'verify', '--config', config])
    expect(out).toMatch(/^OK: 5 events in 1 chains, 1 checkpoints, 0 issues, 0 warnings$/m)
    expect(code).toBe(0)
  })

  it('exports JSON Lines to a file that verifies with the public key alone, and CSV to stdout', async () => {
    const file = join(dir, 'export.jsonl')
    const exported = await run(['audit', 'export', '--config', config, '--since', '2026-11-20T00:00:00Z', '--until', '2026-11-21T00:00:00Z', '--format', 'jsonl', '--out', file])
    expect(exported.code).toBe(0)
    expect((await readFile(file, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type))
      .toEqual(['export', 'chain', 'checkpoint', 'event', 'event', 'event', 'event', 'event', 'seal'])
    const verified = await run(['audit', 'verify', '--config', config, '--file', file, '--public-key', join(dir, 'checkpoint.pub.pem')])
    expect(verified.out).toContain('OK: 5 events')
    expect(verified.code).toBe(0)

    const lines = (await readFile(file, 'utf8')).trim().split('\n')
    lines.splice(4, 1)
    await writeFile(join(dir, 'cut.jsonl'), `${lines.join('\n')}\n`)
    const cut = await run(['audit', 'verify', '--config', config, '--file', join(dir, 'cut.jsonl'), '--json'])
    expect(cut.code).toBe(1)
    expect((JSON.parse(cut.out) as { issues: Array<{ kind: string }> }).issues.map((i) => i.kind)).toEqual(expect.arrayContaining(['deleted', 'modified']))

    const csv = await run(['audit', 'export', '--config', config, '--format', 'csv'])
    expect(csv.code).toBe(0)
    expect(csv.out.trim().split('\n')).toHaveLength(6)
  })

  it('fails and names the event after tampering in the store', async () => {
    const store = openPostgresStore({ url: db.url, poolSize: 1 })
    await store.query("update session_events set principal_subject = 'mallory' where seq = 2")
    await store.close()
    const { code, out } = await run(['audit', 'verify', '--config', config])
    expect(code).toBe(1)
    expect(out).toMatch(/^MODIFIED  chain \S+ seq 2 event \d+ request \S+: content no longer matches its digest$/m)
  })

  it('runs retention once', async () => {
    const { code, out } = await run(['audit', 'retention', '--config', config])
    expect(code).toBe(0)
    expect(JSON.parse(out)).toMatchObject({ eventsDeleted: 0 })
  })
})
