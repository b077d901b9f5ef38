// Sluice's upstream connector client against the loopback stub (test/support/snowflake-upstream-
// stub.ts), for what fakesnow does not implement: key-pair login, 390112 renewal with the master
// token, re-login after 390104, 333333 polling and chunk downloads with SSE-C (qrmk) headers.
import { generateKeyPairSync } from 'node:crypto'
import { importSPKI, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { snowflakeSettings } from '../../src/warehouses/snowflake/config.js'
import { neutralFromQueryData } from '../../src/warehouses/snowflake/result.js'
import { inlineRows } from '../../src/warehouses/snowflake/inline-rowset.js'
import { SnowflakeUpstream } from '../../src/warehouses/snowflake/upstream.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'ID', type: 'fixed', scale: 0, precision: 38 }, { name: 'EMAIL', type: 'text' }]

describe('snowflake upstream client (stub for what fakesnow lacks)', () => {
  let stub: UpstreamStub
  let upstream: SnowflakeUpstream

  beforeAll(async () => {
    stub = await startUpstreamStub()
    stub.statements.set('SELECT 1', { rowtype: ROWTYPE, rowset: [['1', 'a@example.com']] })
    // Stands in for a long query: Snowflake answers 333333 + getResultUrl (statement.js
    // buildResultRequestCallback) until the result is ready.
    stub.statements.set('SELECT SLOW', { rowtype: ROWTYPE, rowset: [['2', 'b@example.com']], pollsBeforeResult: 3 })
    // Stands in for a large result: chunks in cloud storage with SSE-C headers from qrmk
    // (result.js builds x-amz-server-side-encryption-customer-* from data.qrmk).
    stub.statements.set('SELECT BIG', {
      rowtype: ROWTYPE,
      rowset: [['1', 'a@example.com']],
      chunks: [{ body: '["2","b@example.com"],["3","c@example.com"]', rowCount: 2 }, { body: '["4",null]', rowCount: 1 }]
    })
    const settings = snowflakeSettings('stubbed', { kind: 'snowflake', default: true, url: stub.url, account: 'acme', user: 'svc', password: 'secret' })
    upstream = new SnowflakeUpstream(settings, { pollIntervalMs: 5 })
  })

  afterAll(async () => {
    await upstream.shutdown()
    await stub.close()
  })

  it('logs in with the connection credential and the requested context', async () => {
    const session = await upstream.open({ database: 'DB1', schema: 'S1', warehouse: 'WH', role: 'R' })
    expect(session.token).toMatch(/^st-/)
    expect(session.masterToken).toMatch(/^mt-/)
    const login = stub.loginRequests.at(-1)
    expect(login?.data).toMatchObject({ ACCOUNT_NAME: 'ACME', LOGIN_NAME: 'svc', PASSWORD: 'secret' })
    expect(login?.query).toContain('databaseName=DB1')
    expect(login?.query).toContain('roleName=R')
  })

  it('follows 333333 answers to the result (stub stands in for a long-running query)', async () => {
    const session = await upstream.open({})
    const data = await upstream.query(session, { sqlText: 'SELECT SLOW' })
    expect(inlineRows(data)).toEqual([['2', 'b@example.com']])
    expect(stub.requests.filter((r) => r.startsWith('GET /queries/')).length).toBeGreaterThanOrEqual(2)
  })

  it('renews an expired session (390112) with the master token, unnoticed by the caller', async () => {
    const session = await upstream.open({})
    const before = stub.renewals
    stub.expireSessionToken()
    const data = await upstream.query(session, { sqlText: 'SELECT 1' })
    expect(inlineRows(data)).toEqual([['1', 'a@example.com']])
    expect(stub.renewals).toBe(before + 1)
    expect(stub.requests).toContain('POST /session/token-request')
  })

  it('logs in again when the upstream session is gone (390104)', async () => {
    const session = await upstream.open({})
    const logins = stub.logins
    stub.dropSessions()
    const data = await upstream.query(session, { sqlText: 'SELECT 1' })
    expect(inlineRows(data)).toEqual([['1', 'a@example.com']])
    expect(stub.logins).toBe(logins + 1)
  })

  it('surfaces a statement error with its Snowflake code and SQL state', async () => {
    const session = await upstream.open({})
    await expect(upstream.query(session, { sqlText: 'SELECT NOPE' })).rejects.toMatchObject({
      code: 'SLUICE_SNOWFLAKE_STATEMENT_FAILED', snowflakeCode: '002003', sqlState: '42S02'
    })
  })

  it('downloads result chunks itself with the qrmk SSE-C headers (stub stands in for cloud storage)', async () => {
    const session = await upstream.open({})
    const data = await upstream.query(session, { sqlText: 'SELECT BIG' })
    const rows: unknown[][] = []
    for await (const page of neutralFromQueryData(data, upstream).pages) rows.push(...page.rows)
    expect(rows).toEqual([['1', 'a@example.com'], ['2', 'b@example.com'], ['3', 'c@example.com'], ['4', null]])
    // Without the key the storage refuses, so the rows above came through Sluice's own download.
    await expect(upstream.chunk(String(data.chunks?.[0]?.url), {})).rejects.toMatchObject({ code: 'SLUICE_UPSTREAM_FAILED' })
  })

  it('logs in with a key-pair JWT naming the public key fingerprint', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const settings = snowflakeSettings('keyed', { kind: 'snowflake', default: false, url: stub.url, account: 'acme.eu-west-1', user: 'svc', privateKeyFile: 'k.pem' }, () => pem)
    const keyed = new SnowflakeUpstream(settings)
    await keyed.open({})
    const login = stub.loginRequests.at(-1)?.data ?? {}
    expect(login.AUTHENTICATOR).toBe('SNOWFLAKE_JWT')
    expect(login.PASSWORD).toBeUndefined()
    const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const { payload } = await jwtVerify(String(login.TOKEN), await importSPKI(spki, 'RS256'))
    expect(payload.sub).toBe('ACME.SVC')
    expect(payload.iss).toMatch(/^ACME\.SVC\.SHA256:[A-Za-z0-9+/=]+$/)
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBeLessThanOrEqual(3600)
    await keyed.shutdown()
  })

  it('reads an encrypted private key with its passphrase, and says which key is unusable', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'let-me-in' }).toString()
    const settings = snowflakeSettings('enc', { kind: 'snowflake', default: false, url: stub.url, account: 'acme', user: 'svc', privateKeyFile: 'k.p8', privateKeyPassphrase: 'let-me-in' }, () => pem)
    const keyed = new SnowflakeUpstream(settings)
    await keyed.open({})
    expect(stub.loginRequests.at(-1)?.data.AUTHENTICATOR).toBe('SNOWFLAKE_JWT')
    await keyed.shutdown()
    const wrong = snowflakeSettings('enc', { kind: 'snowflake', default: false, url: stub.url, account: 'acme', user: 'svc', privateKeyFile: 'k.p8', privateKeyPassphrase: 'nope' }, () => pem)
    expect(() => new SnowflakeUpstream(wrong)).toThrow(/\/connections\/enc\/privateKeyFile is not a usable private key/)
  })
})
