// Options every command shares.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { loadConfig, type LoadedConfig } from '../config/load.js'

type OptionSpecs = NonNullable<ParseArgsConfig['options']>

export function parseCommon<T extends OptionSpecs> (args: string[], extra: T = {} as T) {
  return parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, ...extra },
    allowPositionals: true,
    strict: true
  })
}

export function configFrom (values: { config?: unknown }): LoadedConfig {
  return loadConfig({ path: typeof values.config === 'string' ? values.config : undefined })
}
