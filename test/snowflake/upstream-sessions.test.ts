// Upstream Snowflake sessions belong to one principal, and each runs USE SECONDARY ROLES NONE
// before anything else (issue 10, item 4). The loopback upstream stub stands in for Snowflake:
// it numbers sessions by login, keeps LAST_QUERY_ID() per session and logs which session and
// token every statement ran on, so what an agent could read of another's session shows.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Principal } from '../../src/identity/principal.js'
import { snowflakeSettings } from '../../src/warehouses/snowflake/config.js'
import { ownerKey } from '../../src/warehouses/snowflake/handles.js'
import { IdleSessions } from '../../src/warehouses/snowflake/pool.js'
import { SECONDARY_ROLES_NONE, SnowflakeUpstream, UpstreamSession } from '../../src/warehouses/snowflake/upstream.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'N', type: 'fixed', scale: 0, precision: 38, nullable: true }]

describe('upstream sessions are never shared between principals (upstream stub)', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  const tokens: Record<string, string> = {}

  async function submit (who: string, statement: string, prefix = ''): Promise<{ status: number, body: Record<string, unknown> }> {
    const res = await request(`${gw.url}${prefix}/api/v2/statements`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens[who] ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({ statement })
    })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }

  /** The upstream session a statement ran on (the last time it ran). */
  const sessionOf = (sqlText: string): number | undefined => stub.queryLog.filter((q) => q.sqlText === sqlText).at(-1)?.session

  beforeAll(async () => {
    stub = await startUpstreamStub()
    for (const sql of ['SELECT SECRET_A', 'SELECT SECRET_B', 'SELECT AGAIN', 'SELECT KEPT']) stub.statements.set(sql, { rowtype: ROWTYPE, rowset: [['1']] })
    gw = await startSnowflakeGateway({
      connections: {
        stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw' },
        keeper: { kind: 'snowflake', url: stub.url, account: 'keeper', user: 'svc', password: 'pw', secondaryRoles: 'keep' }
      }
    })
    for (const who of ['alice', 'bob', 'carol']) tokens[who] = await gw.token(who)
  })

  afterAll(async () => {
    await gw?.close()
    await stub?.close()
  })

  it('SQL API: another principal\'s LAST_QUERY_ID() never sees a statement of alice\'s; alice reuses her own session', async () => {
    expect((await submit('alice', 'SELECT SECRET_A')).status).toBe(200)
    const alicesQuery = stub.queryLog.filter((q) => q.sqlText === 'SELECT SECRET_A').at(-1)?.queryId
    expect(alicesQuery).toMatch(/^01b0-stub-/)

    const bob = await submit('bob', 'SELECT LAST_QUERY_ID()')
    expect(bob.status).toBe(200)
    expect(JSON.stringify(bob.body)).not.toContain(String(alicesQuery))
    const bobsSession = sessionOf('SELECT LAST_QUERY_ID()')
    expect(bobsSession).not.toBe(sessionOf('SELECT SECRET_A'))

    // Alice's next statement comes back to her own pooled session, which still knows her query.
    const logins = stub.logins
    const again = await submit('alice', 'SELECT LAST_QUERY_ID()')
    expect(again.body.data).toEqual([[alicesQuery]])
    expect(stub.logins).toBe(logins)
    expect(sessionOf('SELECT LAST_QUERY_ID()')).toBe(sessionOf('SELECT SECRET_A'))
    // No upstream session ran statements of two principals.
    const bobsStatements = stub.queryLog.filter((q) => q.session === bobsSession).map((q) => q.sqlText)
    expect(bobsStatements).toEqual([SECONDARY_ROLES_NONE, 'SELECT LAST_QUERY_ID()'])
  })

  it('connector: every login, of the same or another principal, has its own upstream session', async () => {
    const conns: SdkConnection[] = []
    try {
      for (const who of ['alice', 'alice', 'bob']) conns.push(await connectSdk({ accessUrl: gw.url, token: tokens[who] ?? '' }))
      const [first, second, bob] = conns as [SdkConnection, SdkConnection, SdkConnection]
      await runSdk(first, 'SELECT SECRET_B')
      const alicesQuery = stub.queryLog.filter((q) => q.sqlText === 'SELECT SECRET_B').at(-1)?.queryId
      const seen = [
        (await runSdk(second, 'SELECT LAST_QUERY_ID()')).rows,
        (await runSdk(bob, 'SELECT LAST_QUERY_ID()')).rows
      ]
      expect(JSON.stringify(seen)).not.toContain(String(alicesQuery))
      expect((await runSdk(first, 'SELECT LAST_QUERY_ID()')).rows).toEqual([{ 'LAST_QUERY_ID()': alicesQuery }])
      // The three LAST_QUERY_ID() statements (second, bob, first) ran on three upstream sessions.
      const ran = stub.queryLog.filter((q) => q.sqlText === 'SELECT LAST_QUERY_ID()').slice(-3)
      expect(new Set(ran.map((q) => q.session)).size).toBe(3)
      expect(new Set(ran.map((q) => q.token)).size).toBe(3)
    } finally {
      for (const conn of conns) await destroySdk(conn)
    }
  })

  it('runs USE SECONDARY ROLES NONE first on every new upstream session and token: pooled, connector, re-login, renewal', async () => {
    const conn = await connectSdk({ accessUrl: gw.url, token: tokens.carol ?? '' })
    try {
      const logins = stub.logins
      stub.dropSessions()
      expect((await submit('alice', 'SELECT AGAIN')).status).toBe(200)
      await runSdk(conn, 'SELECT AGAIN')
      expect(stub.logins).toBe(logins + 2)
      const renewals = stub.renewals
      stub.expireSessionToken()
      await runSdk(conn, 'SELECT AGAIN')
      expect((await submit('alice', 'SELECT AGAIN')).status).toBe(200)
      expect(stub.renewals).toBe(renewals + 2)
    } finally {
      await destroySdk(conn)
    }
    // Every session token (each login's, each renewal's) ran the statement before anything else.
    const firstByToken = new Map<string, string>()
    for (const q of stub.queryLog) if (!firstByToken.has(q.token)) firstByToken.set(q.token, q.sqlText)
    expect(firstByToken.size).toBe(stub.logins + stub.renewals)
    expect([...firstByToken.values()].every((sql) => sql === SECONDARY_ROLES_NONE)).toBe(true)
    // The statement is Sluice's own: nobody's statement parameters travel with it.
    expect(stub.queryLog.filter((q) => q.sqlText === SECONDARY_ROLES_NONE).every((q) => q.parameters === undefined)).toBe(true)
  })

  it('fails closed when the warehouse refuses the statement: the session runs nothing, is logged out, and the error names the connection', async () => {
    const before = stub.queryLog.length
    stub.refuseSecondaryRoles = true
    try {
      const res = await submit('carol', 'SELECT SECRET_A')
      expect(res.status).toBe(422)
      expect(res.body.message).toMatch(/^connection stubbed: USE SECONDARY ROLES NONE failed on a new upstream session, so the session was not used \(001003: .*\); set secondaryRoles: keep on the connection/)
      const err = await connectSdk({ accessUrl: gw.url, token: tokens.carol ?? '' }).catch((e: unknown) => e)
      expect((err as Error).message).toMatch(/connection stubbed: USE SECONDARY ROLES NONE failed/)

      // A connector session whose upstream session must be opened again is not used either.
      stub.refuseSecondaryRoles = false
      const conn = await connectSdk({ accessUrl: gw.url, token: tokens.carol ?? '' })
      try {
        stub.refuseSecondaryRoles = true
        stub.dropSessions()
        await expect(runSdk(conn, 'SELECT SECRET_A')).rejects.toThrow(/USE SECONDARY ROLES NONE failed/)
        await expect(runSdk(conn, 'SELECT SECRET_A')).rejects.toThrow(/upstream session is closed; log in again/)
      } finally {
        await destroySdk(conn)
      }
    } finally {
      stub.refuseSecondaryRoles = false
    }
    const refused = stub.queryLog.slice(before).filter((q) => q.sqlText === SECONDARY_ROLES_NONE && stub.loggedOut.includes(q.session))
    expect(refused.length).toBe(3)
    // Nothing but the refused statement ran on any of those sessions.
    const sessions = new Set(refused.map((q) => q.session))
    expect(stub.queryLog.filter((q) => sessions.has(q.session)).map((q) => q.sqlText)).toEqual(refused.map(() => SECONDARY_ROLES_NONE))
  })

  it('a connection with secondaryRoles: keep sends no USE SECONDARY ROLES', async () => {
    stub.refuseSecondaryRoles = true
    try {
      const res = await submit('alice', 'SELECT KEPT', '/snowflake/keeper')
      expect(res.status).toBe(200)
    } finally {
      stub.refuseSecondaryRoles = false
    }
    const session = sessionOf('SELECT KEPT')
    expect(stub.queryLog.filter((q) => q.session === session).map((q) => q.sqlText)).toEqual(['SELECT KEPT'])
  })
})

