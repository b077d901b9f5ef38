import { describe, expect, it } from 'vitest'
import { canaryLeak } from '../support/canary.js'

describe('canary leak check (test support)', () => {
  const canary = 'ada@example.com'
  it.each([
    ['as is', 'x ada@example.com x'],
    ['upper case', 'ADA@EXAMPLE.COM'],
    ['reversed', 'moc.elpmaxe@ada'],
    ['hex', Buffer.from(canary).toString('hex')],
    ['base64', `"${Buffer.from(canary).toString('base64')}"`]
  ])('finds the canary %s', (form, text) => {
    expect(canaryLeak(text, [canary])).toBe(`${canary} (${form})`)
  })

  it('finds nothing in a masked body', () => {
    expect(canaryLeak('{"EMAIL":"****","SSN":"XXXXX6789"}', [canary, '123-45-6789'])).toBeUndefined()
  })
})
