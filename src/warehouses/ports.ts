// One warehouse port per configured connection (src/warehouses/port.ts), built on the upstream
// clients the wire front ends already hold where they are shared (the Snowflake runtime's
// session pool), and on new clients of the same kind otherwise.
import type { SluiceConfig } from '../config/types.js'
import { bigqueryConnections } from './bigquery/connections.js'
import { BigQueryPort } from './bigquery/port.js'
import { BigQueryUpstream } from './bigquery/upstream.js'
import type { WarehousePort } from './port.js'
import { postgresConnections } from './postgres/connections.js'
import { PostgresPort } from './postgres/port.js'
import { SnowflakePort } from './snowflake/port.js'
import type { SnowflakeRuntime } from './snowflake/runtime.js'

export interface PortSources {
  snowflake?: SnowflakeRuntime
  /** BigQuery clients by connection name (tests inject their own); built from config when absent. */
  bigquery?: ReadonlyMap<string, BigQueryUpstream>
}

export function warehousePorts (config: SluiceConfig, sources: PortSources = {}): Map<string, WarehousePort> {
  const ports = new Map<string, WarehousePort>()
  for (const settings of sources.snowflake?.connections ?? []) {
    ports.set(settings.name, new SnowflakePort(settings, (sources.snowflake as SnowflakeRuntime).upstream(settings)))
  }
  for (const settings of bigqueryConnections(config)) {
    ports.set(settings.name, new BigQueryPort(sources.bigquery?.get(settings.name) ?? new BigQueryUpstream(settings)))
  }
  for (const settings of postgresConnections(config)) ports.set(settings.name, new PostgresPort(settings))
  // In configuration order, as list_connections shows them.
  return new Map(Object.keys(config.connections).filter((name) => ports.has(name)).map((name) => [name, ports.get(name) as WarehousePort]))
}
