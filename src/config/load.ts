// Loads sluice.yaml once at start: resolve secret references, apply SLUICE_* overrides,
// validate against the one schema (filling defaults), then freeze. Any problem is a
// ConfigError naming the key, so `sluice start` can exit non-zero with an actionable line.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { ERR_CONFIG_INVALID, ERR_CONFIG_REFERENCE, ERR_CONFIG_UNREADABLE } from '../errors.js'
import { configSchema } from './schema.js'
import type { SluiceConfig } from './types.js'
import { applyEnvOverrides } from './overrides.js'

export interface LoadedConfig {
  config: SluiceConfig
  /** The file read, or null when none existed at the default path. */
  source: string | null
}

export interface LoadOptions {
  /** Explicit file; otherwise SLUICE_CONFIG, otherwise ./sluice.yaml (which may be absent). */
  path?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
}

const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: true, allowUnionTypes: true })
const validate = ajv.compile(configSchema)

export function loadConfig (options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const explicit = options.path ?? env.SLUICE_CONFIG
  const path = resolve(cwd, explicit ?? 'sluice.yaml')

  let raw: unknown = {}
  let source: string | null = path
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {}
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    // Only the implicit default may be missing: the gateway then runs on built-in defaults.
    if (e.code === 'ENOENT' && explicit === undefined) {
      source = null
    } else {
      throw new ERR_CONFIG_UNREADABLE(path, e.code === 'ENOENT' ? 'file not found' : e.message)
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ERR_CONFIG_INVALID('the file must hold a YAML mapping at the top level')
  }

  const resolved = resolveReferences(raw, '', { env, baseDir: source === null ? cwd : dirname(path) })
  const withOverrides = applyEnvOverrides(resolved as Record<string, unknown>, env)
  return { config: validateConfig(withOverrides), source }
}

/** Validates an already-resolved object, fills defaults and freezes it. */
export function validateConfig (input: Record<string, unknown>): SluiceConfig {
  const candidate = structuredClone(input)
  if (!validate(candidate)) {
    throw new ERR_CONFIG_INVALID(describeErrors(validate.errors ?? []))
  }
  const config = candidate as unknown as SluiceConfig
  const identity = config.identity as (SluiceConfig['identity'] & { audience: string | string[] }) | undefined
  if (identity !== undefined && typeof identity.audience === 'string') identity.audience = [identity.audience]
  checkDefaultConnections(config)
  checkHeaderRoom(config)
  return deepFreeze(config)
}

/** Room a request needs besides its token: request line, Host, User-Agent, Content-Type, … */
const HEADER_HEADROOM_BYTES = 8192

/**
 * A token the verifier would still measure must be able to arrive: if it cannot, Node refuses
 * the request with a bare 431 before Sluice sees it, and the refusal is neither explained
 * (WWW-Authenticate) nor recorded.
 */
function checkHeaderRoom (config: SluiceConfig): void {
  const tokenBytes = config.identity?.maxTokenBytes
  if (tokenBytes === undefined) return
  const needed = tokenBytes + HEADER_HEADROOM_BYTES
  if (config.listen.maxHeaderBytes < needed) {
    throw new ERR_CONFIG_INVALID(`/listen/maxHeaderBytes: must be at least identity.maxTokenBytes + ${HEADER_HEADROOM_BYTES} (${needed}) so that an oversize token reaches Sluice and is refused with 401 instead of Node's bare 431`)
  }
}

function checkDefaultConnections (config: SluiceConfig): void {
  const defaults = new Map<string, string>()
  for (const [name, connection] of Object.entries(config.connections)) {
    if (!connection.default) continue
    const other = defaults.get(connection.kind)
    if (other !== undefined) {
      throw new ERR_CONFIG_INVALID(`/connections/${name}/default: ${other} is already the default ${connection.kind} connection`)
    }
    defaults.set(connection.kind, name)
  }
}

function describeErrors (errors: ErrorObject[]): string {
  // anyOf reports one error per branch; the branch messages are noise next to the summary.
  const useful = errors.filter((e) => e.keyword !== 'anyOf' || errors.length === 1)
  return useful.slice(0, 5).map((e) => {
    const key = e.instancePath === '' ? '(top level)' : e.instancePath
    if (e.keyword === 'additionalProperties') {
      return `${key}: unknown key "${String(e.params.additionalProperty)}"`
    }
    if (e.keyword === 'enum') {
      return `${key}: must be one of ${(e.params.allowedValues as unknown[]).join(', ')}`
    }
    return `${key}: ${e.message ?? 'is invalid'}`
  }).join('; ')
}

interface RefContext { env: NodeJS.ProcessEnv, baseDir: string }

const REFERENCE = /\$\{(env|file):([^}]+)\}/g

function resolveReferences (value: unknown, key: string, ctx: RefContext): unknown {
  if (typeof value === 'string') return resolveString(value, key, ctx)
  if (Array.isArray(value)) return value.map((v, i) => resolveReferences(v, `${key}/${i}`, ctx))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveReferences(v, `${key}/${k}`, ctx)]))
  }
  return value
}

function resolveString (value: string, key: string, ctx: RefContext): string {
  return value.replace(REFERENCE, (_match, kind: string, name: string) => {
    if (kind === 'env') {
      const found = ctx.env[name]
      if (found === undefined) throw new ERR_CONFIG_REFERENCE(key, `environment variable ${name} is not set`)
      return found
    }
    const file = resolve(ctx.baseDir, name)
    try {
      // Secret files conventionally end with a newline that is not part of the secret.
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new ERR_CONFIG_REFERENCE(key, `cannot read ${name}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
    }
  })
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
