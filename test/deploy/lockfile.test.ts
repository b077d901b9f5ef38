// The lock file must describe the install on every platform, not only the one it was written on.
// npm (npm/cli#4828) drops other platforms' optional packages from the lock when it is rewritten
// over an existing node_modules; npm 11's `npm ci` then refuses the lock on a clean clone
// ("Missing: @rollup/rollup-android-arm-eabi … from lock file"). Regenerate with
// `npm install --package-lock-only` in a clone without node_modules.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

interface LockedPackage {
  version?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
  lockfileVersion: number
  packages: Record<string, LockedPackage>
}
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Record<string, Record<string, string> | undefined>

/** Node's resolution: the nearest node_modules folder up from the dependent that holds the name. */
function resolve (from: string, name: string): string | undefined {
  let base = from
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`
    if (candidate in lock.packages) return candidate
    if (base === '') return undefined
    const up = base.lastIndexOf('/node_modules/')
    base = up >= 0 ? base.slice(0, up) : ''
  }
}

describe('package-lock.json', () => {
  it('is a version 3 lock of this package.json', () => {
    expect(lock.lockfileVersion).toBe(3)
    const root = lock.packages[''] ?? {}
    expect(root.dependencies).toEqual(manifest.dependencies)
    expect((root as Record<string, unknown>).devDependencies).toEqual(manifest.devDependencies)
  })

  it('locks every dependency edge: optional ones of other platforms and required peers included', () => {
    const missing: string[] = []
    for (const [path, pkg] of Object.entries(lock.packages)) {
      const requiredPeers = Object.keys(pkg.peerDependencies ?? {})
        .filter((name) => pkg.peerDependenciesMeta?.[name]?.optional !== true)
      const edges = [...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }), ...requiredPeers]
      for (const name of edges) {
        if (resolve(path, name) === undefined) missing.push(`${path || '(root)'} → ${name}`)
      }
    }
    expect(missing).toEqual([])
  })
})
