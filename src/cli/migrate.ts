import { migrate } from '../store/migrate.js'
import { openStore } from '../store/open.js'
import { configFrom, parseCommon } from './options.js'

export async function runMigrate (args: string[]): Promise<number> {
  const { values } = parseCommon(args)
  const { config } = configFrom(values)
  const store = await openStore(config.store)
  try {
    const applied = await migrate(store)
    process.stdout.write(applied.length === 0
      ? `migrations: up to date (${store.kind})\n`
      : `migrations: applied ${applied.join(', ')} (${store.kind})\n`)
    return 0
  } finally {
    await store.close()
  }
}
