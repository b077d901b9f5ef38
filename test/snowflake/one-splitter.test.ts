// One splitter: the statements a multi-statement request runs as upstream, one request each, are
// exactly the statements of the analysis the policy decided on (the parser's own split), never a
// second splitter's. snowflake-sdk → Sluice → the loopback upstream stub, which logs every text it
// is sent and answers only the texts registered with it; the decide stage keeps the texts it
// decided on. Covered: a generated family of requests (every `;` that separates nothing: $$-strings,
// quoted strings with '' and \', quoted identifiers, --, // and /* */ comments, blocks; empty
// statements and noise around them), requests a hand lexer split otherwise than the parser did,
// and a text the parser cannot read, which never runs in pieces.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { DecideStage } from '../../src/pipeline/stages.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'
import { generate } from '../support/snowflake-statement-texts.js'
import { startUpstreamStub, type UpstreamStub } from '../support/snowflake-upstream-stub.js'

const ROWTYPE = [{ name: 'X', type: 'text', nullable: true }]

/** Allows everything, the statements Sluice could not analyse included; keeps what it decided on. */
function keepingDecide (decided: string[][]): DecideStage {
  return {
    name: 'decide',
    enforcing: true,
    decide (_statement, analysis) {
      decided.push(analysis.statements.map((s) => s.text))
      return { effect: 'allow', ruleId: 'allow-all', reason: 'allowed', limits: {} }
    }
  }
}

