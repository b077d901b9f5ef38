// A real `oidc-provider` on loopback, issuing the JWT access tokens the identity tests use.
//
// - Machine tokens come from the standard client-credentials grant with a resource indicator,
//   so they have exactly the shape a production oidc-provider gives them
//   (`sub` = `client_id` = the client, `aud` = the resource server's audience).
// - Human tokens come from a test-only grant (HUMAN_GRANT) that issues an ordinary
//   AccessToken for any subject; groups, `act` and other claims ride on `extraTokenClaims`.
// - Key rotation swaps in a new Provider with a new signing key behind the SAME http server,
//   so the issuer URL (and port) stay put the way they do for a real IdP rotating its keys.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type JWTHeaderParameters } from 'jose'
import type { IdentityConfig } from '../../src/config/types.js'

export const TEST_AUDIENCE = 'sluice'
/** Test-only grant type that mints a user's access token without a browser login. */
export const HUMAN_GRANT = 'urn:sluice:test:grant-type:user-token'
export const SIGNING_ALG = 'RS256'

// ── the slice of oidc-provider's (untyped) API used here ─────────────────────────────────────
interface GrantContext {
  oidc: { params: Record<string, string | undefined>, client: { clientId: string } }
  body?: unknown
}
interface ResourceServerInfo { scope: string, audience: string, accessTokenFormat: 'jwt', accessTokenTTL: number }
interface ProviderInstance {
  callback (): (req: IncomingMessage, res: ServerResponse) => void
  registerGrantType (name: string, handler: (ctx: GrantContext) => Promise<void>, params?: string[]): void
  on (event: string, listener: (...args: unknown[]) => void): void
  AccessToken: new (init: Record<string, unknown>) => { resourceServer: unknown, expiration: number, save (): Promise<string> }
  ResourceServer: new (identifier: string, info: ResourceServerInfo) => unknown
}
interface ProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance
  errors: { InvalidRequest: new (message: string) => Error, InvalidTarget: new (message?: string) => Error }
}
// oidc-provider ships no type declarations; a non-literal specifier keeps tsc from asking for them.
const MODULE_NAME: string = 'oidc-provider'
const loadModule = async (): Promise<ProviderModule> => await import(MODULE_NAME) as ProviderModule

// ── public surface ───────────────────────────────────────────────────────────────────────────
/** RFC 8693 `act` claim; nest `act` for a longer chain (outermost = current actor). */
export interface ActClaim { sub: string, client_id?: string, act?: ActClaim }

export interface UserTokenRequest {
  subject: string
  /** Goes to the top-level `groups` claim. */
  groups?: string[] | string
  act?: ActClaim
  /** Any further claims (e.g. `realm_access`, `nbf`); standard claims the provider sets win. */
  claims?: Record<string, unknown>
  /** Client that obtains the token (`client_id`); default `cursor`. */
  clientId?: string
  audience?: string
  expiresInSeconds?: number
}

export interface SigningKey { kid: string, privateKey: CryptoKey, privateJwk: JWK, publicJwk: JWK }

export interface TestIdp {
  readonly issuer: string
  readonly port: number
  /** kid of the key signing new tokens right now. */
  readonly kid: string
  /** Every request path the provider received, in order (e.g. count `/jwks`). */
  readonly requests: string[]
  /** Errors the provider reported (server_error / grant.error), to explain a failed helper. */
  readonly errors: unknown[]
  machineToken (opts?: { clientId?: string, audience?: string }): Promise<string>
  userToken (req: UserTokenRequest): Promise<string>
  /** New signing key (new kid); the previous one stays published only with keepPrevious. */
  rotateKey (opts?: { keepPrevious?: boolean }): Promise<string>
  /** The trusted private key, for crafting tokens the provider would never issue. */
  signingKey (): SigningKey
  sign (payload: JWTPayload, header?: Partial<JWTHeaderParameters>): Promise<string>
  /** An IdentityConfig pointing at this provider, with test-friendly defaults. */
  identityConfig (overrides?: Partial<IdentityConfig>): IdentityConfig
  close (): Promise<void>
}

export interface TestIdpOptions {
  machineClients?: string[]
  userClients?: string[]
}

export const clientSecret = (clientId: string): string => `${clientId}-secret-for-tests-only`

