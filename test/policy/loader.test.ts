import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { isPolicyFileName, loadPolicyDirectory, parsePolicySet } from '../../src/policy/loader.js'

const policiesDir = new URL('../../policies/', import.meta.url)
const shipped = async (rel: string) => ({ name: rel, text: await readFile(new URL(rel, policiesDir), 'utf8') })

/** The error thrown by parsePolicySet for one file, as `{ code, message }`. */
function refusal (text: string, name = 'team.yaml'): { code: string, message: string } {
  try {
    parsePolicySet([{ name, text }])
  } catch (err) {
    return err as { code: string, message: string }
  }
  throw new Error('expected the policy to be refused')
}

describe('schema validation', () => {
  test('the shipped default and examples validate', async () => {
    for (const f of ['default.yaml', 'examples/per-connection.yaml', 'examples/business-hours.yaml']) {
      const set = parsePolicySet([await shipped(f)])
      expect(set.rules.length, f).toBeGreaterThan(0)
      expect(set.warnings, f).toEqual([])
    }
    const ex = parsePolicySet([await shipped('examples/per-connection.yaml')])
    expect(ex.masking.map((m) => m.id)).toEqual(['mask-emails'])
    expect(ex.masking[0]?.columns('db.crm.customers.email')).toBe(true)
  })

  test('an unknown effect names the file, the JSON pointer and the line', () => {
    const err = refusal('version: 1\nrules:\n  - id: a\n    effect: allow\n  - id: b\n    effect: permit\n')
    expect(err.code).toBe('SLUICE_POLICY_INVALID')
    expect(err.message).toBe('policy file team.yaml is invalid: /rules/1/effect (line 6, column 13): must be one of allow, deny, require_approval')
  })

  test('unknown keys, missing keys and bad values are all reported at once', () => {
    const err = refusal([
      'version: 1',
      'rules:',
      '  - id: a',
      '    effect: allow',
      '    match: { role: [agent], kinds: [selec] }',
      '  - effect: deny',
      '    limits: { maxRows: 0 }'
    ].join('\n'))
    expect(err.message).toContain('/rules/0/match/role (line 5, column 20): unknown key "role"')
    expect(err.message).toContain('/rules/0/match/kinds/0 (line 5, column 37): must be one of select, insert')
    expect(err.message).toContain('/rules/1 (line 6, column 5): missing required key "id"')
    expect(err.message).toContain('/rules/1/limits/maxRows (line 7, column 24): must be >= 1')
  })

  test('version is required, and YAML syntax errors are reported with their position', () => {
    expect(refusal('rules: []').message).toContain('/ (line 1, column 1): missing required key "version"')
    expect(refusal('version: 1\nrules: [\n').message).toMatch(/policy file team.yaml is invalid: YAML syntax: .*line/)
    expect(refusal('').message).toContain('the file is empty')
    expect(refusal('version: 1\nversion: 1\n').message).toContain('YAML syntax')
  })

  test('masking rules are validated strictly (functions, options, inference allowances)', () => {
    const set = parsePolicySet([{ name: 'm.yaml', text: 'version: 1\nmasking:\n  - { id: m, columns: ["*.*.*.ssn"], function: token, exemptRoles: [hr], allowEquality: true }' }])
    expect([...(set.masking[0]?.allowInference ?? [])].sort()).toEqual(['equality', 'grouping'])
    expect(refusal('version: 1\nmasking:\n  - { id: m, function: hash }').message).toContain('/masking/0 (line 3, column 5): missing required key "columns"')
    expect(refusal('version: 1\nmasking:\n  - { id: m, columns: [a], function: hash, future: 1 }').message).toContain('unknown key "future"')
    expect(refusal('version: 1\nmasking:\n  - { id: m, columns: [a], function: scramble }').message).toContain('must be one of redact')
    expect(refusal('version: 1\nmasking:\n  - { id: m, columns: [a], function: redact, allowEquality: true }').message).toContain('allowEquality needs a deterministic function')
    expect(refusal('version: 1\nmasking:\n  - { id: m, columns: [a], function: partial }').message).toContain('needs "keep"')
  })
})

