// What resolving a connector session costs each connector request now that sessions live in
// the store (src/warehouses/snowflake/sessions.ts): one indexed select by the token digest, plus
// reviving the principal; the live upstream session comes from the per-process cache. Timed
// interleaved with `select 1` on the same pool (the floor of any store round trip), so machine
// noise hits both alike; sequential latency and throughput at 16 concurrent lookups, into the
// machine's PostgreSQL (a throwaway database, dropped afterwards). Before this change the
// lookup was a Map get (well under 1 µs) and worked on one replica only.
//
// Machine: 2 cores (shared with other work; compare the side-by-side numbers). Node 20.20.2.
// Date: 2026-12-01.
// Run: npm run bench -- connector-sessions
// Run alone: npx tsx test/bench/connector-sessions.bench.ts
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { StoreConnectorSessions } from '../../src/state/connector-sessions.js'
import { createSealer } from '../../src/state/sealed.js'
import { migrate } from '../../src/store/migrate.js'
import { openPostgresStore } from '../../src/store/postgres.js'
import type { SnowflakeSettings } from '../../src/warehouses/snowflake/config.js'
import { ConnectorSessions } from '../../src/warehouses/snowflake/sessions.js'
import { UpstreamSession, type SnowflakeUpstream } from '../../src/warehouses/snowflake/upstream.js'
import { createThrowawayDatabase } from '../support/stores.js'
import type { BenchResult } from './result.js'

const SESSIONS = 2000
const ROUNDS = 3000
const CONCURRENCY = 16

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`

export async function benchConnectorSessions (): Promise<BenchResult> {
  const db = await createThrowawayDatabase()
  const store = openPostgresStore({ url: db.url, poolSize: 8 })
  try {
    await migrate(store)
    const settings = { name: 'wh' } as SnowflakeSettings
    const upstream = {} as SnowflakeUpstream
    const sessions = new ConnectorSessions({
      store: new StoreConnectorSessions(store),
      sealer: createSealer(randomBytes(32)),
      connections: (name) => name === 'wh' ? { settings, upstream } : undefined
    })
    const tokens: string[] = []
    for (let i = 0; i < SESSIONS; i++) {
      const live = new UpstreamSession({ database: 'DB' })
      live.token = `upstream-${i}`
      live.parameters = [{ name: 'TIMEZONE', value: 'UTC' }]
      const principal = { subject: `agent-${i}`, issuer: 'https://idp', type: 'human' as const, groups: ['ai-agents'], roles: ['agent'], delegation: [], expiresAt: new Date(Date.now() + 3600_000) }
      tokens.push((await sessions.create(principal, settings, upstream, live, { application: 'JavaScript' })).tokens.token)
    }
    const lookup: number[] = []
    const floor: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now()
      const found = await sessions.bySessionToken(tokens[i % SESSIONS] ?? '')
      lookup.push(performance.now() - t)
      if (found.state !== 'valid') throw new Error(`session ${i % SESSIONS} not found`)
      t = performance.now()
      await store.query('select 1')
      floor.push(performance.now() - t)
    }
    lookup.sort((x, y) => x - y)
    floor.sort((x, y) => x - y)

    const started = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ROUNDS) await sessions.bySessionToken(tokens[next++ % SESSIONS] ?? '')
    }))
    const perSecond = ROUNDS / ((performance.now() - started) / 1000)
    return {
      name: 'connector session lookup (Postgres, per request)',
      lines: [
        `lookup p50 ${us(quantile(lookup, 0.5))}, p99 ${us(quantile(lookup, 0.99))}; select 1 p50 ${us(quantile(floor, 0.5))}, p99 ${us(quantile(floor, 0.99))} (ratio p50 ${(quantile(lookup, 0.5) / quantile(floor, 0.5)).toFixed(2)})`,
        `${perSecond.toFixed(0)} lookups/s at ${CONCURRENCY} concurrent, ${SESSIONS} live sessions`,
        `load average ${loadavg()[0]?.toFixed(1) ?? '?'} on this machine during the run`
      ]
    }
  } finally {
    await store.close()
    await db.drop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await benchConnectorSessions()
  process.stdout.write(`${result.name}\n${result.lines.map((l) => `  ${l}`).join('\n')}\n`)
}
