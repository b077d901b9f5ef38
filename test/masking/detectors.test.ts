// Value detectors: true positives, the false positives they must not raise, and check digits.
import { describe, expect, test } from 'vitest'
import { createScanner, ibanValid, luhn, type DetectorKind } from '../../src/masking/detectors.js'

const scan = createScanner()
const kinds = (text: string): DetectorKind[] => scan(text)?.findings ?? []

describe('check digits', () => {
  test('Luhn', () => {
    expect(luhn('4111111111111111')).toBe(true)
    expect(luhn('4111111111111112')).toBe(false)
    expect(luhn('79927398713')).toBe(true)
  })
  test('IBAN mod-97', () => {
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true)
    expect(ibanValid('DE89370400440532013000')).toBe(true)
    expect(ibanValid('GB82 WEST 1234 5698 7654 33')).toBe(false)
    expect(ibanValid('XX00')).toBe(false)
  })
})

const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----'
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ'

describe('true positives', () => {
  test.each([
    ['contact alice@example.com today', 'email'],
    ['call +1 415 555 0100', 'phone'],
    ['call (415) 555-0100', 'phone'],
    ['call 415-555-0100', 'phone'],
    ['ssn 123-45-6789', 'ssn'],
    ['card 4111 1111 1111 1111', 'credit_card'],
    ['card 5500-0000-0000-0004', 'credit_card'],
    ['iban GB82 WEST 1234 5698 7654 32', 'iban'],
    ['iban DE89370400440532013000', 'iban'],
    ['from 192.168.10.254', 'ip'],
    ['from 2001:0db8:85a3:0000:0000:8a2e:0370:7334', 'ip'],
    ['from fe80::1ff:fe23:4567:890a', 'ip'],
    ['key AKIAIOSFODNN7EXAMPLE', 'aws_key'],
    [PEM, 'private_key'],
    ['{"type": "service_account", "project_id": "p", "private_key_id": "abc"}', 'gcp_service_account'],
    [`Bearer ${JWT}`, 'jwt']
  ] as Array<[string, DetectorKind]>)('%s → %s', (text, kind) => {
    expect(kinds(text)).toContain(kind)
    const out = scan(text)?.text ?? ''
    expect(out).toContain(`[redacted:${kind}]`)
  })

  test('a service-account key file is replaced whole, private key included', () => {
    const file = JSON.stringify({ type: 'service_account', private_key: PEM, client_email: 'sa@p.iam.gserviceaccount.com' })
    expect(scan(file)?.text).toBe('[redacted:gcp_service_account]')
  })
})

describe('false positives it must not raise', () => {
  test.each([
    'order 12345 shipped',
    '2024-05-07 12:34:56',
    'version 1.2.3.4.5',
    'total 4111111111111112 (not Luhn)',
    'ssn-like 000-12-3456 and 666-12-3456',
    'GB82 WEST 1234 5698 7654 33',
    'ip 999.1.1.1',
    'time 12:34:56',
    'AKIA_not_a_key',
    'Alice Smith, Paris',
    'price 1,234.56 EUR',
    'user@localhost'
  ])('%s', (text) => {
    expect(kinds(text)).toEqual([])
  })
})

test('the enabled kinds are respected', () => {
  const emailOnly = createScanner(['email'])
  expect(emailOnly('alice@example.com 123-45-6789')?.text).toBe('[redacted:email] 123-45-6789')
})

// The shape prefilter skips the card and phone patterns for values whose digits never form a
// chain those patterns could match (hex hashes, ids in prose). Generated over every separator
// the patterns allow, at every position, each value must still be found.
describe('the digit-chain prefilter never hides a card or phone number', () => {
  const CARDS = ['4111111111111111', '5500000000000004', '378282246310005', '4222222222222', '6011111111111117']
  const groupings = (d: string): string[] => {
    const out = [d]
    for (const sep of [' ', '-']) {
      out.push(d.replace(/(\d{4})(?=\d)/g, `$1${sep}`))
      out.push(d.split('').join(sep))
      out.push(d.replace(/(\d{3})(?=\d)/g, `$1${sep}`))
    }
    out.push(d.split('').map((c, i) => i % 2 === 0 ? c : ` ${c}`).join('').replace(/ /g, (_, i: number) => i % 4 === 0 ? '-' : ' '))
    return out
  }
  const embed = (v: string): string[] => [v, `card ${v} end`, `id=${v};x`, `abc ${v}`, `${v} fed`]
  test.each(CARDS.flatMap(groupings).flatMap(embed))('card %s', (text) => {
    expect(kinds(text)).toContain('credit_card')
  })

  // Every form the phone patterns take (the detector's own limits, such as no match before a
  // trailing full stop, are not this test's subject).
  const PHONES = [
    '+1 415 555 0100', '+1 (415) 555-0100', '+44 20 7946 0958', '+1.415.555.0100', '+1-415-555-0100',
    '(415) 555-0100', '(415)555-0100', '(415) 555.0100', '415-555-0100', '415.555.0100', '+14155550100'
  ]
  test.each(PHONES.flatMap((p) => [p, `call ${p} now`, `tel:${p}`, `a ${p}, b`]))('phone %s', (text) => {
    const found = scan(text)
    // Some of these are also read as other kinds; the phone pattern must at least have run.
    expect(found?.findings ?? []).toEqual(expect.arrayContaining([expect.stringMatching(/phone|credit_card/)]))
  })

  test('a hex hash with many digits is no card and no phone', () => {
    const md5 = 'c4ca4238a0b923820dcc509a6f75849b'
    expect(kinds(md5.repeat(4))).toEqual([])
  })
})
