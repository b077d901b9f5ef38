// The BigQuery front end's small parts on their own: connection settings and routing, request
// checks (refusals, EXPORT DATA behind comments), the discovery document,
// the Google error shape, and the upstream's credential and dry run.
import { generateKeyPairSync } from 'node:crypto'
import { jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERR_NOT_FOUND, ERR_POLICY_DENIED } from '../../src/errors.js'
import { bigquerySettings, selectConnection, type BigQuerySettings } from '../../src/warehouses/bigquery/connections.js'
import { discoveryDocument } from '../../src/warehouses/bigquery/discovery.js'
import { renderError, rewriteSluiceBody } from '../../src/warehouses/bigquery/google-errors.js'
import { checkJob, checkQueryRequest, statementParams, withoutComments } from '../../src/warehouses/bigquery/requests.js'
import { projectFields, timestampForm } from '../../src/warehouses/bigquery/results.js'
import { BigQueryUpstream } from '../../src/warehouses/bigquery/upstream.js'
import { SEED_DATASET, SEED_PROJECT, startBqEmulator, type BqEmulator } from '../support/bqemulator.js'

const conn = (name: string, extra: Record<string, unknown>): BigQuerySettings =>
  bigquerySettings(name, { kind: 'bigquery', default: false, ...extra })

describe('bigquery connection settings', () => {
  it('defaults to Google\'s endpoint and ambient credentials, and to no credential for an emulator URL', () => {
    expect(conn('prod', { project: 'acme-prod' })).toMatchObject({ url: 'https://bigquery.googleapis.com', auth: { kind: 'adc' }, jobTtlSeconds: 86_400 })
    expect(conn('emu', { project: 'acme-test', url: 'http://127.0.0.1:9050/' })).toMatchObject({ url: 'http://127.0.0.1:9050', auth: { kind: 'none' } })
  })

  it('reads a service-account key from credentials or keyFile', () => {
    const key = JSON.stringify({ type: 'service_account', client_email: 'sluice@acme.iam.gserviceaccount.com', private_key: 'PEM' })
    expect(conn('a', { project: 'acme-prod', credentials: key }).auth).toMatchObject({ kind: 'service-account', key: { client_email: 'sluice@acme.iam.gserviceaccount.com' } })
    const fromFile = bigquerySettings('b', { kind: 'bigquery', default: false, project: 'acme-prod', keyFile: 'key.json' }, () => key)
    expect(fromFile.auth.kind).toBe('service-account')
  })

  it('names the offending key in every error', () => {
    expect(() => conn('x', {})).toThrow(/\/connections\/x must have required property 'project'/)
    expect(() => conn('x', { project: 'acme-prod', projct: 'typo' })).toThrow(/\/connections\/x\/projct is not a BigQuery connection setting/)
    expect(() => conn('x', { project: 'acme-prod', credentials: 'not json' })).toThrow(/\/connections\/x\/credentials is not a service-account key/)
    expect(() => conn('x', { project: 'acme-prod', auth: 'service-account' })).toThrow(/\/connections\/x\/auth is service-account but neither/)
    expect(() => bigquerySettings('x', { kind: 'bigquery', default: false, project: 'acme-prod', keyFile: '/nope' }, () => { throw new Error('ENOENT') }))
      .toThrow(/\/connections\/x\/keyFile cannot be read/)
  })

  it('routes by project, then by name or alias, then to the default', () => {
    const prod = conn('bq-prod', { project: 'acme-prod', aliases: ['prod'] })
    const dev = { ...conn('bq-dev', { project: 'acme-dev' }), default: true }
    const all = [prod, dev]
    expect(selectConnection(all, 'acme-prod')?.name).toBe('bq-prod')
    expect(selectConnection(all, 'prod')?.name).toBe('bq-prod')
    expect(selectConnection(all, 'bq-prod')?.name).toBe('bq-prod')
    expect(selectConnection(all, 'anything-else')?.name).toBe('bq-dev')
    expect(selectConnection([prod, conn('other', { project: 'acme-other' })], 'unknown')).toBeUndefined()
    expect(selectConnection([prod], 'unknown')?.name).toBe('bq-prod')
  })
})

