// The masking escape hatches black-box testing found, closed at their mechanism and checked
// through snowflake-sdk and SQL API v2 against fakesnow with the gateway's own stages:
// - format-keeping masks (email, partial, last4) on values computed from the column released
//   the hidden part (REVERSE(email) → XXXXX@ecila.yranac): a generated family of rearranging
//   functions, each first shown to reveal the value when run directly on fakesnow;
// - serialised rows and objects (OBJECT_CONSTRUCT(*), TO_JSON(OBJECT_CONSTRUCT(…)), ARRAY_AGG of
//   objects) masked field by field and still valid JSON, unmasked fields (ID) untouched;
// - a UNION of stars over one table no longer masks columns no rule covers;
// - RESULT_SCAN / QUERY_HISTORY / ACCOUNT_USAGE refused before anything runs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tableFromIPC } from 'apache-arrow'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getEvent, searchEvents } from '../../src/recording/search.js'
import { canaryLeak, plainEmailParts, revealedPart } from '../support/canary.js'
import { CUSTOMERS, SEED_DATABASE, SEED_SCHEMA, startFakesnow, type Fakesnow } from '../support/fakesnow.js'
import { connectSdk, destroySdk, runSdk, type SdkConnection } from '../support/snowflake-node-client.js'
import { startSnowflakeGateway, type SnowflakeGateway } from '../support/snowflake-gateway.js'

const POLICY = `version: 1
rules:
  - id: agents-read
    effect: allow
    match: { roles: [agent], kinds: [select] }
masking:
  - id: email-domain
    columns: ['*.*.customers.email']
    function: email
  - id: ssn-last4
    columns: ['*.*.customers.ssn']
    function: partial
    keep: { last: 4 }
  - id: card-last4
    columns: ['*.*.customers.card_number']
    function: last4
    derived: hash
`

// What the masks hide: the part before the domain, the SSN's first five digits, the card's head.
const HIDDEN = CUSTOMERS.flatMap((c) => [`${c.email.split('@')[0] as string}@`, c.ssn.slice(0, 6), c.card.slice(0, 8)])
// The same, as letters and digits only: the local part next to the domain, SSN and card digits.
const HIDDEN_CHARS = CUSTOMERS.flatMap((c) => [...plainEmailParts(c.email), c.ssn.replace(/\D/g, '').slice(0, 6), c.card.slice(0, 8)])

/** A hidden part in any encoding, or its letters and digits with the separators changed or gone. */
function revealed (text: string): string | undefined {
  return revealedPart(text, HIDDEN, HIDDEN_CHARS)
}

function expectHidden (what: string, text: string): void {
  const leak = revealed(text)
  expect(leak, `${what} leaked ${leak ?? ''}: ${text.slice(0, 300)}`).toBeUndefined()
}

let fakesnow: Fakesnow
let gw: SnowflakeGateway
let dir: string
let conn: SdkConnection
let headers: Record<string, string>

beforeAll(async () => {
  fakesnow = await startFakesnow()
  dir = await mkdtemp(join(tmpdir(), 'sluice-sf-escapes-'))
  await writeFile(join(dir, 'masking.yaml'), POLICY)
  gw = await startSnowflakeGateway({
    // fakesnow cannot parse USE SECONDARY ROLES: this connection opts out.
    connections: { fake: { kind: 'snowflake', url: fakesnow.url, default: true, user: 'sluice', password: 'pw', database: SEED_DATABASE, schema: SEED_SCHEMA, secondaryRoles: 'keep' } },
    stages: 'configured',
    policiesDirectory: dir
  })
  const token = await gw.token('alice')
  conn = await connectSdk({ accessUrl: gw.url, token })
  headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'user-agent': 'escapes-test/1.0' }
}, 120_000)

