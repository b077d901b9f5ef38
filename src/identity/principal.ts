// The authenticated caller as every later stage sees it.

/** One link of an RFC 8693 delegation chain: who acts on whose behalf. */
export interface Actor {
  subject: string
  clientId?: string
}

export interface Principal {
  subject: string
  issuer: string
  /** `machine` for client-credentials tokens (no end user), `human` otherwise. */
  type: 'human' | 'machine'
  groups: string[]
  roles: string[]
  /** `azp` or `client_id`: the agent / client that obtained the token. */
  clientId?: string
  /** The `act` chain, outermost (the current actor) first; empty when nobody delegates. */
  delegation: Actor[]
  tokenId?: string
  expiresAt: Date
}
