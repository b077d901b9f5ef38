// A query tool call whose PostgreSQL statement runs until it is cancelled, watched on the
// upstream itself, and the trail read once it has caught up with the cancel (the client stops
// waiting at its abort, before the gateway commits the call's events). Shared by the MCP cancel
// tests on one replica and across two.
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import postgres from 'postgres'
import { expect } from 'vitest'
import type { McpGateway } from './harness.js'

const pause = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 100)) }

export interface RunawayCall {
  /** The tool call, rejected once cancelled. */
  calling: Promise<unknown>
  cancel: AbortController
  /** How many backends run the statement upstream now. */
  running: () => Promise<number>
  close: () => Promise<void>
}

/** Starts `sql` (a count that runs for minutes) through the query tool; resolves once it runs upstream. */
export async function startRunawayQuery (env: McpGateway, client: Client, sql: string): Promise<RunawayCall> {
  const direct = postgres(env.upstream.url, { max: 1, onnotice: () => {} })
  const running = async (): Promise<number> => (await direct`select count(*)::int as n from pg_stat_activity where state = 'active' and query = ${sql}`)[0]?.n as number
  const cancel = new AbortController()
  let settled: unknown
  const calling = client.callTool({ name: 'query', arguments: { connection: 'pg', sql } }, undefined, { signal: cancel.signal })
  calling.then((r) => { settled = r }, (e: unknown) => { settled = e })
  try {
    while (await running() === 0) {
      expect(settled, 'the call ended before its statement ran').toBeUndefined()
      await pause()
    }
  } catch (err) {
    await direct.end({ timeout: 5 })
    throw err
  }
  return { calling, cancel, running, close: async () => { await direct.end({ timeout: 5 }) } }
}

/** Waits, at most `polls` times 100 ms, until the statement no longer runs upstream. */
export async function stoppedUpstream (call: RunawayCall, polls: number): Promise<void> {
  for (let i = 0; await call.running() > 0; i++) {
    expect(i, 'the statement still runs upstream').toBeLessThan(polls)
    await pause()
  }
}

/** The statement's completed event, once the trail has it (at most 30 s). */
export async function completedEvent (env: McpGateway, sql: string): Promise<{ outcome: string, request_id: string }> {
  const completed = async (): Promise<{ outcome: string, request_id: string } | undefined> =>
    (await env.events<Array<{ outcome: string, request_id: string }>>`select outcome, request_id from session_events where sql_text = ${sql} and phase = 'completed'`)[0]
  let event = await completed()
  for (let i = 0; event === undefined; i++) {
    expect(i, 'the cancelled statement has no completed event').toBeLessThan(300)
    await pause()
    event = await completed()
  }
  return event
}
