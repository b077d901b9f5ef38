import { startGateway } from '../gateway.js'
import { configFrom, parseCommon } from './options.js'

/** Longest a shutdown may take to drain in-flight requests before the process exits anyway. */
const DRAIN_TIMEOUT_MS = 15_000

export async function runStart (args: string[]): Promise<number> {
  const { values } = parseCommon(args)
  const { config, source } = configFrom(values)
  const gateway = await startGateway(config)
  gateway.app.log.info({ config: source ?? '(built-in defaults)', url: gateway.url }, 'sluice listening')

  return await new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return
      stopping = true
      gateway.app.log.info({ signal }, 'shutting down: draining in-flight requests')
      const timer = setTimeout(() => {
        gateway.app.log.error('drain timed out; exiting')
        resolve(1)
      }, DRAIN_TIMEOUT_MS)
      timer.unref()
      gateway.close().then(() => resolve(0), (err: Error) => {
        gateway.app.log.error({ err: err.message }, 'shutdown failed')
        resolve(1)
      })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}
