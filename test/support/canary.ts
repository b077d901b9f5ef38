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
