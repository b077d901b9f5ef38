// The image cannot be built here (no container engine), so the rules it must keep are checked on
// the Dockerfile itself, hadolint-style: a pinned base image on the supported Node, the final stage
// without dev dependencies and not running as root, exec-form commands, and every file it copies
// present in the repository (a missing one would only fail at `docker build`).
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { gatewayMallocEnv, imageEnv, imageNodeOptions } from '../bench/sides.js'

interface Instruction { keyword: string, args: string, line: number }

function parse (text: string): Instruction[] {
  const out: Instruction[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let line = lines[i] ?? ''
    if (/^\s*(#|$)/.test(line)) continue
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + (lines[++i] ?? '').trim()
    const match = /^\s*(\w+)\s+(.*)$/.exec(line)
    if (match !== null) out.push({ keyword: (match[1] ?? '').toUpperCase(), args: (match[2] ?? '').trim(), line: start + 1 })
  }
  return out
}

const instructions = parse(readFileSync('Dockerfile', 'utf8'))
const stages: Instruction[][] = []
for (const instruction of instructions) {
  if (instruction.keyword === 'FROM') stages.push([])
  stages.at(-1)?.push(instruction)
}
const finalStage = stages.at(-1) ?? []
const stageName = (stage: Instruction[]): string | undefined => /\bAS\s+(\S+)$/i.exec(stage[0]?.args ?? '')?.[1]
const stageNames = new Set(stages.map(stageName))
const args = new Map(instructions.filter((i) => i.keyword === 'ARG').map((i) => {
  const [name, value] = i.args.split('=', 2)
  return [name ?? '', value ?? ''] as const
}))
const expand = (value: string): string => value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args.get(a ?? b ?? '') ?? '')
const engines = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node

describe('Dockerfile', () => {
  it('builds on a pinned image of the supported Node major', () => {
    const required = /^>=(\d+)\./.exec(engines)?.[1]
    expect(required).toBeDefined()
    for (const from of instructions.filter((i) => i.keyword === 'FROM')) {
      const image = expand(from.args.split(/\s+/)[0] ?? '')
      if (stageNames.has(image)) continue
      expect(image, `line ${from.line}`).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/)
      expect(image.split(':')[1]?.split('.')[0], `line ${from.line}`).toBe(required)
    }
  })

  it('matches the Node version CI runs the suite on', () => {
    const ci = /^NODE_VERSION=(\S+)$/m.exec(readFileSync('.ci/run', 'utf8'))?.[1]
    expect(expand('${NODE_IMAGE}')).toContain(`node:${ci}-`)
  })

  it('installs from the lock file only, and no dev dependencies in the final image', () => {
    const installs = instructions.filter((i) => i.keyword === 'RUN' && /\bnpm\s+(install|i|add|ci)\b/.test(i.args))
    for (const run of installs) expect(run.args, `line ${run.line}`).toMatch(/\bnpm ci\b/)
    for (const run of finalStage.filter((i) => i.keyword === 'RUN')) expect(run.args).not.toMatch(/\bnpm\b/)
    const copiedModules = finalStage.filter((i) => i.keyword === 'COPY' && /node_modules/.test(i.args))
    expect(copiedModules).toHaveLength(1)
    const from = /--from=(\S+)/.exec(copiedModules[0]?.args ?? '')?.[1]
    const source = stages.find((stage) => stageName(stage) === from)
    expect(source?.some((i) => i.keyword === 'RUN' && /npm ci --omit=dev\b/.test(i.args))).toBe(true)
  })

  it('runs as a numeric non-root user with exec-form commands', () => {
    const user = finalStage.filter((i) => i.keyword === 'USER').at(-1)?.args
    expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/)
    for (const keyword of ['ENTRYPOINT', 'CMD', 'HEALTHCHECK']) {
      const instruction = finalStage.find((i) => i.keyword === keyword)
      expect(instruction, keyword).toBeDefined()
      const json = keyword === 'HEALTHCHECK' ? instruction?.args.replace(/^.*?\bCMD\s+/, '') : instruction?.args
      expect(() => JSON.parse(json ?? ''), keyword).not.toThrow()
    }
  })

  it('runs the gateway with the young generation the bench measured, in NODE_OPTIONS Node accepts', () => {
    const env = finalStage.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ')
    const options = /\bNODE_OPTIONS=(\S+)/.exec(env)?.[1]
    expect(options).toMatch(/^--max-semi-space-size=\d+$/)
    // The bench runs Sluice with exactly these, so its numbers are the image's.
    expect(imageNodeOptions()).toBe(options)
    // Node refuses a flag it does not allow in NODE_OPTIONS; this one it takes.
    const run = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { env: { ...process.env, NODE_OPTIONS: options }, encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
  })

  it('runs the bench with the mmap threshold the image sets (none: glibc\'s own)', () => {
    const env = finalStage.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ')
    // MALLOC_MMAP_THRESHOLD_=131072 costs large results 5-25% more CPU for 40-60 MB less
    // resident (README, Performance): a deployment's choice, not the image's. If the image ever
    // sets it, the bench must run Sluice with it.
    const threshold = /\bMALLOC_MMAP_THRESHOLD_=(\S+)/.exec(env)?.[1]
    expect(imageEnv('MALLOC_MMAP_THRESHOLD_')).toBe(threshold ?? '')
    const saved = process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD
    delete process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD
    try {
      expect(gatewayMallocEnv()).toEqual(threshold === undefined ? {} : { MALLOC_MMAP_THRESHOLD_: threshold })
      process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD = '131072'
      expect(gatewayMallocEnv()).toEqual({ MALLOC_MMAP_THRESHOLD_: '131072' })
    } finally {
      if (saved === undefined) delete process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD
      else process.env.BENCH_GATEWAY_MALLOC_MMAP_THRESHOLD = saved
    }
  })

  it('copies only files that exist in the repository', () => {
    const missing: string[] = []
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'))
      for (const source of parts.slice(0, -1)) if (!existsSync(source)) missing.push(`line ${copy.line}: ${source}`)
    }
    expect(missing).toEqual([])
  })
})
