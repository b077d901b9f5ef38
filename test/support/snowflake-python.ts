// Runs a Python script with the venv's snowflake-connector-python and returns its JSON output.
// Asynchronous on purpose: the Sluice under test runs in this same process and must keep serving.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const PYTHON = `${ROOT}.venv/bin/python`
/** The older client generation: connector 3.x, Snowpark, mcp-snowflake-server (requirements-connector3.txt). */
export const PYTHON_CONNECTOR3 = `${ROOT}.venv/connector3/bin/python`

export function pythonAvailable (): boolean {
  return existsSync(PYTHON)
}

export async function runPython (script: string, input: unknown, timeoutMs = 90_000, python = PYTHON): Promise<Record<string, unknown>> {
  return await new Promise((resolve, reject) => {
    execFile(python, [`${ROOT}${script}`, JSON.stringify(input)], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, PYTHONWARNINGS: 'ignore' }
    }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`${script} failed (exit ${String(err.code)}${err.killed ? ", killed" : ""}):\n${stderr.slice(-4000)}`))
        return
      }
      const last = stdout.trim().split('\n').at(-1) ?? ''
      try {
        resolve(JSON.parse(last) as Record<string, unknown>)
      } catch {
        reject(new Error(`${script} printed no JSON: ${stdout.slice(-2000)} ${stderr.slice(-2000)}`))
      }
    })
  })
}
