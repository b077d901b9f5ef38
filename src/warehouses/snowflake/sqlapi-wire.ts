// SQL API v2 encoding (specs/snowflake-sqlapi.yaml): ResultSet with partitions, QueryStatus,
// QueryFailureStatus, CancelStatus and the Link header. Request `parameters` are checked by
// parameters.ts, the allow-list both front ends share.
import type { Handle } from './handles.js'
import type { StoredResult } from './manifest.js'
import { rowsetFromRows } from './rowset.js'
import type { PageEncoder } from './pages.js'
import { jsonRowsEncoder, type SnowflakeErrorInfo } from './wire.js'

/** Statements the SQL API does not run (spec: requestBody.statement), refused before admission. */
// Each refusal says what the agent can do instead, chosen by what was refused: a request is its
// own session here, so session state, transactions and temporary objects would not outlive it.
const CONNECTOR = 'a connector (snowflake-sdk, the Python connector), whose session keeps it'
export function sqlApiRefusal (keyword: string, text: string): string | undefined {
  const head = leadingWords(text, HEAD_WORDS)
  if (keyword === 'USE') return 'USE statements are not supported by SQL API v2; name database, schema, warehouse and role in the request instead'
  if (keyword === 'SET' || keyword === 'UNSET') return `${keyword} statements are not supported by SQL API v2: session variables do not outlive a request; write the value into the statement or pass it in "bindings" instead`
  if (['BEGIN', 'COMMIT', 'ROLLBACK'].includes(keyword) || head.startsWith('START TRANSACTION')) {
    return `${keyword === 'START' ? 'START TRANSACTION' : keyword} is not supported by SQL API v2: each request commits on its own; send each change as one statement, or use ${CONNECTOR.replace('keeps it', 'keeps a transaction open')}`
  }
  if (head.startsWith('ALTER SESSION')) return 'ALTER SESSION is not supported by SQL API v2; pass session parameters in "parameters"'
  const temporary = /^CREATE (?:OR REPLACE )?(?:LOCAL |GLOBAL )?(TEMP|TEMPORARY|VOLATILE) (\w+)/.exec(head)
  if (temporary !== null) {
    return `CREATE ${temporary[1] as string} ${temporary[2] as string} is not supported by SQL API v2: a temporary object lives as long as its session, and SQL API requests do not share one; ` +
      `use a CTE (WITH …) or a subquery in the same statement instead, or ${CONNECTOR}`
  }
  return undefined
}

// The longest form the checks above read: CREATE OR REPLACE GLOBAL TEMPORARY <kind>.
const HEAD_WORDS = 7

/**
 * The first `n` words of `text`, upper-cased, joined by single spaces: what the checks read,
 * found without rewriting the whole statement (a 1 MB statement's text is not copied).
 */
export function leadingWords (text: string, n: number): string {
  const words: string[] = []
  const word = /\S+/g
  for (let m = word.exec(text); m !== null && words.length < n; m = word.exec(text)) words.push(m[0])
  return words.join(' ').toUpperCase()
}

export interface Partitioning {
  statusUrl: string
  /** Replace nulls with the string 'null' (the `nullable=false` query parameter). */
  nullAsText: boolean
}

/** One partition per page of the manifest: the upstream's own pages, never re-encoded to count. */
export function partitionCount (result: StoredResult): number {
  return Math.max(1, result.manifest.pages.length)
}

function partitionRows (rows: unknown[][], p: Partitioning): Array<Array<string | null>> {
  const text = rowsetFromRows(rows)
  return p.nullAsText ? nullsAsText(text) : text
}

/** The `nullable=false` query parameter: every null sent as the text 'null'. */
function nullsAsText (rows: Array<Array<string | null>>): string[][] {
  return rows.map((r) => r.map((v) => v ?? 'null'))
}

const DML_STATS: Record<string, string> = {
  'number of rows inserted': 'numRowsInserted',
  'number of rows updated': 'numRowsUpdated',
  'number of rows deleted': 'numRowsDeleted',
  'number of multi-joined rows updated': 'numDuplicateRowsUpdated'
}

