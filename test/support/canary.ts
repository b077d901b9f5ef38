// A seeded sensitive value must not reach a client in any form a careless path could produce:
// as is, in another case, reversed, hex- or base64-encoded. Returns the form that leaked.
export function canaryForms (canary: string): Array<[form: string, text: string]> {
  const bytes = Buffer.from(canary)
  return [
    ['as is', canary],
    ['upper case', canary.toUpperCase()],
    ['lower case', canary.toLowerCase()],
    ['reversed', [...canary].reverse().join('')],
    ['hex', bytes.toString('hex')],
    ['HEX', bytes.toString('hex').toUpperCase()],
    ['base64', bytes.toString('base64')],
    ['base64url', bytes.toString('base64url')]
  ]
}

export function canaryLeak (text: string, canaries: readonly string[]): string | undefined {
  for (const canary of canaries) {
    for (const [form, encoded] of canaryForms(canary)) {
      if (text.includes(encoded)) return `${canary} (${form})`
    }
  }
  return undefined
}

/**
 * The hidden parts of masked values (`hidden`: email local part with its `@`, an SSN's head…)
 * in any encoding, or — for values a query rearranges — their letters and digits alone
 * (`plain`, lower case) found with the separators changed or gone, forwards or reversed.
 */
export function revealedPart (text: string, hidden: readonly string[], plain: readonly string[]): string | undefined {
  const letters = text.toLowerCase().replace(/[^a-z0-9]/g, '')
  const reversed = [...letters].reverse().join('')
  return canaryLeak(text, hidden) ?? plain.find((h) => letters.includes(h) || reversed.includes(h))
}

/** The letters-and-digits forms of an email's local part beside its domain (`adaexample`, `comada`). */
export function plainEmailParts (email: string): string[] {
  const [local = '', domain = ''] = email.toLowerCase().split('@')
  const l = local.replace(/[^a-z0-9]/g, '')
  const first = domain.split('.')[0] ?? ''
  const last = domain.split('.').pop() ?? ''
  return [`${l}${first}`, `${last}${l}`]
}
