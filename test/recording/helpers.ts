// Shared fixtures for the recording suites: configuration with test-friendly knobs, a fresh
// Ed25519 key, principals, and round-trip facts.
import { generateKeyPairSync } from 'node:crypto'
import { validateConfig } from '../../src/config/load.js'
import type { RecordingConfig } from '../../src/config/types.js'
import type { Principal } from '../../src/identity/principal.js'
import type { RoundTripFacts } from '../../src/recording/build.js'
import { nowMicros } from '../../src/recording/chain.js'

export function ed25519Pem (): { privatePem: string, publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }
}

/** One lane unless asked: tests that count a chain's events need them all on one chain. */
export function recordingConfig (recording: Record<string, unknown> = {}): RecordingConfig {
  const batch = { lanes: 1, ...(recording.batch as object | undefined) }
  return validateConfig({ recording: { retention: { intervalSeconds: 0 }, ...recording, batch } }).recording
}

export const alice: Principal = {
  subject: 'alice',
  issuer: 'https://idp.test',
  type: 'human',
  groups: ['analysts'],
  roles: ['agent'],
  clientId: 'cursor',
  delegation: [{ subject: 'claude-code', clientId: 'claude-code' }],
  expiresAt: new Date('2030-01-01T00:00:00Z')
}

export const bob: Principal = { ...alice, subject: 'bob', clientId: 'ci-bot', delegation: [], groups: ['ci'] }

let counter = 0

/** Facts of an allowed SELECT; override anything. */
export function facts (overrides: Partial<RoundTripFacts> = {}): RoundTripFacts {
  counter++
  return {
    requestId: `req-${process.pid}-${counter}`,
    frontEnd: 'test',
    principal: alice,
    connection: 'wh',
    route: '/test/sql',
    method: 'POST',
    statusCode: 200,
    outcome: 'ok',
    durationMs: 1.25,
    startedAtMicros: nowMicros(),
    sourceIp: '127.0.0.1',
    userAgent: 'vitest',
    bytesReturned: 42,
    trip: {
      sql: `select id, email from analytics.public.orders where id = ${counter}`,
      decision: { effect: 'allow', ruleId: 'allow-agents', reason: 'allowed by rule allow-agents: agents may read', limits: {} },
      rowsReturned: 1,
      upstreamId: `q-${counter}`
    },
    ...overrides
  }
}
