// OAuth 2.0 Protected Resource Metadata (RFC 9728) for the MCP endpoint: an MCP client that gets
// 401 follows `resource_metadata` here and learns which authorization server issues tokens for
// Sluice (the configured OIDC issuer). The resource is the endpoint's public URL: mcp.resourceUrl
// when a proxy in front changes it, else the request's own origin (listen.trustProxy applies).
import type { FastifyRequest } from 'fastify'
import type { McpConfig } from '../../config/types.js'

export const MCP_PATH = '/mcp'

/** The origin mcp.resourceUrl names, if configured. */
export function publicOrigin (config: McpConfig): string | undefined {
  return config.resourceUrl === undefined ? undefined : new URL(config.resourceUrl).origin
}

export function resourceUrl (config: McpConfig, request: FastifyRequest): string {
  if (config.resourceUrl !== undefined) return config.resourceUrl.replace(/\/+$/, '')
  return `${request.protocol}://${request.host}${MCP_PATH}`
}

/** RFC 9728 §3.1: the well-known path with the resource's own path appended. */
export function metadataUrl (config: McpConfig, request: FastifyRequest): string {
  const resource = new URL(resourceUrl(config, request))
  const path = resource.pathname === '/' ? '' : resource.pathname.replace(/\/+$/, '')
  return `${resource.origin}/.well-known/oauth-protected-resource${path}`
}

export function protectedResourceMetadata (resource: string, issuer: string | undefined, scopes: readonly string[] | undefined): Record<string, unknown> {
  return {
    resource,
    authorization_servers: issuer === undefined ? [] : [issuer],
    bearer_methods_supported: ['header'],
    ...(scopes !== undefined && scopes.length > 0 && { scopes_supported: [...scopes] }),
    resource_name: 'Sluice'
  }
}
