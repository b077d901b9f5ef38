// A loopback stand-in for the parts of Snowflake's connector protocol fakesnow does not
// implement, written from what the drivers expect (snowflake-sdk lib/services/sf.js,
// lib/connection/statement.js, lib/connection/result/result.js and chunk.js):
//
// - master tokens and session renewal: POST /session/token-request with
//   `Authorization: Snowflake Token="<master>"` and {oldSessionToken, requestType: 'RENEW'},
//   answered with {sessionToken, validityInSecondsST, masterToken, validityInSecondsMT};
//   an expired session token is refused with code 390112 (GS SESSION_TOKEN_EXPIRED);
// - "still running": code 333333 with data.getResultUrl, which the client GETs until done;
// - large results: data.chunks[{url, rowCount}] in cloud storage, downloaded with the SSE-C
//   headers built from data.qrmk (x-amz-server-side-encryption-customer-algorithm/-key);
//   a download without the right key is refused with 403, as S3 refuses it;
// - session state: each login is one session (renewals keep it), `SELECT LAST_QUERY_ID()`
//   answers the id of that session's previous statement, and `USE SECONDARY ROLES NONE | ALL`
//   succeeds unless `refuseSecondaryRoles` is set (then it fails as fakesnow's parser does).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'

export interface StubStatement {
  rowtype: Array<Record<string, unknown>>
  /** Inline JSON rows (queryResultFormat json) … */
  rowset?: unknown[][]
  /** … or inline Arrow (base64 IPC stream). */
  rowsetBase64?: string
  /** Extra chunks, each a JSON chunk body (rows without the enclosing brackets) or Arrow bytes. */
  chunks?: Array<{ body: string | Buffer, rowCount: number }>
  /** How many 333333 answers before the result. */
  pollsBeforeResult?: number
  statementTypeId?: number
}

export interface UpstreamStub {
  url: string
  /** Every request path, in order (with method), for assertions. */
  requests: string[]
  /** Expire the current session token: the next statement request gets 390112. */
  expireSessionToken: () => void
  /** Forget every session: the next request gets 390104 (log in again). */
  dropSessions: () => void
  statements: Map<string, StubStatement>
  /** Login bodies (`data`) and query strings, to check what Sluice sends upstream. */
  loginRequests: Array<{ data: Record<string, unknown>, query: string }>
  /** query-request bodies, to check what Sluice forwards (parameters, bindings). */
  queryRequests: Array<Record<string, unknown>>
  /** Every statement with the upstream session (1, 2, … by login) and session token it ran on. */
  queryLog: Array<{ sqlText: string, session: number, token: string, queryId: string, parameters?: Record<string, unknown> }>
  /** Answer USE SECONDARY ROLES with a syntax error (as fakesnow does). */
  refuseSecondaryRoles: boolean
  /** Chunk downloads never answer (a stalled cloud storage), until set back. */
  stallChunks: boolean
  /** Sessions logged out (POST /session?delete=true), by session number. */
  loggedOut: number[]
  logins: number
  renewals: number
  close: () => Promise<void>
}

export const QRMK = 'c3R1Yi1xdWVyeS1yZXN1bHQtbWFzdGVyLWtleQ=='

