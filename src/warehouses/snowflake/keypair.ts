// Key-pair authentication (SNOWFLAKE_JWT): a short-lived RS256 JWT whose issuer names the
// public key's SHA-256 fingerprint, as Snowflake's drivers build it.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import { ERR_CONFIG_INVALID } from '../../errors.js'

export interface KeyPairSigner {
  /** A fresh login JWT; Snowflake accepts at most one hour of validity. */
  sign: () => Promise<string>
}

/** Snowflake wants the account without region/cloud suffix, upper-cased. */
export function accountIdentifier (account: string): string {
  return (account.split('.')[0] ?? account).toUpperCase()
}

export function createKeyPairSigner (connection: string, account: string, user: string, pem: string, passphrase?: string): KeyPairSigner {
  let key: KeyObject
  try {
    key = createPrivateKey(passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase })
  } catch (err) {
    throw new ERR_CONFIG_INVALID(`/connections/${connection}/privateKeyFile is not a usable private key: ${(err as Error).message}`)
  }
  const der = createPublicKey(key).export({ type: 'spki', format: 'der' })
  const fingerprint = `SHA256:${createHash('sha256').update(der).digest('base64')}`
  const qualifiedUser = `${accountIdentifier(account)}.${user.toUpperCase()}`
  return {
    async sign () {
      const now = Math.floor(Date.now() / 1000)
      return await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(`${qualifiedUser}.${fingerprint}`)
        .setSubject(qualifiedUser)
        .setIssuedAt(now)
        .setExpirationTime(now + 3540)
        .sign(key)
    }
  }
}
