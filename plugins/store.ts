// Makes the audit store available to every plugin and closes it last on shutdown, after
// in-flight requests have drained (Fastify runs onClose hooks after the server stops accepting).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Store } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export interface StorePluginOptions {
  store: Store
}

async function storePlugin (fastify: FastifyInstance, options: StorePluginOptions): Promise<void> {
  fastify.decorate('store', options.store)
  fastify.addHook('onClose', async function closeStore () {
    await options.store.close()
  })
}

export default fp(storePlugin, { name: 'sluice-store', fastify: '5.x' })
