// `npm run bench`: runs every benchmark in this folder one after another (never in parallel:
// they would measure each other) and prints each one's lines. `npm run bench -- analysis`
// runs only the benchmarks whose name contains the word given.
import { readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { BenchResult } from './result.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)

const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts')).sort()
let failed = false
for (const file of files) {
  if (only.length > 0 && !only.some((word) => file.includes(word))) continue
  const mod = await import(new URL(file, import.meta.url).href) as Record<string, unknown>
  const benches = Object.entries(mod).filter(([name, fn]) => name.startsWith('bench') && typeof fn === 'function')
  for (const [name, fn] of benches) {
    const started = Date.now()
    try {
      const result = await (fn as () => Promise<BenchResult>)()
      process.stdout.write(`\n## ${result.name} (${((Date.now() - started) / 1000).toFixed(1)} s)\n${result.lines.map((l) => `  ${l}`).join('\n')}\n`)
    } catch (err) {
      failed = true
      process.stdout.write(`\n## ${name} failed: ${(err as Error).stack ?? String(err)}\n`)
    }
  }
}
process.exit(failed ? 1 : 0)
