import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

function dirWith (files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'))
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
  return dir
}

function load (yaml: string, env: NodeJS.ProcessEnv = {}, extra: Record<string, string> = {}) {
  const cwd = dirWith({ 'sluice.yaml': yaml, ...extra })
  return loadConfig({ cwd, env }).config
}

function loadError (yaml: string, env: NodeJS.ProcessEnv = {}): Error & { code?: string } {
  try {
    load(yaml, env)
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected the configuration to be refused')
}

describe('configuration', () => {
  it('runs on built-in defaults when the default file is absent', () => {
    const { config, source } = loadConfig({ cwd: dirWith({}), env: {} })
    expect(source).toBeNull()
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080, trustProxy: false, bodyLimitBytes: 16 * 1024 * 1024, maxHeaderBytes: 64 * 1024 })
    expect(config.store.url).toBeUndefined()
    expect(config.store.dataDir).toBe('.sluice/data')
    expect(config.identity).toBeUndefined()
  })

  it('refuses an explicitly named file that does not exist', () => {
    expect(() => loadConfig({ cwd: dirWith({}), env: { SLUICE_CONFIG: 'missing.yaml' } }))
      .toThrow(expect.objectContaining({ code: 'SLUICE_CONFIG_UNREADABLE', message: expect.stringContaining('file not found') }))
  })

  it('resolves ${env:NAME} and ${file:PATH} references', () => {
    const config = load(
      'store:\n  url: postgres://sluice:${env:DB_PASSWORD}@db/sluice\nidentity:\n  issuer: ${file:issuer.txt}\n  audience: sluice\n',
      { DB_PASSWORD: 's3cret' },
      { 'issuer.txt': 'https://idp.example.com\n' }
    )
    expect(config.store.url).toBe('postgres://sluice:s3cret@db/sluice')
    expect(config.identity?.issuer).toBe('https://idp.example.com')
  })

  it('names the key whose environment reference is unset', () => {
    const err = loadError('store:\n  url: ${env:NOPE}\n')
    expect(err.code).toBe('SLUICE_CONFIG_REFERENCE')
    expect(err.message).toContain('/store/url')
    expect(err.message).toContain('NOPE')
  })

  it('names the key whose file reference cannot be read', () => {
    const err = loadError('identity:\n  issuer: ${file:nowhere.pem}\n  audience: x\n')
    expect(err.message).toContain('/identity/issuer')
    expect(err.message).toContain('ENOENT')
  })

  it('applies SLUICE_* overrides over the file, SLUICE_STORE_URL over DATABASE_URL', () => {
    const config = load('listen:\n  port: 9000\n', {
      SLUICE_HOST: '0.0.0.0',
      SLUICE_PORT: '9100',
      DATABASE_URL: 'postgres://a@h/db',
      SLUICE_STORE_URL: 'postgres://b@h/db',
      SLUICE_OIDC_ISSUER: 'https://idp.example.com',
      SLUICE_OIDC_AUDIENCE: 'sluice, sluice-dev'
    })
    expect(config.listen.host).toBe('0.0.0.0')
    expect(config.listen.port).toBe(9100)
    expect(config.store.url).toBe('postgres://b@h/db')
    expect(config.identity?.audience).toEqual(['sluice', 'sluice-dev'])
  })

  it('takes DATABASE_URL alone', () => {
    expect(load('', { DATABASE_URL: 'postgres://a@h/db' }).store.url).toBe('postgres://a@h/db')
  })

  it('refuses a non-numeric SLUICE_PORT naming the variable', () => {
    expect(loadError('', { SLUICE_PORT: 'eighty' }).message).toContain('SLUICE_PORT')
  })

  it.each([
    ['an unknown key', 'listen:\n  prot: 1\n', '/listen: unknown key "prot"'],
    ['a port out of range', 'listen:\n  port: 70000\n', '/listen/port'],
    ['a bad log level', 'log:\n  level: loud\n', '/log/level: must be one of'],
    ['identity without an audience', 'identity:\n  issuer: https://idp\n', "/identity: must have required property 'audience'"],
    ['a symmetric algorithm', 'identity:\n  issuer: https://idp\n  audience: a\n  algorithms: [HS256]\n', '/identity/algorithms/0'],
    ['a connection without a kind', 'connections:\n  wh:\n    url: https://x\n', "/connections/wh: must have required property 'kind'"],
    ['two default connections of one kind', 'connections:\n  a: { kind: snowflake, default: true }\n  b: { kind: snowflake, default: true }\n', '/connections/b/default'],
    ['a non-mapping file', '- a\n- b\n', 'YAML mapping']
  ])('refuses %s, naming the key', (_name, yaml, expected) => {
    const err = loadError(yaml)
    expect(err.code).toBe('SLUICE_CONFIG_INVALID')
    expect(err.message).toContain(expected)
  })

  // Issue 10, item 8: a token the verifier would still measure must be able to reach it.
  it('keeps listen.maxHeaderBytes above identity.maxTokenBytes with room for the other headers', () => {
    const identity = 'identity:\n  issuer: https://idp.example.com\n  audience: sluice\n'
    const defaults = load(identity)
    expect(defaults.identity?.maxTokenBytes).toBe(16384)
    expect(defaults.listen.maxHeaderBytes).toBe(65536)
    expect(defaults.identity?.requireAccessTokenType).toBe(false)

    const err = loadError(`${identity}  maxTokenBytes: 65536\n`)
    expect(err.code).toBe('SLUICE_CONFIG_INVALID')
    expect(err.message).toContain('/listen/maxHeaderBytes: must be at least identity.maxTokenBytes + 8192 (73728)')

    const raised = load(`listen:\n  maxHeaderBytes: 73728\n${identity}  maxTokenBytes: 65536\n`)
    expect(raised.listen.maxHeaderBytes).toBe(73728)
    // Without identity there is no token to make room for.
    expect(load('listen:\n  maxHeaderBytes: 16384\n').listen.maxHeaderBytes).toBe(16384)
  })

  it('is frozen once loaded', () => {
    const config = load('connections:\n  wh: { kind: bigquery }\n')
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.connections.wh)).toBe(true)
    expect(() => { (config.listen as { port: number }).port = 1 }).toThrow(TypeError)
  })

  it('accepts the documented example file as it ships', () => {
    const { config } = loadConfig({ path: join(repoRoot, 'sluice.example.yaml'), env: {} })
    expect(config.identity?.groupRoles['ai-agents']).toEqual(['agent'])
  })
})
