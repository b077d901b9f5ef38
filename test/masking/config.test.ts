// The masking settings in sluice.yaml: defaults, per-connection overrides, refusals, and the
// example file documenting them.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { parse } from 'yaml'
import { validateConfig } from '../../src/config/load.js'

describe('masking configuration', () => {
  test('defaults: mask unresolved columns, detectors masking', () => {
    const config = validateConfig({})
    expect(config.masking).toEqual({ unresolved: 'mask', detectors: { mode: 'mask' } })
  })

  test('per-connection overrides are validated, without defaults of their own', () => {
    const config = validateConfig({
      masking: { unresolved: 'deny', salt: 'a-salt-of-16-chars!', tokenKey: 'a-token-key-of-16-chars' },
      connections: { 'bq-prod': { kind: 'bigquery', project: 'p', masking: { detectors: { mode: 'flag', kinds: ['email', 'jwt'] } } } }
    })
    expect(config.masking?.unresolved).toBe('deny')
    expect(config.connections['bq-prod']?.masking).toEqual({ detectors: { mode: 'flag', kinds: ['email', 'jwt'] } })
  })

  test.each([
    [{ masking: { unresolved: 'ignore' } }],
    [{ masking: { detectors: { mode: 'maybe' } } }],
    [{ masking: { detectors: { kinds: ['passport'] } } }],
    [{ masking: { salt: 'short' } }],
    [{ masking: { extra: 1 } }],
    [{ connections: { c: { kind: 'postgres', masking: { unresolved: 'ignore' } } } }]
  ])('refused: %j', (input) => {
    expect(() => validateConfig(input)).toThrow(/SLUICE_CONFIG_INVALID|invalid configuration/)
  })

  test('sluice.example.yaml documents a valid masking section', () => {
    const text = readFileSync(fileURLToPath(new URL('../../sluice.example.yaml', import.meta.url)), 'utf8')
    const doc = parse(text) as { masking?: unknown }
    expect(doc.masking).toBeDefined()
    expect(() => validateConfig({ masking: doc.masking })).not.toThrow()
  })
})
