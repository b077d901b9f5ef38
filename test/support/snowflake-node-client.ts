// Promise helpers around snowflake-sdk (callback API) configured the way an agent points it at
// Sluice: accessUrl, authenticator OAUTH and its OIDC access token as `token`.
import type { Readable } from 'node:stream'
import snowflake from 'snowflake-sdk'

snowflake.configure({ logLevel: 'OFF' as never })

export type SdkConnection = ReturnType<typeof snowflake.createConnection>
export type SdkStatement = Parameters<NonNullable<Parameters<SdkConnection['execute']>[0]['complete']>>[1]

export interface SdkOptions {
  accessUrl: string
  token: string
  account?: string
  database?: string
  schema?: string
  role?: string
}

export async function connectSdk (options: SdkOptions): Promise<SdkConnection> {
  const connection = snowflake.createConnection({
    accessUrl: options.accessUrl,
    account: options.account ?? 'sluice',
    authenticator: 'OAUTH',
    token: options.token,
    database: options.database,
    schema: options.schema,
    role: options.role
  } as Parameters<typeof snowflake.createConnection>[0])
  await new Promise<void>((resolve, reject) => {
    connection.connect((err) => { err === undefined || err === null ? resolve() : reject(err) })
  })
  return connection
}

export interface SdkResult {
  rows: Array<Record<string, unknown>>
  statement: SdkStatement
}

export async function runSdk (connection: SdkConnection, sqlText: string, extra: Record<string, unknown> = {}): Promise<SdkResult> {
  return await new Promise((resolve, reject) => {
    connection.execute({
      sqlText,
      ...extra,
      complete: (err, statement, rows) => {
        if (err !== undefined && err !== null) reject(err)
        else resolve({ rows: (rows ?? []) as Array<Record<string, unknown>>, statement })
      }
    })
  })
}

/**
 * Streams a statement's rows to `onRow` as the sdk reads them, keeping none; `onRow` throwing
 * (or destroying `rows` with an error) ends it with that error. `rows` can be paused meanwhile.
 */
export async function streamSdkRows (connection: SdkConnection, sqlText: string, onRow: (row: Record<string, unknown>, rows: Readable) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    connection.execute({
      sqlText,
      streamResult: true,
      complete: (err, statement) => {
        if (err !== undefined && err !== null) { reject(err); return }
        const rows = statement.streamRows()
        rows
          .on('data', (row: Record<string, unknown>) => {
            try { onRow(row, rows) } catch (e) { reject(e); rows.destroy() }
          })
          .on('end', () => { resolve() })
          .on('error', reject)
      }
    } as Parameters<SdkConnection['execute']>[0])
  })
}

export async function streamAll (statement: SdkStatement): Promise<Array<Record<string, unknown>>> {
  return await new Promise((resolve, reject) => {
    const rows: Array<Record<string, unknown>> = []
    statement.streamRows()
      .on('data', (row: Record<string, unknown>) => rows.push(row))
      .on('end', () => { resolve(rows) })
      .on('error', reject)
  })
}

export async function destroySdk (connection: SdkConnection): Promise<void> {
  await new Promise<void>((resolve) => { connection.destroy(() => { resolve() }) })
}