describe('the SQL API pool keys sessions by principal identity (issuer + subject) and context', () => {
  const principal = (issuer: string, subject: string): Principal =>
    ({ issuer, subject, type: 'human', groups: [], roles: [], delegation: [], expiresAt: new Date(Date.now() + 60_000) })

  it('never hands one principal\'s idle session to another, whatever the subject', async () => {
    const stub = await startUpstreamStub()
    const upstream = new SnowflakeUpstream(snowflakeSettings('pool', { kind: 'snowflake', default: true, url: stub.url, account: 'acme', user: 'svc', password: 'pw' }))
    try {
      const idp1 = ownerKey(principal('https://idp-one.example', 'alice'))
      const idp2 = ownerKey(principal('https://idp-two.example', 'alice'))
      const first = await upstream.lease(idp1, { database: 'DB' })
      upstream.release(first)
      expect(await upstream.lease(idp2, { database: 'DB' })).not.toBe(first)
      expect(await upstream.lease(idp1, { database: 'OTHER' })).not.toBe(first)
      expect(await upstream.lease(idp1, { database: 'DB' })).toBe(first)
    } finally {
      await upstream.shutdown()
      await stub.close()
    }
  })

  it('bounds the idle sessions in all, closing the least recently released first', () => {
    const idle = new IdleSessions(1)
    const sessions = Array.from({ length: 40 }, () => new UpstreamSession({}))
    const closed = sessions.flatMap((s, i) => idle.put(`key-${i}`, s))
    expect(idle.size).toBe(32)
    expect(closed).toEqual(sessions.slice(0, 8))
    expect(idle.put('key-39', new UpstreamSession({}))).toHaveLength(1)
    expect(idle.take('key-0')).toBeUndefined()
    expect(idle.take('key-39')).toBe(sessions[39])
  })
})
