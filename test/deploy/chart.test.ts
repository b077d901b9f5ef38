// The Helm chart, rendered and linted by Helm's own engine with default and non-default values;
// every manifest checked against the Kubernetes schemas (kubernetes-validate, strict); the
// rendered sluice.yaml and policies loaded by the gateway's own config and policy loaders.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config/load.js'
import { loadPolicyDirectory } from '../../src/policy/loader.js'
import { kinds, manifestsOf, one, renderChart, type K8sObject, type Report } from './chart-harness.js'

const full = {
  replicaCount: 3,
  image: { repository: 'registry.example.com/sluice', digest: `sha256:${'a'.repeat(64)}` },
  autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 9 },
  ingress: { enabled: true, className: 'nginx', hosts: [{ host: 'sluice.corp.example', paths: [{ path: '/', pathType: 'Prefix' }] }], tls: [{ secretName: 'sluice-tls', hosts: ['sluice.corp.example'] }] },
  serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
  service: { postgres: { enabled: true } },
  networkPolicy: { ingressFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], egress: { restrict: true, rules: [{ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ port: 5432, protocol: 'TCP' }] }] } },
  serviceAccount: { annotations: { 'iam.gke.io/gcp-service-account': 'sluice@acme.iam.gserviceaccount.com' } },
  store: { embedded: false, existingSecret: 'pg-prod', urlKey: 'uri' },
  secretsKey: { existingSecret: 'sluice-shared', key: 'key' },
  checkpointKey: { existingSecret: 'sluice-checkpoint', key: 'checkpoint.pem' },
  webhook: { existingSecret: 'siem', key: 'hmac' },
  secretEnv: [{ name: 'SNOWFLAKE_PASSWORD', secretName: 'snowflake-prod', key: 'password' }],
  secretFiles: [{ name: 'bigquery', secretName: 'bq-sa', mountPath: '/var/run/secrets/sluice/bigquery' }],
  env: { SLUICE_LOG_LEVEL: 'debug' },
  migration: { mode: 'onStart' },
  config: {
    identity: { issuer: 'https://idp.corp.example/realms/agents', audience: ['sluice'] },
    connections: {
      'snowflake-prod': { kind: 'snowflake', account: 'acme-prod', user: 'SLUICE', password: '${env:SNOWFLAKE_PASSWORD}' },
      'bq-prod': { kind: 'bigquery', project: 'acme-analytics', credentials: '${file:/var/run/secrets/sluice/bigquery/sa.json}' }
    },
    recording: { webhook: { url: 'https://siem.corp.example/ingest' } }
  },
  policies: { files: { 'agents.yaml': 'version: 1\nrules:\n  - id: read\n    effect: allow\n    match: { roles: [agent], kinds: [select] }\n' } }
}

// The example values the README gives for `helm install`.
const readmeValues = parseYaml(/`my-values.yaml`:\n\n```yaml\n([\s\S]*?)```/.exec(readFileSync('README.md', 'utf8'))?.[1] ?? 'missing: true')

const cases = [
  { name: 'default' },
  { name: 'readme', values: readmeValues },
  { name: 'full', values: full },
  { name: 'existing-configmaps', values: { existingConfigMap: 'my-sluice-config', policies: { existingConfigMap: 'my-policies' } } },
  { name: 'embedded', values: { replicaCount: 1, store: { embedded: true, existingSecret: '', urlKey: 'url' }, secretsKey: { existingSecret: '', key: 'k' }, migration: { mode: 'onStart' }, persistence: { enabled: true } } },
  // Refused, each for its own reason.
  { name: 'embedded-two-replicas', values: { store: { embedded: true, existingSecret: '', urlKey: 'url' }, migration: { mode: 'onStart' } } },
  { name: 'no-store-secret', values: { store: { embedded: false, existingSecret: '', urlKey: 'url' } } },
  { name: 'no-secrets-key', values: { secretsKey: { existingSecret: '', key: 'k' } } },
  { name: 'literal-secret', values: { config: { secrets: { key: 'x'.repeat(40) } } } },
  { name: 'literal-password', values: { config: { connections: { sf: { kind: 'snowflake', password: 'hunter2hunter2' } } } } },
  { name: 'store-url-literal', values: { config: { store: { url: 'postgres://sluice:pw@db/sluice' } } } },
  { name: 'short-grace', values: { terminationGracePeriodSeconds: 10 } },
  { name: 'root', values: { podSecurityContext: { runAsNonRoot: false } } }
]