afterAll(async () => {
  if (conn !== undefined) await destroySdk(conn)
  await gw?.close()
  await fakesnow?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** The rows fakesnow itself answers (its Arrow rowset decoded), as text. */
async function directly (sql: string): Promise<string> {
  const data = await fakesnow.sql(sql) as { rowset?: unknown[], rowsetBase64?: string }
  if (data.rowsetBase64 === undefined) return JSON.stringify(data.rowset)
  return JSON.stringify(tableFromIPC(Buffer.from(data.rowsetBase64, 'base64')).toArray().map((r) => r.toJSON()))
}

async function sqlApi (statement: string): Promise<{ status: number, body: any, text: string, requestId: string }> {
  const res = await request(`${gw.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement }) })
  const text = await res.body.text()
  return { status: res.statusCode, body: JSON.parse(text), text, requestId: String(res.headers['x-request-id']) }
}

/** The first column of every row, through snowflake-sdk. */
async function column (sql: string): Promise<unknown[]> {
  const { rows } = await runSdk(conn, sql)
  return rows.map((r) => Object.values(r)[0])
}

// Each rearranges a masked value so that a format-keeping mask applied to the output would show
// the hidden part: the generated family of item 1, over every masked column.
const REARRANGED: Array<[column: string, expr: (c: string) => string]> = [
  ['EMAIL', (c) => `REVERSE(${c})`],
  ['EMAIL', (c) => `SPLIT_PART(${c}, '@', 2) || '@' || SPLIT_PART(${c}, '@', 1)`],
  ['EMAIL', (c) => `LEFT(${c}, 5)`],
  ['EMAIL', (c) => `UPPER(${c})`],
  ['EMAIL', (c) => `REPLACE(${c}, '@', '#')`],
  ['SSN', (c) => `REVERSE(${c})`],
  ['SSN', (c) => `REPLACE(${c}, '-', '')`],
  ['SSN', (c) => `TRANSLATE(${c}, '-', '_')`],
  ['SSN', (c) => `REGEXP_REPLACE(${c}, '-', '+')`],
  ['SSN', (c) => `LPAD(${c}, 20, '#')`],
  ['SSN', (c) => `HEX_ENCODE(${c})`],
  ['SSN', (c) => `INSERT(${c}, 1, 0, 'x')`],
  ['CARD_NUMBER', (c) => `REVERSE(${c})`],
  ['CARD_NUMBER', (c) => `SUBSTR(${c}, 1, 8)`],
  ['CARD_NUMBER', (c) => `${c} || ''`]
]

describe('format-keeping masks never apply to computed values (snowflake-sdk and SQL API)', () => {
  it.each(REARRANGED.map(([c, f]) => [f(c)]))('%s gets a keep-nothing mask', async (expr) => {
    const sql = `SELECT ${expr} AS V FROM CUSTOMERS ORDER BY ID`
    // Sanity: run directly, the expression really shows what the mask hides.
    expect(revealed(await directly(sql)), 'the expression reveals the value when run directly').toBeDefined()

    const values = await column(sql)
    expect(values).toHaveLength(CUSTOMERS.length)
    expectHidden(`snowflake-sdk ${expr}`, JSON.stringify(values))
    if (expr.includes('CARD_NUMBER')) {
      for (const v of values) expect(v, 'card-last4 says derived: hash').toMatch(/^[0-9a-f]{64}$/)
    } else {
      expect(values).toEqual(CUSTOMERS.map(() => '****'))
    }
    const api = await sqlApi(sql)
    expect(api.status).toBe(200)
    expectHidden(`SQL API ${expr}`, api.text)
  })

  it('the value itself, an alias, a text cast and MAX keep the format mask', async () => {
    expect(await column('SELECT EMAIL FROM CUSTOMERS ORDER BY ID')).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(await column('SELECT EMAIL::VARCHAR AS E FROM CUSTOMERS ORDER BY ID')).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(await column('SELECT SSN AS S FROM CUSTOMERS ORDER BY ID')).toEqual(CUSTOMERS.map((c) => `*******${c.ssn.slice(-4)}`))
    expect(await column('SELECT MAX(EMAIL) AS M FROM CUSTOMERS')).toEqual(['XXXXX@example.com'])
  })

  it('the event says why a computed value was masked whole', async () => {
    const res = await sqlApi('SELECT REVERSE(EMAIL) AS R FROM CUSTOMERS')
    const completed = (await searchEvents(gw.store, { requestId: res.requestId })).items.filter((e) => e.phase !== 'admitted')
    expect(completed).toHaveLength(1)
    const event = await getEvent(gw.store, completed[0]!.id)
    expect(event?.masking).toEqual([expect.objectContaining({ column: 'R', rule: 'email-domain', reason: expect.stringMatching(/computed from .*email.*not the value itself.*redacted/) })])
  })
})

describe('serialised rows and objects are masked field by field and stay valid', () => {
  it('OBJECT_CONSTRUCT of named fields', async () => {
    const values = await column("SELECT OBJECT_CONSTRUCT('e', EMAIL, 's', SSN, 'n', NAME) AS O FROM CUSTOMERS ORDER BY ID")
    expectHidden('OBJECT_CONSTRUCT', JSON.stringify(values))
    expect(values).toEqual(CUSTOMERS.map((c) => ({ e: 'XXXXX@example.com', s: `*******${c.ssn.slice(-4)}`, n: c.name })))
  })

  it('OBJECT_CONSTRUCT(*) and TO_JSON of it: every field by its own rule, ID untouched', async () => {
    const objects = await column('SELECT OBJECT_CONSTRUCT(*) AS O FROM CUSTOMERS ORDER BY ID') as Array<Record<string, unknown>>
    expectHidden('OBJECT_CONSTRUCT(*)', JSON.stringify(objects))
    const lower = objects.map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v])))
    expect(lower.map((o) => Number(o.id))).toEqual(CUSTOMERS.map((c) => c.id))
    expect(lower.map((o) => o.email)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect(lower.map((o) => o.name)).toEqual(CUSTOMERS.map((c) => c.name))
    const texts = await column('SELECT TO_JSON(OBJECT_CONSTRUCT(*)) AS J FROM CUSTOMERS ORDER BY ID') as string[]
    expectHidden('TO_JSON(OBJECT_CONSTRUCT(*))', JSON.stringify(texts))
    for (const t of texts) expect(() => JSON.parse(t), `valid JSON: ${t}`).not.toThrow()
  })

  it("TO_JSON(OBJECT_CONSTRUCT('e', EMAIL)) is valid JSON with the masked email", async () => {
    const texts = await column("SELECT TO_JSON(OBJECT_CONSTRUCT('e', EMAIL)) AS J FROM CUSTOMERS ORDER BY ID") as string[]
    expect(texts.map((t) => JSON.parse(t))).toEqual(CUSTOMERS.map(() => ({ e: 'XXXXX@example.com' })))
  })

  it('ARRAY_AGG of objects and an object literal', async () => {
    const [agg] = await column("SELECT ARRAY_AGG(OBJECT_CONSTRUCT('e', EMAIL, 'c', CARD_NUMBER)) AS A FROM CUSTOMERS")
    expectHidden('ARRAY_AGG(OBJECT_CONSTRUCT)', JSON.stringify(agg))
    expect((agg as Array<{ e: string, c: string }>).map((o) => o.e)).toEqual(CUSTOMERS.map(() => 'XXXXX@example.com'))
    expect((agg as Array<{ e: string, c: string }>).map((o) => o.c).sort()).toEqual(CUSTOMERS.map((c) => `XXXXX${c.card.slice(-4)}`).sort())
    // fakesnow upper-cases the literal's key (Snowflake keeps it); keys match either way.
    const literal = await column("SELECT {'e': EMAIL} AS O FROM CUSTOMERS ORDER BY ID") as Array<Record<string, unknown>>
    expect(literal.map((o) => Object.values(o))).toEqual(CUSTOMERS.map(() => ['XXXXX@example.com']))
  })
})

describe('columns no rule covers stay in clear', () => {
  it('SELECT * … UNION ALL SELECT * over one table keeps ID', async () => {
    const { rows } = await runSdk(conn, 'SELECT * FROM CUSTOMERS UNION ALL SELECT * FROM CUSTOMERS')
    expect(rows.map((r) => Number(r.ID)).sort()).toEqual([...CUSTOMERS, ...CUSTOMERS].map((c) => c.id).sort())
    expect(new Set(rows.map((r) => r.EMAIL))).toEqual(new Set(['XXXXX@example.com']))
    expectHidden('UNION ALL of stars', JSON.stringify(rows))
  })
})

describe('reads that re-read results or other sessions\' SQL are refused before anything runs', () => {
  it.each([
    'SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))',
    "SELECT * FROM TABLE(RESULT_SCAN('01b2c3d4-0000-0000-0000-000000000000'))",
    'SELECT query_text FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY())',
    'SELECT query_text FROM TABLE(INFORMATION_SCHEMA.QUERY_HISTORY_BY_USER())',
    'SELECT query_text FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY'
  ])('%s', async (sql) => {
    const err = await runSdk(conn, sql).then(() => undefined, (e: unknown) => e as { message: string })
    expect(err?.message).toMatch(/^denied by rule result-reread: /)
    expect(err?.message).toMatch(/query the tables themselves/)
    const api = await sqlApi(sql)
    expect(api.status).toBe(422)
    expect(api.body.message).toMatch(/result-reread/)
  })
})