describe('semantic checks', () => {
  test('duplicate rule ids are refused, within a file and across files', () => {
    expect(refusal('version: 1\nrules:\n  - { id: a, effect: allow }\n  - { id: a, effect: deny }').message)
      .toContain('/rules/1/id (line 4, column 11): duplicate rule id "a" (already defined in team.yaml at /rules/0)')
    expect(() => parsePolicySet([
      { name: '10-b.yaml', text: 'version: 1\nrules:\n  - { id: dup, effect: deny }' },
      { name: '00-a.yaml', text: 'version: 1\nrules:\n  - { id: dup, effect: allow }' }
    ])).toThrow('policy file 10-b.yaml is invalid: /rules/0/id (line 3, column 11): duplicate rule id "dup" (already defined in 00-a.yaml at /rules/0)')
  })

  test('default-deny is reserved; deny rules cannot carry limits', () => {
    expect(refusal('version: 1\nrules:\n  - { id: default-deny, effect: deny }').message).toContain('is reserved')
    expect(refusal('version: 1\nrules:\n  - { id: d, effect: deny, limits: { maxRows: 1 } }').message).toContain('/rules/0/limits')
  })

  test('an unknown time zone and an empty hour range are refused', () => {
    expect(refusal('version: 1\nrules:\n  - { id: t, effect: allow, match: { time: { timezone: Mars/Olympus } } }').message)
      .toContain('/rules/0/match/time/timezone (line 3, column 56): unknown time zone "Mars/Olympus"')
    expect(refusal('version: 1\nrules:\n  - { id: t, effect: allow, match: { time: { hours: ["10:00-10:00"] } } }').message)
      .toContain('/rules/0/match/time/hours/0')
    expect(refusal('version: 1\nrules:\n  - { id: t, effect: allow, match: { time: { hours: ["9:00-10:00"] } } }').message)
      .toContain('/rules/0/match/time/hours/0')
  })

  test('a default limit set by two files is refused', () => {
    expect(() => parsePolicySet([
      { name: 'a.yaml', text: 'version: 1\ndefaults: { limits: { maxRows: 1 } }' },
      { name: 'b.yaml', text: 'version: 1\ndefaults: { limits: { maxRows: 2 } }' }
    ])).toThrow('/defaults/limits/maxRows (line 2, column 32): already set by a.yaml')
  })

  test('rules after a catch-all deny are reported as unreachable', () => {
    const set = parsePolicySet([{ name: 'x.yaml', text: 'version: 1\nrules:\n  - { id: stop, effect: deny, match: {} }\n  - { id: never, effect: allow }' }])
    expect(set.warnings).toEqual(['x.yaml: rules after "stop" (which matches everything) are never reached'])
  })

  test('the version changes with content and not with directory', () => {
    const a = parsePolicySet([{ name: 'p.yaml', text: 'version: 1\n', label: 'one/p.yaml' }])
    const b = parsePolicySet([{ name: 'p.yaml', text: 'version: 1\n', label: 'two/p.yaml' }])
    const c = parsePolicySet([{ name: 'p.yaml', text: 'version: 1\nrules: []\n' }])
    expect(a.version).toBe(b.version)
    expect(a.version).not.toBe(c.version)
  })
})

describe('directory loading', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'sluice-policy-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  test('loads *.yaml and *.yml in name order, not subdirectories, not cases or dotfiles', async () => {
    await writeFile(join(dir, '20-b.yml'), 'version: 1\nrules:\n  - { id: b, effect: allow }\n')
    await writeFile(join(dir, '10-a.yaml'), 'version: 1\nrules:\n  - { id: a, effect: deny }\n')
    await writeFile(join(dir, 'team.cases.yaml'), 'cases: []\n')
    await writeFile(join(dir, '.hidden.yaml'), 'not: a policy\n')
    await writeFile(join(dir, 'schema.json'), '{}')
    await mkdir(join(dir, 'examples'))
    await writeFile(join(dir, 'examples', 'x.yaml'), 'broken: [\n')
    const set = await loadPolicyDirectory(dir)
    expect(set.rules.map((r) => r.id)).toEqual(['a', 'b'])
    expect(set.files).toEqual([join(dir, '10-a.yaml'), join(dir, '20-b.yml')])
    expect(isPolicyFileName('x.cases.yml')).toBe(false)
  })

  test('an invalid file is named by its path', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'version: 2\n')
    await expect(loadPolicyDirectory(dir)).rejects.toThrow(`policy file ${join(dir, 'bad.yaml')} is invalid: /version (line 1, column 10): must be 1`)
  })

  test('an empty directory loads with a warning (everything default-denied); a missing one is refused', async () => {
    const set = await loadPolicyDirectory(dir)
    expect(set.rules).toEqual([])
    expect(set.warnings[0]).toContain('default-deny')
    await expect(loadPolicyDirectory(join(dir, 'nope'))).rejects.toThrow('cannot read the policies directory')
  })

  test('the shipped policies directory loads (default.yaml only)', async () => {
    const set = await loadPolicyDirectory(new URL('.', policiesDir).pathname)
    expect(set.files.map((f) => f.split(/[\\/]/).pop())).toEqual(['default.yaml'])
  })
})
