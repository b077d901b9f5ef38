// Two gateway replicas behind the round-robin proxy (replicas.ts) under the large-result policy
// (large-snowflake-upstream.ts), with the test IdP and a token for an agent: the cluster the
// Snowflake replica tests read large results through. The upstreams are each test's own.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LARGE_RESULT_POLICY } from './large-snowflake-upstream.js'
import { startTestIdp } from './oidc-provider.js'
import { startReplicas, type ReplicaCluster } from './replicas.js'

export interface LargeResultReplicas {
  cluster: ReplicaCluster
  /** An agent's bearer token (alice, group ai-agents). */
  token: string
  close: () => Promise<void>
}

export async function startLargeResultReplicas (connections: Record<string, Record<string, unknown>>): Promise<LargeResultReplicas> {
  const idp = await startTestIdp()
  const policies = await mkdtemp(join(tmpdir(), 'sluice-replica-policies-'))
  let cluster: ReplicaCluster | undefined
  const close = async (): Promise<void> => {
    await cluster?.close()
    await idp.close()
    await rm(policies, { recursive: true, force: true })
  }
  try {
    await writeFile(join(policies, 'policy.yaml'), LARGE_RESULT_POLICY)
    cluster = await startReplicas({
      policiesDir: policies,
      // A small old-generation heap: a replica that held a whole million-row result (several
      // times its 191 MB of JSON as JS values) could not serve it at all, and garbage is
      // collected before it can pass for retained memory in the RSS measured.
      heapMb: 160,
      config: {
        identity: { ...idp.identityConfig(), groupRoles: { 'ai-agents': ['agent'] } },
        connections
      }
    })
    return { cluster, token: await idp.userToken({ subject: 'alice', groups: ['ai-agents'] }), close }
  } catch (err) {
    await close()
    throw err
  }
}
