// Secrets replicas share come from one configured key: the same key derives the same secrets in
// every process (so chunk tokens and token / sha256 masks agree across replicas), each purpose
// its own; without a key they are random per process, and a Postgres store refuses to start.
import { describe, expect, test } from 'vitest'
import { gatewaySecrets } from '../../src/config/secrets.js'
import { validateConfig } from '../../src/config/load.js'
import { applyEnvOverrides } from '../../src/config/overrides.js'
import { startGateway } from '../../src/gateway.js'
import { createMaskStage } from '../../src/masking/stage.js'
import { parsePolicySet } from '../../src/policy/loader.js'
import type { Admission, Statement } from '../../src/pipeline/types.js'
import { loadParser } from '../../src/sql/parser.js'

const KEY = 'replica-shared-secret-0123456789abcdef'

describe('gatewaySecrets', () => {
  test('one key derives the same secret per purpose in every instance; purposes differ', () => {
    const a = gatewaySecrets(KEY)
    const b = gatewaySecrets(KEY)
    expect(a.shared).toBe(true)
    expect(a.derive('masking').equals(b.derive('masking'))).toBe(true)
    expect(a.derive('masking').equals(a.derive('snowflake-chunk-tokens'))).toBe(false)
    expect(gatewaySecrets('another-key-of-enough-length-000000').derive('masking').equals(a.derive('masking'))).toBe(false)
  })

  test('without a key, secrets are random per process', () => {
    const a = gatewaySecrets(undefined)
    expect(a.shared).toBe(false)
    expect(a.derive('masking').equals(gatewaySecrets(undefined).derive('masking'))).toBe(false)
  })

  test('secrets.key is validated and may come from SLUICE_SECRETS_KEY', () => {
    expect(() => validateConfig({ secrets: { key: 'short' } })).toThrow(/secrets\/key/)
    expect(validateConfig(applyEnvOverrides({}, { SLUICE_SECRETS_KEY: KEY })).secrets?.key).toBe(KEY)
  })
})

describe('masks agree across replicas configured with one key', () => {
  const rules = parsePolicySet([{ name: 'p.yaml', text: "version: 1\nmasking:\n  - { id: t, columns: ['db.s.people.email'], function: token }\n  - { id: h, columns: ['db.s.people.ssn'], function: sha256 }" }]).masking
  async function masked (secret: Buffer | undefined): Promise<unknown[]> {
    await loadParser()
    const stage = createMaskStage({ rules: () => rules, ...(secret !== undefined && { secret }) })
    const statement = {
      requestId: 'r', frontEnd: 't', sql: 'SELECT email, ssn FROM people', client: {},
      principal: { subject: 'a', type: 'human', groups: [], roles: ['agent'] },
      connection: { name: 'c', kind: 'snowflake', defaults: { database: 'db', schema: 's' } }
    } as unknown as Statement
    const admission = { analysis: { dialect: 'snowflake', statements: [{ kind: 'select', text: statement.sql, tablesRead: ['db.s.people'], tablesWritten: [], functions: [], hasLimit: false }] }, decision: { effect: 'allow', ruleId: 'x', reason: '', limits: {} } } as unknown as Admission
    const plan = stage.plan(statement, admission, { columns: [{ name: 'EMAIL', type: 'TEXT' }, { name: 'SSN', type: 'TEXT' }] })
    return stage.mask(plan, { rows: [['amy@example.com', '123-45-6789']] }).rows[0] as unknown[]
  }

  test('token and sha256 masks are equal under the same key, and differ without one', async () => {
    const one = await masked(gatewaySecrets(KEY).derive('masking'))
    const two = await masked(gatewaySecrets(KEY).derive('masking'))
    expect(one).toEqual(two)
    expect(one[0]).toMatch(/^tok_/)
    expect(await masked(undefined)).not.toEqual(one)
  })
})

test('a gateway on a Postgres store without secrets.key refuses to start, saying what to set', async () => {
  const config = validateConfig({ listen: { port: 0 }, log: { level: 'silent' }, store: { url: 'postgres://127.0.0.1:5432/test' } })
  await expect(startGateway(config)).rejects.toThrow(/secrets\/key: required with a Postgres store/)
})
