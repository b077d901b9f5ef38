// The detectors' quick reject (mayMatch) never rejects a text any detector could match: over
// generated texts, every text it rejects has no candidate detector at all, and the scanner's
// answers are those of the candidates alone.
import { describe, expect, it } from 'vitest'
import { candidateBits, createScanner, mayMatch } from '../../src/masking/detectors.js'

function generator (seed: number): () => number {
  let s = seed
  return () => { s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff; return s / 0x80000000 }
}

// Characters that count towards some detector, and filler (lower case, space, punctuation,
// non-ASCII) that counts towards none.
const COUNTED = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-@:()+/_='
// Tokens, not only characters: some detectors also look for words (a JWT's eyJ).
const FILLER = [...'abcxyz ,;!?"\'\\\né✓\u00a0\u0660\uff10', 'eyJ', 'service_account', 'PRIVATE KEY', 'BEGIN']

/** A text with up to `max` of each counted character class: near every threshold of mayMatch. */
function near (r: () => number): string {
  const parts: string[] = []
  const pick = (set: string | readonly string[]): string => set[Math.floor(r() * set.length)] as string
  const add = (set: string | readonly string[], n: number): void => { for (let i = 0; i < n; i++) parts.push(pick(set)) }
  add('0123456789', Math.floor(r() * 12))
  add('ABCDEFGHIJKLMNOPQRSTUVWXYZ', Math.floor(r() * 4))
  add('.', Math.floor(r() * 3))
  add('-', Math.floor(r() * 12))
  if (r() < 0.1) add('@:', 1)
  add(FILLER, Math.floor(r() * 40))
  // Shuffled, so runs of digits (cards, phones) appear as often as scattered ones.
  for (let i = parts.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [parts[i], parts[j]] = [parts[j] as string, parts[i] as string] }
  return parts.join('')
}

function anyText (r: () => number): string {
  const n = Math.floor(r() * 80)
  let s = ''
  for (let i = 0; i < n; i++) s += r() < 0.5 ? COUNTED[Math.floor(r() * COUNTED.length)] : FILLER[Math.floor(r() * FILLER.length)]
  return s
}

describe('detector quick reject', () => {
  it('rejects only texts with no candidate detector (generated near every threshold)', () => {
    const r = generator(7)
    let rejected = 0
    for (let i = 0; i < 200_000; i++) {
      const text = i % 2 === 0 ? near(r) : anyText(r)
      if (mayMatch(text)) continue
      rejected++
      expect(candidateBits(text), JSON.stringify(text)).toBe(0)
    }
    // The generators do reach the rejected side often (the test is not vacuous).
    expect(rejected).toBeGreaterThan(5_000)
  })

  it('lets through every sensitive shape the detectors find', () => {
    const scan = createScanner()
    const samples = ['mail me at a.b@example.com', 'card 4111 1111 1111 1111', 'ssn 123-45-6789', 'call +1 415 555 0100',
      'host 10.0.0.1', 'v6 fe80::1', 'AKIAABCDEFGHIJKLMNOP', 'DE89 3704 0044 0532 0130 00',
      'eyJhbGciOi.eyJzdWIiOi.abcdefghijkl', '{"type": "service_account", "project_id": "p"}', '-----BEGIN PRIVATE KEY-----abc-----END PRIVATE KEY-----']
    for (const s of samples) {
      expect(mayMatch(s), s).toBe(true)
      expect(scan(s), s).toBeDefined()
    }
  })
})
