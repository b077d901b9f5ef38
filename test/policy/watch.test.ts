// Analyses here are hand-built fixtures, not analyzer output.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { PolicyStore } from '../../src/policy/watch.js'
import { analysis, input, stmt } from './fixtures.js'

const ALLOW_SELECT = 'version: 1\nrules:\n  - { id: reads, effect: allow, match: { kinds: [select] } }\n'
const DENY_SELECT = 'version: 1\nrules:\n  - { id: no-reads, effect: deny, match: { kinds: [select] } }\n'

function once<T extends unknown[]> (store: PolicyStore, event: 'reload' | 'error'): Promise<T> {
  return new Promise((resolve) => store.once(event, (...args: unknown[]) => resolve(args as T)))
}

describe('PolicyStore hot reload', () => {
  let dir: string
  let store: PolicyStore | undefined
  const decideSelect = () => store?.engine.decide(input(analysis(stmt('select'))))

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-watch-'))
    await writeFile(join(dir, 'main.yaml'), ALLOW_SELECT)
  })
  afterEach(async () => {
    store?.close()
    store = undefined
    await rm(dir, { recursive: true, force: true })
  })

  test('a new valid file changes the engine', async () => {
    store = await PolicyStore.open(dir, { debounceMs: 20 })
    const before = store.current.version
    expect(decideSelect()?.ruleId).toBe('reads')
    const reloaded = once<[unknown, string]>(store, 'reload')
    await writeFile(join(dir, '00-first.yaml'), DENY_SELECT)
    const [, previous] = await reloaded
    expect(previous).toBe(before)
    expect(store.current.version).not.toBe(before)
    // `engine` is the stable handle the pipeline keeps; it follows the reload.
    expect(decideSelect()).toMatchObject({ effect: 'deny', ruleId: 'no-reads' })
    expect(store.engine.version).toBe(store.current.version)
  })

  test('an invalid new version keeps the old engine and reports why', async () => {
    const logged: string[] = []
    const logger = { info: () => {}, warn: () => {}, error: (_: object, msg?: string) => { logged.push(msg ?? '') } }
    store = await PolicyStore.open(dir, { debounceMs: 20, logger })
    const before = store.current
    const failed = once<[Error & { code: string }]>(store, 'error')
    await writeFile(join(dir, 'main.yaml'), 'version: 1\nrules:\n  - { id: reads, effect: maybe }\n')
    const [err] = await failed
    expect(err.code).toBe('SLUICE_POLICY_INVALID')
    expect(err.message).toContain('main.yaml is invalid: /rules/0/effect')
    expect(store.current).toBe(before)
    expect(decideSelect()?.ruleId).toBe('reads')
    expect(logged.some((m) => m.includes(`keeping version ${before.version}`))).toBe(true)

    // Fixing the file is picked up again.
    const reloaded = once(store, 'reload')
    await writeFile(join(dir, 'main.yaml'), DENY_SELECT)
    await reloaded
    expect(decideSelect()?.ruleId).toBe('no-reads')
  })

  test('removing the last file falls back to default deny, never to allow', async () => {
    store = await PolicyStore.open(dir, { debounceMs: 20 })
    const reloaded = once(store, 'reload')
    await unlink(join(dir, 'main.yaml'))
    await reloaded
    expect(decideSelect()).toMatchObject({ effect: 'deny', ruleId: 'default-deny' })
  })

  test('an error with no listener does not throw; reload() reports unchanged content as false', async () => {
    store = await PolicyStore.open(dir, { watch: false })
    expect(await store.reload()).toBe(false)
    await writeFile(join(dir, 'main.yaml'), 'version: 1\nrules: [\n')
    expect(await store.reload()).toBe(false)
    await writeFile(join(dir, 'main.yaml'), DENY_SELECT)
    expect(await store.reload()).toBe(true)
  })

  test('an invalid directory at start is refused', async () => {
    await writeFile(join(dir, 'main.yaml'), 'version: 1\nrules: 5\n')
    await expect(PolicyStore.open(dir)).rejects.toThrow('/rules (line 2, column 8): must be array')
  })
})
