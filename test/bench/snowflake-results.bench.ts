// Large Snowflake results through one real gateway process (test/support/replicas.ts, one
// replica): 1,000,000 rows (about 190 MB of JSON) from a loopback upstream that generates its
// chunks lazily, read through SQL API partitions and through snowflake-sdk chunks, every EMAIL
// masked by a policy rule. Reports time to the first page, MB/s over the whole result and the
// gateway's peak RSS (and its growth over the run).
//
// Machine: the project's 2-core build container (shared with other test runs; numbers move
// with its load). Node v20. Written 2026-12-01. `npm run bench -- snowflake` runs only this.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import { request, type Dispatcher } from 'undici'
import { LARGE_RESULT_POLICY as POLICY, startLargeUpstream } from '../support/large-snowflake-upstream.js'
import { startTestIdp } from '../support/oidc-provider.js'
import { startReplicas } from '../support/replicas.js'
import { connectSdk, destroySdk, type SdkConnection } from '../support/snowflake-node-client.js'
import type { BenchResult } from './result.js'
import { shippedLaunch } from './sides.js'

const ROWS = Number(process.env.SLUICE_BENCH_ROWS ?? 1_000_000)
const MB = 1024 * 1024
const gunzipAsync = promisify(gunzip)

/** A JSON answer, gzip-decoded when the gateway compressed it (the client asked it to). */
async function json (res: Dispatcher.ResponseData): Promise<unknown> {
  const raw = Buffer.from(await res.body.arrayBuffer())
  return JSON.parse((res.headers['content-encoding'] === 'gzip' ? await gunzipAsync(raw) : raw).toString('utf8'))
}

export async function benchSnowflakeResults (): Promise<BenchResult> {
  const large = await startLargeUpstream({ rows: ROWS })
  const idp = await startTestIdp()
  const policies = await mkdtemp(join(tmpdir(), 'sluice-bench-policies-'))
  await writeFile(join(policies, 'policy.yaml'), POLICY)
  const cluster = await startReplicas({
    count: 1,
    ...shippedLaunch(),
    policiesDir: policies,
    config: {
      identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
      connections: { large: { kind: 'snowflake', url: large.url, default: true, secondaryRoles: 'keep', account: 'acme', user: 'svc', password: 'pw', syncWaitSeconds: 60 } }
    }
  })
  const token = await idp.userToken({ subject: 'alice', groups: ['ai-agents'] })
  const gateway = cluster.replicas[0]!
  const lines: string[] = [`${ROWS} rows, ${(large.resultBytes / MB).toFixed(0)} MB of JSON rows; gateway rss at start ${(gateway.rssBytes() / MB).toFixed(0)} MB`]
  try {
    // SQL API: partition 0 with the statement, then every partition in turn (gzip, as clients ask).
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'accept-encoding': 'gzip' }
    let base = gateway.rssBytes()
    let started = Date.now()
    const first = await request(`${gateway.url}/api/v2/statements`, { method: 'POST', headers, body: JSON.stringify({ statement: large.sql }) })
    const firstPage = Date.now() - started
    const body = await json(first) as { statementStatusUrl: string, resultSetMetaData: { partitionInfo: unknown[] } }
    let rows = 0
    for (let p = 1; p < body.resultSetMetaData.partitionInfo.length; p++) {
      const res = await request(`${gateway.url}${body.statementStatusUrl}?partition=${p}`, { headers: { authorization: headers.authorization, 'accept-encoding': 'gzip' } })
      rows += (await json(res) as { data: unknown[] }).data.length
    }
    let seconds = (Date.now() - started) / 1000
    lines.push(`SQL API partitions: first page ${firstPage} ms, ${(large.resultBytes / MB / seconds).toFixed(1)} MB/s (${seconds.toFixed(1)} s, ${rows} rows after partition 0), peak RSS ${(gateway.peakRssBytes() / MB).toFixed(0)} MB (+${((gateway.peakRssBytes() - base) / MB).toFixed(0)} MB)`)

    base = gateway.rssBytes()
    started = Date.now()
    const conn: SdkConnection = await connectSdk({ accessUrl: gateway.url, token })
    let firstRow = 0
    let count = 0
    try {
      await new Promise<void>((resolve, reject) => {
        conn.execute({
          sqlText: large.sql,
          streamResult: true,
          complete: (err, statement) => {
            if (err !== undefined && err !== null) { reject(err); return }
            statement.streamRows()
              .on('data', () => { if (count++ === 0) firstRow = Date.now() - started })
              .on('end', () => { resolve() })
              .on('error', reject)
          }
        } as Parameters<SdkConnection['execute']>[0])
      })
    } finally {
      await destroySdk(conn)
    }
    seconds = (Date.now() - started) / 1000
    lines.push(`snowflake-sdk chunks: first row ${firstRow} ms, ${(large.resultBytes / MB / seconds).toFixed(1)} MB/s (${seconds.toFixed(1)} s, ${count} rows), peak RSS ${(gateway.peakRssBytes() / MB).toFixed(0)} MB (+${((gateway.peakRssBytes() - base) / MB).toFixed(0)} MB over its rss before)`)
  } finally {
    await cluster.close()
    await idp.close()
    await large.close()
    await rm(policies, { recursive: true, force: true })
  }
  return { name: 'Snowflake large results (1 gateway process)', lines }
}