export async function startUpstreamStub (): Promise<UpstreamStub> {
  const requests: string[] = []
  const statements = new Map<string, StubStatement>()
  const loginRequests: UpstreamStub['loginRequests'] = []
  const queryRequests: UpstreamStub['queryRequests'] = []
  const valid = new Set<string>()
  const masters = new Set<string>()
  const pending = new Map<string, { statement: StubStatement, polls: number }>()
  const queryLog: UpstreamStub['queryLog'] = []
  const loggedOut: number[] = []
  /** Session token → session number; a renewal maps its new token to the same session. */
  const sessionOf = new Map<string, number>()
  const lastQueryId = new Map<number, string>()
  let seq = 0
  let sessions = 0
  const stub = { logins: 0, renewals: 0, refuseSecondaryRoles: false, stallChunks: false }

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      res.writeHead(500).end(String(err))
    })
  })

  async function body (req: IncomingMessage): Promise<Record<string, unknown>> {
    const parts: Buffer[] = []
    for await (const part of req) parts.push(part as Buffer)
    const text = Buffer.concat(parts).toString('utf8')
    return text === '' ? {} : JSON.parse(text) as Record<string, unknown>
  }

  function json (res: ServerResponse, payload: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
  }

  function tokenOf (req: IncomingMessage): string {
    return /Snowflake Token="([^"]*)"/.exec(req.headers.authorization ?? '')?.[1] ?? ''
  }

  function resultData (id: string, s: StubStatement, base: string): Record<string, unknown> {
    const data: Record<string, unknown> = {
      queryId: id,
      rowtype: s.rowtype,
      total: (s.rowset?.length ?? 0) + (s.chunks ?? []).reduce((n, c) => n + c.rowCount, 0),
      statementTypeId: s.statementTypeId ?? 4096,
      parameters: [{ name: 'TIMEZONE', value: 'UTC' }],
      queryResultFormat: s.rowsetBase64 === undefined ? 'json' : 'arrow'
    }
    if (s.rowsetBase64 !== undefined) data.rowsetBase64 = s.rowsetBase64
    else data.rowset = s.rowset ?? []
    if (s.chunks !== undefined && s.chunks.length > 0) {
      data.chunks = s.chunks.map((c, n) => ({ url: `${base}/stage/results/${id}/chunk_${n}`, rowCount: c.rowCount }))
      data.qrmk = QRMK
    }
    return data
  }

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stub')
    requests.push(`${req.method ?? ''} ${url.pathname}`)
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    if (url.pathname === '/session/v1/login-request') {
      const b = await body(req)
      loginRequests.push({ data: b.data as Record<string, unknown>, query: url.search })
      stub.logins++
      const token = `st-${++seq}`
      const master = `mt-${seq}`
      valid.add(token)
      masters.add(master)
      const session = ++sessions
      sessionOf.set(token, session)
      sessionOf.set(master, session)
      json(res, { success: true, data: { token, masterToken: master, validityInSeconds: 3600, masterValidityInSeconds: 14400, sessionId: session, parameters: [{ name: 'TIMEZONE', value: 'UTC' }] } })
      return
    }
    if (url.pathname === '/session/token-request') {
      const b = await body(req)
      if (!masters.has(tokenOf(req))) {
        json(res, { success: false, code: '390114', message: 'Authentication token has expired.', data: null })
        return
      }
      stub.renewals++
      valid.delete(String(b.oldSessionToken))
      const token = `st-${++seq}`
      valid.add(token)
      sessionOf.set(token, sessionOf.get(tokenOf(req)) ?? 0)
      json(res, { success: true, data: { sessionToken: token, validityInSecondsST: 3600, masterToken: tokenOf(req), validityInSecondsMT: 14400 } })
      return
    }
    const chunk = /^\/stage\/results\/([^/]+)\/chunk_(\d+)$/.exec(url.pathname)
    if (chunk !== null) {
      const found = pending.get(chunk[1] ?? '')?.statement
      if (req.headers['x-amz-server-side-encryption-customer-key'] !== QRMK ||
          req.headers['x-amz-server-side-encryption-customer-algorithm'] !== 'AES256') {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>')
        return
      }
      const c = found?.chunks?.[Number(chunk[2])]
      if (stub.stallChunks) return
      if (c === undefined) {
        res.writeHead(404).end()
        return
      }
      // Cloud storage serves chunks gzip-compressed.
      res.writeHead(200, { 'content-type': 'binary/octet-stream', 'content-encoding': 'gzip' })
        .end(gzipSync(typeof c.body === 'string' ? Buffer.from(c.body) : c.body))
      return
    }
    // Every other route needs a live session token.
    const token = tokenOf(req)
    if (!valid.has(token)) {
      await body(req)
      const expired = expiredTokens.has(token)
      json(res, expired
        ? { success: false, code: '390112', message: 'Your session has expired. Please login again.', data: null }
        : { success: false, code: '390104', message: 'User must login again to access the service.', data: null })
      return
    }
    if (url.pathname === '/session' && url.searchParams.get('delete') === 'true') {
      await body(req)
      valid.delete(token)
      loggedOut.push(sessionOf.get(token) ?? 0)
      json(res, { success: true, data: null })
      return
    }
    if (url.pathname === '/queries/v1/query-request') {
      const b = await body(req)
      queryRequests.push(b)
      const session = sessionOf.get(token) ?? 0
      const sqlText = String(b.sqlText)
      const id = `01b0-stub-${++seq}`
      const entry: UpstreamStub['queryLog'][number] = { sqlText, session, token, queryId: id }
      if (b.parameters !== undefined) entry.parameters = b.parameters as Record<string, unknown>
      queryLog.push(entry)
      const previous = lastQueryId.get(session)
      lastQueryId.set(session, id)
      const builtIn = builtInStatement(sqlText, previous)
      if (builtIn === 'refused') {
        json(res, { success: false, code: '001003', message: `001003 (42000): Parser Error: syntax error at or near "ROLES"`, data: { errorCode: '001003', sqlState: '42000', queryId: id } })
        return
      }
      const s = builtIn ?? statements.get(sqlText)
      if (s === undefined) {
        json(res, { success: false, code: '002003', message: `SQL compilation error: Object '${String(b.sqlText)}' does not exist.`, data: { sqlState: '42S02', queryId: id } })
        return
      }
      pending.set(id, { statement: s, polls: 0 })
      if ((s.pollsBeforeResult ?? 0) > 0) {
        json(res, { success: true, code: '333333', message: 'Query execution in progress', data: { queryId: id, getResultUrl: `/queries/${id}/result` } })
        return
      }
      json(res, { success: true, data: resultData(id, s, base) })
      return
    }
    const result = /^\/queries\/([^/]+)\/result$/.exec(url.pathname)
    if (result !== null) {
      const p = pending.get(result[1] ?? '')
      if (p === undefined) {
        json(res, { success: false, code: '000709', message: 'Statement not found', data: null })
        return
      }
      p.polls++
      if (p.polls < (p.statement.pollsBeforeResult ?? 0)) {
        json(res, { success: true, code: '333333', message: 'Query execution in progress', data: { queryId: result[1], getResultUrl: `/queries/${result[1] ?? ''}/result` } })
        return
      }
      json(res, { success: true, data: resultData(result[1] ?? '', p.statement, base) })
      return
    }
    await body(req)
    json(res, { success: true, data: null })
  }

  /** Statements the stub answers itself from session state. */
  function builtInStatement (sqlText: string, previousQueryId: string | undefined): StubStatement | 'refused' | undefined {
    const sql = sqlText.trim().replace(/\s+/g, ' ').toUpperCase()
    if (/^USE SECONDARY ROLES (NONE|ALL)$/.test(sql)) {
      if (stub.refuseSecondaryRoles) return 'refused'
      return { rowtype: [{ name: 'status', type: 'text', nullable: true }], rowset: [['Statement executed successfully.']], statementTypeId: 0x5000 }
    }
    if (sql === 'SELECT LAST_QUERY_ID()') {
      return { rowtype: [{ name: 'LAST_QUERY_ID()', type: 'text', nullable: true }], rowset: [[previousQueryId ?? null]] }
    }
    return undefined
  }

  const expiredTokens = new Set<string>()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    statements,
    loginRequests,
    queryRequests,
    queryLog,
    loggedOut,
    get refuseSecondaryRoles () { return stub.refuseSecondaryRoles },
    set refuseSecondaryRoles (value: boolean) { stub.refuseSecondaryRoles = value },
    get stallChunks () { return stub.stallChunks },
    set stallChunks (value: boolean) { stub.stallChunks = value },
    get logins () { return stub.logins },
    get renewals () { return stub.renewals },
    expireSessionToken () {
      for (const t of valid) expiredTokens.add(t)
      valid.clear()
    },
    dropSessions () {
      valid.clear()
      masters.clear()
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}