// Manifests with one mistake each, so the validator is shown to refuse what it should: a wrong
// type, and (strict schemas) a misspelt field.
const deployment = (replicas: unknown, container: Record<string, unknown>): unknown => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'broken' },
  spec: { replicas, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ...container }] } } }
})
const brokenDocuments = [deployment('two', {}), deployment(2, { readinessprobe: { httpGet: { path: '/readyz', port: 8080 } } })]

let report: Report
beforeAll(async () => { report = await renderChart(cases, brokenDocuments) }, 300_000)

const gateway = (objects: K8sObject[]): any => one(objects, 'Deployment').spec.template.spec.containers[0]
const envOf = (container: any): Record<string, any> => Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? e.valueFrom]))

describe('the chart, rendered by Helm', () => {
  it('renders every accepted case to manifests the Kubernetes schemas accept, and lints clean', () => {
    expect(report.helm).toMatch(/^v[34]\./)
    for (const name of ['default', 'readme', 'full', 'existing-configmaps', 'embedded']) {
      const rendered = report.cases.find((c) => c.name === name)
      expect(rendered?.error, name).toBeUndefined()
      expect(rendered?.lint?.errors, name).toEqual([])
      expect(rendered?.lint?.messages.filter((m) => m.severity >= 2), name).toEqual([])
      for (const manifest of rendered?.manifests ?? []) {
        expect(manifest.problems, `${name} ${manifest.template}`).toEqual([])
        // Only the Prometheus Operator's CRD has no schema in kubernetes-validate.
        if (manifest.schema === 'no-schema') expect(manifest.object.kind).toBe('ServiceMonitor')
      }
    }
    expect(report.documents.map(([status]) => status)).toEqual(['checked', 'checked'])
    expect(report.documents[0]?.[1].join('\n')).toMatch(/spec\/replicas: 'two' is not of type/)
    expect(report.documents[1]?.[1].join('\n')).toMatch(/readinessprobe/)
  })

  it('refuses values that cannot work, naming the reason', () => {
    const error = (name: string): string => report.cases.find((c) => c.name === name)?.error?.message ?? '(rendered)'
    expect(error('embedded-two-replicas')).toMatch(/store.embedded keeps the store inside one pod/)
    expect(error('no-store-secret')).toMatch(/store.existingSecret/)
    expect(error('no-secrets-key')).toMatch(/must share secrets.key/)
    expect(error('literal-secret')).toMatch(/\/config\/secrets\/key/)
    expect(error('literal-password')).toMatch(/\/config\/connections\/sf\/password/)
    expect(error('store-url-literal')).toMatch(/\/config\/store\/url/)
    expect(error('short-grace')).toMatch(/terminationGracePeriodSeconds must be at least/)
    expect(error('root')).toMatch(/runAsNonRoot/)
  })
})

describe('default values: two replicas on an external PostgreSQL', () => {
  let objects: K8sObject[]
  beforeAll(() => { objects = manifestsOf(report, 'default') })

  it('renders the gateway, its config, a migration hook, a PDB and a NetworkPolicy, and no Secret', () => {
    expect(kinds(objects)).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'Job', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount'])
  })

  it('runs two replicas that roll one at a time and drain before they stop', () => {
    const deployment = one(objects, 'Deployment')
    expect(deployment.spec.replicas).toBe(2)
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
    const pod = deployment.spec.template.spec
    const container = gateway(objects)
    expect(container.lifecycle.preStop.exec.command).toEqual(['sleep', '5'])
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(5 + 15)
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' })
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' })
    expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' })
    expect(one(objects, 'PodDisruptionBudget').spec.maxUnavailable).toBe(1)
    expect(pod.topologySpreadConstraints[0].topologyKey).toBe('kubernetes.io/hostname')
  })

  it('runs as non-root on a read-only root filesystem without privilege escalation, /tmp writable', () => {
    const pod = one(objects, 'Deployment').spec.template.spec
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } })
    expect(pod.automountServiceAccountToken).toBe(false)
    const container = gateway(objects)
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } })
    expect(container.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' })
    const job = one(objects, 'Job').spec.template.spec
    expect(job.securityContext.runAsNonRoot).toBe(true)
    expect(job.containers[0].securityContext.readOnlyRootFilesystem).toBe(true)
  })

  it('takes the store URL and secrets.key from Secrets by reference', () => {
    const env = envOf(gateway(objects))
    expect(env.SLUICE_STORE_URL).toEqual({ secretKeyRef: { name: 'sluice-store', key: 'url' } })
    expect(env.SLUICE_SECRETS_KEY).toEqual({ secretKeyRef: { name: 'sluice-secrets', key: 'secrets-key' } })
    expect(env.SLUICE_HOST).toBe('0.0.0.0')
  })

  it('migrates once per install or upgrade in a hook that needs nothing the release creates', () => {
    const job = one(objects, 'Job')
    expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade')
    const pod = job.spec.template.spec
    expect(pod.containers[0].args).toEqual(['migrate'])
    expect(pod.serviceAccountName).toBeUndefined()
    expect(pod.volumes.map((v: any) => Object.keys(v).filter((k) => k !== 'name')).flat()).toEqual(['emptyDir'])
    expect(envOf(pod.containers[0]).SLUICE_STORE_URL).toEqual({ secretKeyRef: { name: 'sluice-store', key: 'url' } })
    const config = parseYaml(one(objects, 'ConfigMap', 'demo-sluice-config').data?.['sluice.yaml'] ?? '')
    expect(config.store.migrateOnStart).toBe(false)
  })

  it('ships the default policy, which the gateway loads', async () => {
    const policies = one(objects, 'ConfigMap', 'demo-sluice-policies').data ?? {}
    expect(policies['default.yaml']).toBe(readFileSync('policies/default.yaml', 'utf8'))
    const set = await loadPolicyDirectory(writeFiles(policies))
    expect(set.rules.length).toBeGreaterThan(0)
  })
})