export async function startTestIdp (options: TestIdpOptions = {}): Promise<TestIdp> {
  const machineClients = options.machineClients ?? ['ci-bot']
  const userClients = options.userClients ?? ['cursor']
  const mod = await loadModule()
  const requests: string[] = []
  const errors: unknown[] = []
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined

  const server: Server = createServer((req, res) => {
    requests.push(new URL(req.url ?? '/', 'http://idp').pathname)
    if (handler === undefined) {
      res.writeHead(503).end()
      return
    }
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const issuer = `http://127.0.0.1:${port}`

  let keys: SigningKey[] = [await newSigningKey()]

  function install (): void {
    const provider = buildProvider(mod, issuer, keys, machineClients, userClients)
    provider.on('server_error', (_ctx, err) => errors.push(err))
    provider.on('grant.error', (_ctx, err) => errors.push(err))
    handler = provider.callback()
  }
  install()

  async function tokenRequest (clientId: string, form: Record<string, string>): Promise<string> {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret(clientId))}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded'
      },
      body: new URLSearchParams(form).toString()
    })
    const body = await res.json() as { access_token?: string, error?: string, error_description?: string }
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new Error(`token request failed: HTTP ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`)
    }
    return body.access_token
  }

  const current = (): SigningKey => keys[0] as SigningKey

  return {
    issuer,
    port,
    get kid () { return current().kid },
    requests,
    errors,
    machineToken: async (opts = {}) => await tokenRequest(opts.clientId ?? machineClients[0] ?? 'ci-bot', {
      grant_type: 'client_credentials',
      resource: resourceFor(opts.audience ?? TEST_AUDIENCE)
    }),
    userToken: async (req) => {
      const claims: Record<string, unknown> = { ...req.claims }
      if (req.groups !== undefined) claims.groups = req.groups
      if (req.act !== undefined) claims.act = req.act
      const form: Record<string, string> = {
        grant_type: HUMAN_GRANT,
        subject: req.subject,
        audience: req.audience ?? TEST_AUDIENCE,
        sluice_claims: JSON.stringify(claims)
      }
      if (req.expiresInSeconds !== undefined) form.expires_in = String(req.expiresInSeconds)
      return await tokenRequest(req.clientId ?? userClients[0] ?? 'cursor', form)
    },
    rotateKey: async (opts = {}) => {
      const next = await newSigningKey()
      keys = opts.keepPrevious === true ? [next, ...keys] : [next]
      install()
      return next.kid
    },
    signingKey: current,
    sign: async (payload, header = {}) => {
      const key = current()
      return await new SignJWT(payload)
        .setProtectedHeader({ alg: SIGNING_ALG, typ: 'at+jwt', kid: key.kid, ...header })
        .sign(key.privateKey)
    },
    identityConfig: (overrides = {}) => ({
      issuer,
      audience: [TEST_AUDIENCE],
      groupsClaim: 'groups',
      groupRoles: {},
      clientRoles: {},
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clockSkewSeconds: 30,
      jwksRefetchIntervalSeconds: 60,
      maxTokenBytes: 16 * 1024,
      ...overrides
    }),
    close: async () => {
      handler = undefined
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close(err => { err ? reject(err) : resolve() }))
    }
  }
}

/** Resource indicators must be absolute URIs; the audience they grant is carried inside. */
function resourceFor (audience: string): string {
  return `urn:sluice:audience:${encodeURIComponent(audience)}`
}

function audienceOf (resource: string): string | undefined {
  const prefix = 'urn:sluice:audience:'
  return resource.startsWith(prefix) ? decodeURIComponent(resource.slice(prefix.length)) : undefined
}

async function newSigningKey (): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true })
  const kid = `test-${crypto.randomUUID()}`
  const tag = { kid, alg: SIGNING_ALG, use: 'sig' }
  return {
    kid,
    privateKey,
    privateJwk: { ...await exportJWK(privateKey), ...tag },
    publicJwk: { ...await exportJWK(publicKey), ...tag }
  }
}

function buildProvider (
  mod: ProviderModule,
  issuer: string,
  keys: SigningKey[],
  machineClients: string[],
  userClients: string[]
): ProviderInstance {
  const { InvalidRequest, InvalidTarget } = mod.errors
  const resourceServerInfo = (audience: string): ResourceServerInfo =>
    ({ scope: '', audience, accessTokenFormat: 'jwt', accessTokenTTL: 3600 })
  const client = (clientId: string, grantTypes: string[]): Record<string, unknown> => ({
    client_id: clientId,
    client_secret: clientSecret(clientId),
    grant_types: grantTypes,
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic'
  })

  const provider = new mod.default(issuer, {
    clients: [
      ...machineClients.map(id => client(id, ['client_credentials'])),
      ...userClients.map(id => client(id, [HUMAN_GRANT]))
    ],
    jwks: { keys: keys.map(key => key.privateJwk) },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resourceFor(TEST_AUDIENCE),
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          const audience = audienceOf(resource)
          if (audience === undefined) throw new InvalidTarget()
          return resourceServerInfo(audience)
        },
        useGrantedResource: () => true
      }
    },
    extraTokenClaims: (ctx: GrantContext | undefined) => {
      const params = ctx?.oidc?.params
      if (params?.grant_type !== HUMAN_GRANT || params.sluice_claims === undefined) return undefined
      return JSON.parse(params.sluice_claims) as Record<string, unknown>
    },
    ttl: { AccessToken: 3600, ClientCredentials: 600 }
  })

  provider.registerGrantType(HUMAN_GRANT, async function issueUserToken (ctx) {
    const { client: grantClient, params } = ctx.oidc
    if (params.subject === undefined || params.subject === '') throw new InvalidRequest('subject is required')
    const audience = params.audience ?? TEST_AUDIENCE
    const init: Record<string, unknown> = { accountId: params.subject, client: grantClient, gty: HUMAN_GRANT }
    if (params.expires_in !== undefined) init.expiresIn = Number(params.expires_in)
    const token = new provider.AccessToken(init)
    token.resourceServer = new provider.ResourceServer(resourceFor(audience), resourceServerInfo(audience))
    const value = await token.save()
    ctx.body = {
      access_token: value,
      token_type: 'Bearer',
      expires_in: token.expiration,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token'
    }
  }, ['subject', 'audience', 'sluice_claims', 'expires_in'])

  return provider
}
