// THIRD_PARTY_NOTICES ships in the image; it must name exactly the production tree the lock installs.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { listedPackages, NOTICES_FILE, productionPackages } from '../support/third-party-notices.js'

describe('licensing', () => {
  it('is Apache-2.0', () => {
    const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }
    expect(manifest.license).toBe('Apache-2.0')
    const license = readFileSync('LICENSE', 'utf8')
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/)
    expect(license).toContain('END OF TERMS AND CONDITIONS')
  })

  it(`${NOTICES_FILE} lists every production package of the lock, and nothing else`, () => {
    const locked = productionPackages(readFileSync('package-lock.json', 'utf8')).map((p) => `${p.name}@${p.version}  ${p.license}`)
    const listed = listedPackages(readFileSync(NOTICES_FILE, 'utf8'))
    expect(listed, 'regenerate: npm ci && node --import tsx test/support/third-party-notices.ts').toEqual(locked)
    expect(locked.some((l) => l.startsWith('fastify@'))).toBe(true)
    expect(locked.some((l) => l.startsWith('vitest@'))).toBe(false)
  })

  it(`the image ships LICENSE and ${NOTICES_FILE}`, () => {
    expect(readFileSync('Dockerfile', 'utf8')).toMatch(new RegExp(`^COPY .*\\bLICENSE ${NOTICES_FILE}\\b`, 'm'))
  })
})