/** DML results carry their counts as a one-row result; the SQL API reports them as `stats`. */
function statsOf (result: StoredResult): Record<string, number> | undefined {
  const type = result.manifest.statementTypeId ?? 0
  if (type < 0x3000 || type >= 0x4000) return undefined
  const row = result.firstPage[0] ?? []
  const stats: Record<string, number> = {}
  result.manifest.rowtype.forEach((column, i) => {
    const key = DML_STATS[column.name.toLowerCase()]
    if (key !== undefined) stats[key] = Number(row[i] ?? 0)
  })
  return stats
}

export function statusBase (handle: Pick<Handle, 'id' | 'createdOn'>, statusUrl: string): Record<string, unknown> {
  return { statementHandle: handle.id, createdOn: handle.createdOn, statementStatusUrl: statusUrl }
}

/** A ResultSet for one partition whose (masked) rows are `rows`; partition 0 carries the metadata. */
export function resultSet (handle: Handle, result: StoredResult, p: Partitioning, partition: number, rows: unknown[][]): Record<string, unknown> {
  const m = result.manifest
  const body: Record<string, unknown> = {
    code: '090001',
    sqlState: '00000',
    message: m.notice ?? 'Statement executed successfully.',
    ...statusBase(handle, p.statusUrl)
  }
  if (partition === 0) {
    body.resultSetMetaData = {
      numRows: m.total,
      format: 'jsonv2',
      partitionInfo: m.pages.map((page) => ({ rowCount: page.rows, uncompressedSize: page.bytes })),
      rowType: m.rowtype.map((r) => ({
        name: r.name,
        database: r.database ?? '',
        schema: r.schema ?? '',
        table: r.table ?? '',
        type: r.type,
        length: r.length ?? null,
        precision: r.precision ?? null,
        scale: r.scale ?? null,
        byteLength: r.byteLength ?? null,
        nullable: r.nullable !== false,
        collation: r.collation ?? null
      })),
      nullable: !p.nullAsText,
      parameters: Object.fromEntries(m.parameters.map((x) => [x.name.toLowerCase(), x.value]))
    }
    const stats = statsOf(result)
    if (stats !== undefined) body.stats = stats
    if (m.children !== undefined) body.statementHandles = m.children
  }
  body.data = partitionRows(rows, p)
  return body
}

/**
 * A partition's ResultSet as bytes, its `data` encoded slice by slice as the rows are released:
 * the same body `resultSet` gives, without the partition's rows all alive at once.
 */
export function resultSetEncoder (handle: Handle, result: StoredResult, p: Partitioning, partition: number): PageEncoder<Buffer> {
  const head = JSON.stringify(resultSet(handle, result, p, partition, []))
  // `data` is the body's last member: its rows go between the brackets of `"data":[]}`.
  if (!head.endsWith('[]}')) throw new Error('a ResultSet must end with its data')
  const rows = jsonRowsEncoder(p.nullAsText ? nullsAsText : undefined)
  return {
    add: rows.add,
    end: () => Buffer.concat([Buffer.from(head.slice(0, -2)), rows.end(), DATA_END])
  }
}

const DATA_END = Buffer.from(']}')

/** RFC 8288 links between partitions, in the spec's example format. */
export function linkHeader (statusUrl: string, partitions: number, current: number): string {
  const url = (n: number): string => `<${statusUrl}?partition=${n}>`
  const links = [`${url(0)};rel="first"`]
  if (current > 0) links.push(`${url(current - 1)};rel="prev"`)
  if (current < partitions - 1) links.push(`${url(current + 1)};rel="next"`)
  links.push(`${url(partitions - 1)};rel="last"`)
  return links.join(',')
}

export function queryStatus (handle: Pick<Handle, 'id' | 'createdOn'>, statusUrl: string): Record<string, unknown> {
  return {
    code: '333334',
    sqlState: '01000',
    message: 'Asynchronous execution in progress. Use provided query id to perform query monitoring and management.',
    ...statusBase(handle, statusUrl)
  }
}

export function failureStatus (info: SnowflakeErrorInfo, handle: { id: string, createdOn: number }, statusUrl: string): Record<string, unknown> {
  return {
    code: info.code,
    sqlState: info.sqlState,
    message: info.message,
    statementHandle: handle.id,
    createdOn: handle.createdOn,
    statementStatusUrl: statusUrl
  }
}
