import { describe, expect, it } from 'vitest'
import { ERR_AUTH_INVALID, ERR_POLICY_DENIED, ERR_STORE_UNAVAILABLE, isSluiceError, PolicyError } from '../../src/errors.js'

describe('error catalogue', () => {
  it('gives every error its code, status, family and a message an agent can act on', () => {
    const denied = new ERR_POLICY_DENIED('deny-ddl-dcl', 'DDL is not allowed for role agent')
    expect(denied).toBeInstanceOf(PolicyError)
    expect(isSluiceError(denied)).toBe(true)
    expect(denied).toMatchObject({ code: 'SLUICE_POLICY_DENIED', statusCode: 403, family: 'policy', message: 'denied by rule deny-ddl-dcl: DDL is not allowed for role agent' })
    expect(new ERR_AUTH_INVALID('expired')).toMatchObject({ family: 'auth', statusCode: 401 })
    expect(new ERR_STORE_UNAVAILABLE('down')).toMatchObject({ family: 'store', statusCode: 503 })
  })

  it('does not take a plain Error for one of ours', () => {
    expect(isSluiceError(new Error('x'))).toBe(false)
  })
})