describe('bigquery request checks', () => {
  it('makes GoogleSQL explicit and keeps allowed options', () => {
    expect(checkQueryRequest({ query: 'SELECT 1', maxResults: 5, requestId: 'r' })).toEqual({ request: { query: 'SELECT 1', maxResults: 5, requestId: 'r', useLegacySql: false }, transfer: undefined })
    const checked = checkJob({ configuration: { query: { query: 'SELECT 1', priority: 'BATCH' }, labels: { a: 'b' } } })
    expect(checked.type === 'query' && checked.job.configuration.query.useLegacySql).toBe(false)
  })

  it('refuses unknown options by name rather than forwarding them', () => {
    expect(() => checkQueryRequest({ query: 'SELECT 1', somethingNew: true })).toThrow(/QueryRequest.somethingNew is not an option Sluice forwards/)
    expect(() => checkJob({ configuration: { query: { query: 'SELECT 1', tableDefinitions: {} } } })).toThrow(/external tableDefinitions are refused/)
    expect(() => checkQueryRequest({ query: 'SELECT 1', createSession: true })).toThrow(/createSession is refused/)
    expect(() => checkQueryRequest({ query: ' ' })).toThrow(/a query is required/)
  })

  it('finds EXPORT DATA and LOAD DATA outside comments, and inside literals (fail closed)', () => {
    expect(withoutComments("SELECT 1 -- EXPORT DATA\n/* EXPORT DATA */ # EXPORT DATA\n, 'a -- b'")).toBe("SELECT 1  \n   \n, 'a -- b'")
    expect(checkQueryRequest({ query: 'SELECT 1 -- EXPORT DATA later' }).transfer).toBeUndefined()
    expect(checkQueryRequest({ query: "EXECUTE IMMEDIATE 'EXPORT DATA OPTIONS(uri=\"gs://b/*\") AS SELECT 1'" }).transfer?.reason).toMatch(/EXPORT DATA is refused/)
    expect(checkQueryRequest({ query: 'LOAD DATA INTO crm.t FROM FILES(uris=["gs://b/x"])' }).transfer?.reason).toMatch(/LOAD DATA is refused/)
  })

  it('turns transfer jobs into the statement a policy judges', () => {
    const table = (tableId: string) => ({ projectId: 'p', datasetId: 'd', tableId })
    const sqlOf = (configuration: Record<string, unknown>): string => {
      const checked = checkJob({ configuration })
      if (checked.type !== 'transfer') throw new Error('not a transfer')
      return checked.transfer.sql
    }
    expect(sqlOf({ extract: { sourceTable: table('t'), destinationUris: ['gs://b/o*.csv'] } })).toBe("EXPORT DATA OPTIONS(uri='gs://b/o*.csv', format='CSV') AS SELECT * FROM `p.d.t`")
    expect(sqlOf({ copy: { sourceTables: [table('a'), table('b')], destinationTable: table('c') } })).toBe('INSERT INTO `p.d.c` SELECT * FROM `p.d.a` UNION ALL SELECT * FROM `p.d.b`')
    // A load is refused as a load before any SQL is built: the parser cannot read LOAD DATA.
    expect(() => checkJob({ configuration: { load: { sourceUris: ["gs://b/it's.csv"], destinationTable: table('t'), sourceFormat: 'PARQUET' } } }))
      .toThrow(/^refused by Sluice: load jobs are refused: this one into p\.d\.t from gs:\/\/b\/it's\.csv would write files .*no policy rule can allow it.*; load the files with your own BigQuery credentials/)
    expect(() => checkJob({ configuration: { extract: { sourceModel: {} , destinationUris: ['gs://x'] } } })).toThrow(/must be a table reference/)
    expect(() => checkJob({ configuration: { query: { query: 'SELECT 1' }, copy: {} } })).toThrow(/exactly one of/)
  })

  it('carries bind parameters by name or by position', () => {
    expect(statementParams([{ name: 'id', parameterValue: { value: '1' } }])).toEqual({ id: { value: '1' } })
    expect(statementParams([{ parameterValue: { value: '1' } }, { parameterValue: { value: 'x' } }])).toEqual([{ value: '1' }, { value: 'x' }])
    expect(statementParams(undefined)).toBeUndefined()
  })

  it('projects selectedFields onto the table schema in table order', () => {
    const fields = [{ name: 'id', type: 'INTEGER' }, { name: 'a', type: 'RECORD', fields: [{ name: 'x', type: 'STRING' }, { name: 'y', type: 'STRING' }] }, { name: 'z', type: 'STRING' }]
    expect(projectFields(fields, 'z,a.y').map((f) => [f.name, f.fields?.map((s) => s.name)])).toEqual([['a', ['y']], ['z', undefined]])
    expect(projectFields(fields, undefined)).toBe(fields)
  })

  it('reads the timestamp form a client asked for', () => {
    expect(timestampForm('True', undefined)).toBe('int64')
    expect(timestampForm(true, undefined)).toBe('int64')
    expect(timestampForm(undefined, 'ISO8601_STRING')).toBe('iso')
    expect(timestampForm('false', undefined)).toBe('float')
  })
})

describe('bigquery discovery document and errors', () => {
  it('points every URL at the gateway', () => {
    const doc = JSON.parse(discoveryDocument('https://sluice.example.com/'))
    expect(doc).toMatchObject({ rootUrl: 'https://sluice.example.com/', mtlsRootUrl: 'https://sluice.example.com/', baseUrl: 'https://sluice.example.com/bigquery/v2/', endpoints: [] })
    expect(JSON.stringify(doc)).not.toMatch(/"https:\/\/bigquery\.[a-z0-9.-]*googleapis\.com/)
  })

  it('renders catalogue errors in Google\'s shape with the Sluice code', () => {
    const denied = renderError(new ERR_POLICY_DENIED('block-ddl', 'no DDL'), 'req-1')
    expect(denied).toMatchObject({ statusCode: 403, code: 'SLUICE_POLICY_DENIED' })
    expect(denied.body.error).toMatchObject({ code: 403, status: 'PERMISSION_DENIED', message: 'denied by rule block-ddl: no DDL', errors: [{ reason: 'accessDenied' }] })
    expect(renderError(new ERR_NOT_FOUND('Job p:j'), 'r').body.error.errors[0]?.reason).toBe('notFound')
    expect(renderError(new TypeError('boom'), 'req-9').body.error).toMatchObject({ code: 500, message: 'internal error; quote request id req-9' })
    const rewritten = JSON.parse(rewriteSluiceBody(401, JSON.stringify({ code: 'SLUICE_AUTH_MISSING', message: 'a bearer token is required' })) as string)
    expect(rewritten.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', errors: [{ reason: 'authError' }] })
    expect(rewriteSluiceBody(200, '{"code":"SLUICE_X","message":"m"}')).toBe('{"code":"SLUICE_X","message":"m"}')
  })
})

describe('bigquery upstream', () => {
  let emulator: BqEmulator
  beforeAll(async () => { emulator = await startBqEmulator() })
  afterAll(async () => { await emulator?.close() })

  it('offers the policy stage a dry run: statement type and referenced tables', async () => {
    const upstream = new BigQueryUpstream(conn('emu', { project: SEED_PROJECT, url: emulator.url }))
    const dry = await upstream.dryRun(`SELECT email FROM ${SEED_DATASET}.customers`)
    expect(dry.statementType).toBe('SELECT')
    expect(dry.schema?.fields?.map((f) => f.name)).toEqual(['email'])
    // bqemulator reports no referencedTables and 0 bytes; BigQuery fills both.
    expect(Array.isArray(dry.referencedTables)).toBe(true)
  })

  it('keeps the upstream\'s status and reason for the client\'s mistakes', async () => {
    const upstream = new BigQueryUpstream(conn('emu', { project: SEED_PROJECT, url: emulator.url }))
    await expect(upstream.getJob('no_such_job')).rejects.toMatchObject({ statusCode: 404, reason: 'notFound', code: 'SLUICE_BIGQUERY_UPSTREAM' })
  })

  it('exchanges the service-account key for an access token and sends that, never the caller\'s', async () => {
    const seen: string[] = []
    const { createServer } = await import('node:http')
    const server = createServer((req, res) => { seen.push(req.headers.authorization ?? ''); res.writeHead(200, { 'content-type': 'application/json' }).end('{}') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const key = JSON.stringify({ client_email: 'sluice@acme.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) })
    // Google's token endpoint, answered in-process: it checks the signed JWT bearer assertion.
    const assertions: string[] = []
    const tokenFetch = (async (_url: unknown, init?: { body?: unknown }) => {
      assertions.push(new URLSearchParams(String(init?.body)).get('assertion') ?? '')
      return new Response(JSON.stringify({ access_token: 'ya29.sluice-test', expires_in: 3600, token_type: 'Bearer' }), { headers: { 'content-type': 'application/json' } })
    }) as typeof fetch
    const upstream = new BigQueryUpstream(conn('sa', { project: 'acme-prod', url: `http://127.0.0.1:${port}`, credentials: key }), { tokenFetch })
    await upstream.listDatasets({})
    await upstream.listDatasets({})
    server.close()
    expect(seen).toEqual(['Bearer ya29.sluice-test', 'Bearer ya29.sluice-test'])
    expect(assertions).toHaveLength(1) // cached until it nears expiry
    const { payload } = await jwtVerify(assertions[0] as string, publicKey)
    expect(payload).toMatchObject({ iss: 'sluice@acme.iam.gserviceaccount.com', scope: 'https://www.googleapis.com/auth/bigquery' })
  })
})