describe('non-default values', () => {
  let objects: K8sObject[]
  beforeAll(() => { objects = manifestsOf(report, 'full') })

  it('leaves the replica count to the autoscaler, and exposes ingress, the wire port and metrics', () => {
    expect(kinds(objects)).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor'])
    expect(one(objects, 'Deployment').spec.replicas).toBeUndefined()
    expect(one(objects, 'HorizontalPodAutoscaler').spec).toMatchObject({ minReplicas: 3, maxReplicas: 9 })
    expect(one(objects, 'Ingress').spec.tls).toEqual([{ secretName: 'sluice-tls', hosts: ['sluice.corp.example'] }])
    expect(one(objects, 'Service').spec.ports.map((p: any) => p.name)).toEqual(['http', 'postgres'])
    expect(gateway(objects).image).toBe(`registry.example.com/sluice@sha256:${'a'.repeat(64)}`)
    const monitor = one(objects, 'ServiceMonitor')
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1')
    expect(monitor.metadata.labels?.release).toBe('prometheus')
    expect(monitor.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }])
    expect(one(objects, 'ServiceAccount').metadata.annotations).toEqual({ 'iam.gke.io/gcp-service-account': 'sluice@acme.iam.gserviceaccount.com' })
  })

  it('restricts egress to DNS, HTTPS and the rules given, and ingress to the peers given', () => {
    const policy = one(objects, 'NetworkPolicy').spec
    expect(policy.policyTypes).toEqual(['Ingress', 'Egress'])
    expect(policy.ingress[0].from).toEqual(full.networkPolicy.ingressFrom)
    expect(policy.ingress[0].ports.map((p: any) => p.port)).toEqual(['http', 'postgres'])
    expect(policy.egress.flatMap((r: any) => r.ports.map((p: any) => p.port))).toEqual([53, 53, 443, 5432])
  })

  it('migrates on start instead of in a hook', () => {
    expect(objects.some((o) => o.kind === 'Job')).toBe(false)
    const config = parseYaml(one(objects, 'ConfigMap', 'demo-sluice-config').data?.['sluice.yaml'] ?? '')
    expect(config.store.migrateOnStart).toBe(true)
  })

  it('keeps every secret out of the ConfigMaps: each reference resolves to a Secret the pod mounts or sets', () => {
    const container = gateway(objects)
    const pod = one(objects, 'Deployment').spec.template.spec
    const env = envOf(container)
    const secretMounts = container.volumeMounts
      .filter((m: any) => pod.volumes.find((v: any) => v.name === m.name)?.secret !== undefined)
      .map((m: any) => m.mountPath as string)
    const configText = one(objects, 'ConfigMap', 'demo-sluice-config').data?.['sluice.yaml'] ?? ''
    const references = [...configText.matchAll(/\$\{(env|file):([^}]+)\}/g)].map((m) => [m[1] ?? '', m[2] ?? ''] as const)
    expect(references).toEqual(expect.arrayContaining([['env', 'SNOWFLAKE_PASSWORD'], ['env', 'SLUICE_WEBHOOK_SECRET'], ['file', '/var/run/secrets/sluice/checkpoint/checkpoint.pem']]))
    for (const [kind, target] of references) {
      if (kind === 'env') expect(env[target]?.secretKeyRef, target).toBeDefined()
      else expect(secretMounts.some((dir: string) => target.startsWith(`${dir}/`)), target).toBe(true)
    }
    expect(env.SNOWFLAKE_PASSWORD).toEqual({ secretKeyRef: { name: 'snowflake-prod', key: 'password' } })
    expect(env.SLUICE_WEBHOOK_SECRET).toEqual({ secretKeyRef: { name: 'siem', key: 'hmac' } })
    expect(env.SLUICE_STORE_URL).toEqual({ secretKeyRef: { name: 'pg-prod', key: 'uri' } })
    // Nothing secret-looking is a literal anywhere in a ConfigMap.
    for (const map of objects.filter((o) => o.kind === 'ConfigMap')) {
      for (const text of Object.values(map.data ?? {})) {
        expect(text).not.toMatch(/(password|secret|key|credentials|passphrase|url):\s+(?!\$\{)(?!https:\/\/siem)\S*[A-Za-z0-9]{8}/i)
      }
    }
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false)
  })

  it('renders a sluice.yaml the gateway accepts, with the values the pod would have', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-chart-'))
    dirs.push(dir)
    // The secret mounts, as files under a scratch directory.
    const secretRoot = join(dir, 'secrets')
    for (const [path, text] of [['checkpoint/checkpoint.pem', 'not parsed at load'], ['bigquery/sa.json', '{"type":"service_account"}']] as const) {
      mkdirSync(join(secretRoot, path, '..'), { recursive: true })
      writeFileSync(join(secretRoot, path), text)
    }
    const text = (one(objects, 'ConfigMap', 'demo-sluice-config').data?.['sluice.yaml'] ?? '').replaceAll('/var/run/secrets/sluice', secretRoot)
    writeFileSync(join(dir, 'sluice.yaml'), text)
    const env = {
      ...Object.fromEntries(Object.entries(envOf(gateway(objects))).filter(([, v]) => typeof v === 'string')),
      SLUICE_CONFIG: join(dir, 'sluice.yaml'),
      SLUICE_POLICIES_DIR: dir,
      SLUICE_STORE_URL: 'postgres://sluice@db:5432/sluice',
      SLUICE_SECRETS_KEY: 'k'.repeat(40),
      SLUICE_WEBHOOK_SECRET: 'w'.repeat(32),
      SNOWFLAKE_PASSWORD: 'from-the-secret'
    }
    const { config } = loadConfig({ env, cwd: dir })
    expect(config.listen).toMatchObject({ host: '0.0.0.0', port: 8080 })
    expect(config.store.url).toBe('postgres://sluice@db:5432/sluice')
    expect(config.store.migrateOnStart).toBe(true)
    expect(config.secrets?.key).toBe('k'.repeat(40))
    expect(config.recording.webhook).toMatchObject({ url: 'https://siem.corp.example/ingest', secret: 'w'.repeat(32) })
    expect(config.recording.checkpointKey).toBe('not parsed at load')
    expect(config.log.level).toBe('debug')
  })

  it('ships the given policy files instead of the default', async () => {
    const policies = one(objects, 'ConfigMap', 'demo-sluice-policies').data ?? {}
    expect(Object.keys(policies)).toEqual(['agents.yaml'])
    const set = await loadPolicyDirectory(writeFiles(policies))
    expect(set.rules.map((r) => r.id)).toEqual(['read'])
  })

  it('mounts ConfigMaps the operator manages instead of rendering its own', () => {
    const own = manifestsOf(report, 'existing-configmaps')
    expect(own.some((o) => o.kind === 'ConfigMap')).toBe(false)
    const volumes = one(own, 'Deployment').spec.template.spec.volumes
    expect(volumes).toContainEqual({ name: 'config', configMap: { name: 'my-sluice-config' } })
    expect(volumes).toContainEqual({ name: 'policies', configMap: { name: 'my-policies' } })
  })

  it('runs one pod on the embedded store, on a volume, replaced rather than rolled', () => {
    const own = manifestsOf(report, 'embedded')
    expect(kinds(own)).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'NetworkPolicy', 'PersistentVolumeClaim', 'Service', 'ServiceAccount'])
    const deployment = one(own, 'Deployment')
    expect(deployment.spec.replicas).toBe(1)
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' })
    expect(envOf(gateway(own)).SLUICE_STORE_URL).toBeUndefined()
    expect(gateway(own).volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/sluice' })
    const config = parseYaml(one(own, 'ConfigMap', 'demo-sluice-config').data?.['sluice.yaml'] ?? '')
    expect(config.store).toEqual({ dataDir: '/var/lib/sluice', migrateOnStart: true })
  })
})

const dirs: string[] = []
afterAll(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }) })

function writeFiles (files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-policies-'))
  dirs.push(dir)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}
