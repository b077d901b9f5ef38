// Emulators the tests run as child processes (fakesnow, bqemulator): a free loopback port,
// the tail of their output for error messages, a readiness wait, and a stop that escalates to
// SIGKILL — also when the test process dies without running its afterAll.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

export interface ChildServer {
  child: ChildProcess
  /** The last few KB of its stdout and stderr, for error messages. */
  output: () => string
  /** Polls `ready` until it resolves true; fails early if the process exits. */
  waitUntil: (ready: () => Promise<boolean>, timeoutMs: number) => Promise<void>
  close: () => Promise<void>
}

export interface ChildServerOptions {
  stopSignal?: NodeJS.Signals
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export function spawnChildServer (name: string, command: string, args: string[], options: ChildServerOptions = {}): ChildServer {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd })
  let log = ''
  const keep = (chunk: Buffer): void => { log = (log + chunk.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  return {
    child,
    output: () => log,
    async waitUntil (ready, timeoutMs) {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${log}`)
        if (await ready().catch(() => false)) return
        await new Promise(resolve => setTimeout(resolve, 150))
      }
      throw new Error(`${name} did not answer within ${timeoutMs / 1000} s: ${log}`)
    },
    async close () {
      process.removeListener('exit', killOnExit)
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
      child.kill(options.stopSignal ?? 'SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
  }
}
