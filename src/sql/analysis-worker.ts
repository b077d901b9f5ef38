// One thread of the parser pool (pool.ts): parses and analyses statements off the event loop.
// The parse tree goes back as JSON text so the main thread pays for it only when lineage needs
// it. A statement whose analysis throws (a walk deeper than the stack) is answered as an error;
// one that runs past its deadline or its memory budget gets this thread terminated instead.
// The text facts the trail keeps (fingerprint, search vector) are computed here as well, so a
// large statement costs the event loop nothing but copying the answer.
import { parentPort } from 'node:worker_threads'
import { textFactsOf, type TextFacts } from '../recording/text-facts.js'
import { analyzeWithTrees } from './analyzer.js'
import { loadParser, parserMemoryBytes } from './parser.js'
import { compactTree } from './tree-json.js'
import type { Dialect, QualifyDefaults } from './types.js'

export interface AnalysisJob { id: number, sql: string, dialect: Dialect, defaults: QualifyDefaults }
export type AnalysisReply =
  | { id: number, ok: true, analysis: unknown, trees: Array<string | null>, text: TextFacts, wasmBytes?: number }
  | { id: number, ok: false, error: string, wasmBytes?: number }
  | { started: number }
  | { ready: true }

const port = parentPort
if (port !== null) {
  await loadParser()
  // The analysis walks are compiled on first use too: a fresh thread pays for that before it
  // says it is ready, not inside the first statement's deadline.
  for (const dialect of ['snowflake', 'bigquery', 'postgres'] as const) {
    analyzeWithTrees('WITH c AS (SELECT a, f(b) FROM s.t JOIN u ON t.id = u.id WHERE x IN (1, 2)) SELECT * FROM c ORDER BY 1 LIMIT 5; UPDATE t SET a = 1', dialect, {})
  }
  port.on('message', (job: AnalysisJob) => {
    // The deadline runs from here: a thread can be slow to take its first message.
    port.postMessage({ started: job.id })
    let reply: AnalysisReply
    try {
      const { analysis, trees } = analyzeWithTrees(job.sql, job.dialect, job.defaults)
      reply = { id: job.id, ok: true, analysis, trees: trees.map((t) => t === undefined ? null : JSON.stringify(t, compactTree)), text: textFactsOf(job.sql) }
    } catch (err) {
      reply = { id: job.id, ok: false, error: err instanceof Error ? err.message : String(err) }
    }
    // What the parser's memory grew to: the pool replaces a thread that a huge statement left large.
    const wasmBytes = parserMemoryBytes()
    if (wasmBytes !== undefined) reply.wasmBytes = wasmBytes
    port.postMessage(reply)
  })
  port.postMessage({ ready: true })
}
