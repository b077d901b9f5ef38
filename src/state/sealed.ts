// Credentials a record must carry but the store must not reveal (an upstream session's tokens):
// sealed with AES-256-GCM under a key every replica derives from `secrets.key`. The record's own
// identity is the additional data, so a sealed value copied into another row does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const IV_BYTES = 12
const TAG_BYTES = 16

export interface Sealer {
  /** iv ‖ tag ‖ ciphertext of the JSON of `value`, bound to `aad`. */
  seal: (value: unknown, aad: string) => Buffer
  /** The value back, or undefined when the key, the data or the AAD do not match. */
  open: <T>(sealed: Uint8Array, aad: string) => T | undefined
}

export function createSealer (key: Buffer): Sealer {
  if (key.length !== 32) throw new TypeError('a sealing key has 32 bytes')
  return {
    seal (value, aad) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(aad, 'utf8'))
      const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body])
    },
    open<T> (sealed: Uint8Array, aad: string): T | undefined {
      const data = Buffer.from(sealed)
      if (data.length < IV_BYTES + TAG_BYTES) return undefined
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES))
        decipher.setAAD(Buffer.from(aad, 'utf8'))
        decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
        const text = Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
        return JSON.parse(text) as T
      } catch {
        // Another key (a replica configured differently, or a per-process key of an earlier run).
        return undefined
      }
    }
  }
}
