// The Snowflake front ends: the connector protocol (snowflake-sdk, the Python connector) and
// SQL API v2, over one shared runtime (connections, upstream clients, sessions, handles).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { StoreConnectorSessions } from '../src/state/connector-sessions.js'
import { StoreIdempotencyKeys } from '../src/state/idempotency.js'
import { StoreStatementHandles } from '../src/state/statement-handles.js'
import { SnowflakeRuntime, type SnowflakeRuntimeOptions } from '../src/warehouses/snowflake/runtime.js'
import snowflakeConnector from './snowflake-connector.js'
import snowflakeSqlApi from './snowflake-sqlapi.js'

declare module 'fastify' {
  interface FastifyInstance {
    snowflake: SnowflakeRuntime
  }
}

export type SnowflakePluginOptions = SnowflakeRuntimeOptions

async function snowflakePlugin (fastify: FastifyInstance, opts: SnowflakePluginOptions): Promise<void> {
  // Validates every Snowflake connection now, so a bad key fails the start, not a request.
  const runtime = new SnowflakeRuntime(fastify.config, {
    idempotencyKeys: new StoreIdempotencyKeys(fastify.store),
    connectorSessions: new StoreConnectorSessions(fastify.store),
    statementHandles: new StoreStatementHandles(fastify.store),
    pipeline: fastify.pipeline,
    log: fastify.log,
    ...opts
  })
  fastify.decorate('snowflake', runtime)
  fastify.addHook('onClose', async function closeSnowflake () { await runtime.close() })
  await fastify.register(snowflakeConnector)
  await fastify.register(snowflakeSqlApi)
}

export default fp(snowflakePlugin, {
  name: 'sluice-snowflake',
  fastify: '5.x',
  dependencies: ['sluice-store', 'sluice-auth', 'sluice-recording']
})
