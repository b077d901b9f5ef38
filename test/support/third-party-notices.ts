// Writes THIRD_PARTY_NOTICES: every package of the production dependency tree (what
// `npm ci --omit=dev` installs into the image), from package-lock.json, with the license and
// notice files each package ships. Run after changing production dependencies, on an install of
// the same lock (`npm ci`):
//   node --import tsx test/support/third-party-notices.ts
// test/deploy/notices.test.ts fails when the file no longer lists exactly the locked tree.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const NOTICES_FILE = 'THIRD_PARTY_NOTICES'

interface LockedPackage {
  version: string
  license?: string
  dev?: boolean
  optional?: boolean
  os?: string[]
  cpu?: string[]
}

export interface ProductionPackage { path: string, name: string, version: string, license: string }

/** The packages `npm ci --omit=dev` installs: every lock entry not marked dev-only. */
export function productionPackages (lockText: string): ProductionPackage[] {
  const lock = JSON.parse(lockText) as { packages: Record<string, LockedPackage> }
  const out: ProductionPackage[] = []
  for (const [path, pkg] of Object.entries(lock.packages)) {
    if (path === '' || pkg.dev === true) continue
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
    out.push({ path, name, version: pkg.version, license: pkg.license ?? 'UNKNOWN' })
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
}

const LICENSE_FILE = /^(licen[cs]e|copying)([.-].*)?$/i
const NOTICE_FILE = /^notice(\..*)?$/i

// Texts for the packages that declare a license in package.json but ship no file of it.
const STANDARD_TEXTS: Record<string, (holder: string) => string> = {
  MIT: (holder) => `MIT License

Copyright (c) ${holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`,
  'Apache-2.0': () => 'Apache License, Version 2.0: the same text as this image\'s own LICENSE file.',
  Unlicense: () => `This is free and unencumbered software released into the public domain
(The Unlicense, https://unlicense.org/).`
}

function authorOf (manifest: Record<string, unknown>): string {
  const author = manifest.author
  if (typeof author === 'string') return author
  if (author !== null && typeof author === 'object' && 'name' in author) return String(author.name)
  return `the authors of ${String(manifest.name)}`
}

function readTexts (dir: string, pkg: ProductionPackage): string {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>
  if (manifest.version !== pkg.version) {
    throw new Error(`${pkg.path}: installed ${String(manifest.version)}, locked ${pkg.version}: run npm ci first`)
  }
  const files = readdirSync(dir).sort()
  const licenses = files.filter((f) => LICENSE_FILE.test(f))
  const notices = files.filter((f) => NOTICE_FILE.test(f))
  const parts = [...licenses, ...notices].map((f) => readFileSync(join(dir, f), 'utf8').replace(/\r\n/g, '\n').trim())
  if (licenses.length === 0) {
    const standard = STANDARD_TEXTS[pkg.license]
    if (standard === undefined) throw new Error(`${pkg.path}: no license file and no standard text for ${pkg.license}`)
    parts.unshift(`(The package ships no license file; its package.json declares ${pkg.license}.)\n\n${standard(authorOf(manifest))}`)
  }
  return parts.join('\n\n')
}

export function renderNotices (root: string): string {
  const packages = productionPackages(readFileSync(join(root, 'package-lock.json'), 'utf8'))
  // Identical texts (the same license of the same holder) are printed once, under every package that ships it.
  const byText = new Map<string, ProductionPackage[]>()
  for (const pkg of packages) {
    const text = readTexts(join(root, pkg.path), pkg)
    byText.set(text, [...(byText.get(text) ?? []), pkg])
  }
  const id = (p: ProductionPackage): string => `${p.name}@${p.version}`
  const lines = [
    'Third-party software in Sluice',
    '',
    'Sluice is licensed under the Apache License, Version 2.0 (LICENSE). Its image also contains the',
    'Node.js runtime of its base image, under the Node.js license shipped in that image, and the',
    'following npm packages, the production dependency tree locked in package-lock.json, each under',
    'its own license. Generated by test/support/third-party-notices.ts from the installed packages.',
    '',
    `Packages (${packages.length}):`,
    '',
    ...packages.map((p) => `  ${id(p)}  ${p.license}`),
    ''
  ]
  for (const [text, owners] of byText) {
    lines.push('-'.repeat(78), owners.map(id).join(', '), '', text, '')
  }
  return lines.join('\n')
}

/** The `name@version  license` lines of a notices file, for checking it against the lock. */
export function listedPackages (notices: string): string[] {
  const head = notices.split('\n' + '-'.repeat(78))[0] ?? ''
  return head.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim())
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(NOTICES_FILE, renderNotices(process.cwd()))
}