describe('a multi-statement request runs as the statements the policy decided on', () => {
  let stub: UpstreamStub
  let gw: SnowflakeGateway
  let conn: SdkConnection
  let decided: string[][] = []

  beforeAll(async () => {
    stub = await startUpstreamStub()
    const shared: string[][] = []
    decided = shared
    gw = await startSnowflakeGateway({
      connections: { stubbed: { kind: 'snowflake', url: stub.url, default: true, account: 'acme', user: 'svc', password: 'pw', secondaryRoles: 'keep' } },
      stages: { decide: keepingDecide(shared) }
    })
    conn = await connectSdk({ accessUrl: gw.url, token: await gw.token('alice') })
  }, 120_000)

  afterAll(async () => {
    if (conn !== undefined) await destroySdk(conn)
    await gw?.close()
    await stub?.close()
  })

  beforeEach(() => { decided.length = 0 })

  /** Runs `sql` with MULTI_STATEMENT_COUNT `count`; returns the texts the upstream was sent. */
  async function ranUpstream (sql: string, count: number): Promise<{ sent: string[], error?: Error & { code?: string } }> {
    const before = stub.queryLog.length
    const error = await runSdk(conn, sql, { parameters: { MULTI_STATEMENT_COUNT: count } }).then(() => undefined, (e: Error) => e)
    return { sent: stub.queryLog.slice(before).map((q) => q.sqlText), ...(error !== undefined && { error }) }
  }

  function answer (texts: string[]): void {
    for (const text of texts) stub.statements.set(text, { rowtype: ROWTYPE, rowset: [['ok']] })
  }

  it('runs each statement of a generated family exactly as the analysis delimited it', async () => {
    const family = generate(40)
    for (const { sql, statements } of family) {
      answer(statements)
      decided.length = 0
      const { sent, error } = await ranUpstream(sql, statements.length)
      expect(error, sql).toBeUndefined()
      // What the policy decided on is the request's statements, as constructed …
      expect(decided, sql).toEqual([statements])
      // … and exactly that ran, one upstream request per statement, in order.
      expect(sent, sql).toEqual(statements)
    }
  }, 240_000)

  it('runs an identifier with $$ in it as the parser read it, not as the start of a $$-string', async () => {
    // A hand lexer took `A$$B` for the start of a $$-string swallowing the `;`: one statement to it,
    // two to the policy (so MULTI_STATEMENT_COUNT 2 was refused, and 0 ran the text as one request).
    const sql = 'SELECT A$$B FROM T; SELECT 2 AS X'
    answer(['SELECT A$$B FROM T', 'SELECT 2 AS X'])
    for (const count of [2, 0]) {
      decided.length = 0
      const { sent, error } = await ranUpstream(sql, count)
      expect(error).toBeUndefined()
      expect(sent).toEqual(decided[0])
      expect(sent).toEqual(['SELECT A$$B FROM T', 'SELECT 2 AS X'])
    }
  })

  it('runs a BEGIN … END block as the one statement the policy decided on, not cut at its semicolons', async () => {
    // A hand lexer cut the block at its inner semicolons: with MULTI_STATEMENT_COUNT 0 it ran
    // `BEGIN INSERT …`, `SELECT 1` and `END` on their own, texts no policy had decided on.
    const block = "BEGIN\n  INSERT INTO T VALUES ('p;q');\n  SELECT 1;\nEND"
    answer([block, 'SELECT 2 AS X'])
    const { sent, error } = await ranUpstream(`${block};\nSELECT 2 AS X;`, 0)
    expect(error).toBeUndefined()
    expect(decided).toEqual([[block, 'SELECT 2 AS X']])
    expect(sent).toEqual([block, 'SELECT 2 AS X'])
    // Declared as the four statements the hand lexer saw, it is refused before anything runs.
    const four = await ranUpstream(`${block};\nSELECT 2 AS X;`, 4)
    expect(four.error).toMatchObject({ code: '000008' })
    expect(four.error?.message).toMatch(/^Actual statement count 2 did not match the desired statement count 4/)
    expect(four.sent).toEqual([])
  })

  it('keeps the declared statement count check, on the parser\'s count, recorded as a refusal', async () => {
    const sql = 'SELECT 1 AS X;; SELECT 2 AS X; -- and nothing else'
    const { sent, error } = await ranUpstream(sql, 3)
    expect(error).toMatchObject({ code: '000008' })
    expect(error?.message).toMatch(/^Actual statement count 2 did not match the desired statement count 3/)
    expect(sent).toEqual([])
    const events = await gw.store.query<{ error_code: string | null, decision: string | null }>('select error_code, decision from session_events where sql_text = $1', [sql])
    expect(events).toEqual([{ error_code: 'SLUICE_SNOWFLAKE_STATEMENT_COUNT', decision: null }])
  })

  it('refuses a request with no statement (blanks, semicolons, comments) before anything runs', async () => {
    for (const sql of [';;', ' ; -- nothing\n ; /* at all */']) {
      const { sent, error } = await ranUpstream(sql, 0)
      expect(error?.message, sql).toMatch(/the request carries no SQL statement/)
      expect(sent, sql).toEqual([])
    }
  })

  it('runs a text the parser cannot read only whole, as one statement the warehouse refuses if it holds more', async () => {
    // UNDROP is valid Snowflake the parser lacks: decided on as one unknown statement (and here
    // allowed), it is sent as that one text with MULTI_STATEMENT_COUNT 1, never cut by Sluice.
    answer(['UNDROP TABLE T; SELECT 1 AS X'])
    const before = stub.queryLog.length
    const { sent, error } = await ranUpstream('UNDROP TABLE T; SELECT 1 AS X', 1)
    expect(error).toBeUndefined()
    expect(decided).toEqual([['UNDROP TABLE T; SELECT 1 AS X']])
    expect(sent).toEqual(['UNDROP TABLE T; SELECT 1 AS X'])
    expect(stub.queryLog[before]?.parameters).toMatchObject({ MULTI_STATEMENT_COUNT: 1 })
    // Declared as several statements, it cannot run as one: refused, nothing sent, not decided.
    decided.length = 0
    const several = await ranUpstream('UNDROP TABLE T; SELECT 1 AS X', 2)
    expect(several.error?.message).toMatch(/Sluice's SQL parser does not read UNDROP, so Sluice cannot tell the 2 statements of this request apart; send them one at a time/)
    expect(several.sent).toEqual([])
    expect(decided).toEqual([])
  })

  it('sends a single statement\'s own text, without the MULTI_STATEMENT_COUNT it does not need', async () => {
    answer(["SELECT 'a\\';b' AS X"])
    const before = stub.queryLog.length
    const { sent, error } = await ranUpstream("  SELECT 'a\\';b' AS X\n", 1)
    expect(error).toBeUndefined()
    expect(sent).toEqual(["SELECT 'a\\';b' AS X"])
    expect(stub.queryLog[before]?.parameters?.MULTI_STATEMENT_COUNT).toBeUndefined()
  })
})
