// pino options shared by the server and the CLI. Secrets never reach a log line: the paths
// below cover request headers and every config or body field that can carry a credential.
import type { LogConfig } from './config/types.js'

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-snowflake-authorization-token-type"]',
  'headers.authorization',
  'authorization',
  'token',
  'password',
  'passphrase',
  'privateKey',
  'private_key',
  'secret',
  'clientSecret',
  '*.token',
  '*.password',
  '*.passphrase',
  '*.privateKey',
  '*.private_key',
  '*.secret',
  '*.clientSecret',
  '*.masterToken',
  '*.sessionToken'
]

export function loggerOptions (level: LogConfig['level']): Record<string, unknown> {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' }
  }
}
