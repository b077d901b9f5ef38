// Secrets every replica must share: the key behind connector chunk tokens, the one sealing
// connector sessions' upstream tokens in the store (src/state/sealed.ts), and the default
// masking salt and token key (so `sha256` / `token` masks agree across replicas). All of them
// are derived from one configured `secrets.key`, each for its own purpose, so one value in a
// Secret is enough. Without it they are random per process: right for the embedded store (one
// process), wrong for several gateways on one Postgres, which `startGateway` refuses.
import { createHmac, randomBytes } from 'node:crypto'

export interface GatewaySecrets {
  /** 32 bytes for `purpose`, the same in every process configured with the same key. */
  derive: (purpose: string) => Buffer
  /** True when derived from `secrets.key` (shared by replicas), false when random per process. */
  readonly shared: boolean
}

export function gatewaySecrets (key: string | undefined): GatewaySecrets {
  const root = key === undefined ? randomBytes(32) : Buffer.from(key, 'utf8')
  return {
    shared: key !== undefined,
    derive: (purpose) => createHmac('sha256', root).update(`sluice\u0000${purpose}`).digest()
  }
}
