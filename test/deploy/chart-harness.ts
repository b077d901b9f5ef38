// Renders charts/sluice through Helm's own engine (helm-python-sdk in .venv/helm, set up by
// test/support/setup-python.sh) and returns the manifests with kubernetes-validate's verdict on
// each, so the tests assert on exactly what `helm install` would send to a cluster.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PYTHON = `${ROOT}.venv/helm/bin/python`
export const CHART = `${ROOT}charts/sluice`
/** The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas shipped. */
export const KUBE_VERSIONS = ['1.27', '1.37']

export interface Manifest {
  template: string
  object: K8sObject
  schema: 'checked' | 'no-schema'
  problems: string[]
}

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }
  spec?: any
  data?: Record<string, string>
  [key: string]: any
}

export interface RenderedCase {
  name: string
  error?: { type: string, message: string }
  lint?: { messages: Array<{ severity: number, path: string, error: string }>, errors: string[] }
  manifests?: Manifest[]
}

export interface Report {
  helm: string
  cases: RenderedCase[]
  documents: Array<[string, string[]]>
}

export interface Case { name: string, values?: Record<string, unknown>, release?: string, namespace?: string }

export async function renderChart (cases: Case[], documents: unknown[] = []): Promise<Report> {
  if (!existsSync(PYTHON)) throw new Error('.venv/helm is missing: run test/support/setup-python.sh')
  const child = spawn(PYTHON, [`${ROOT}test/support/helm_render.py`], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  child.stdin.end(JSON.stringify({ chart: CHART, kubeVersions: KUBE_VERSIONS, cases, documents }))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`helm_render.py exited ${code}: ${Buffer.concat(err).toString()}`)
  return JSON.parse(Buffer.concat(out).toString()) as Report
}

/** The manifests of one rendered case, failing loudly when the render itself failed. */
export function manifestsOf (report: Report, name: string): K8sObject[] {
  const rendered = report.cases.find((c) => c.name === name)
  if (rendered === undefined) throw new Error(`no case ${name}`)
  if (rendered.error !== undefined) throw new Error(`${name}: ${rendered.error.type}: ${rendered.error.message}`)
  return (rendered.manifests ?? []).map((m) => m.object)
}

export function one (objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}`)
  return found[0] as K8sObject
}

export function kinds (objects: K8sObject[]): string[] {
  return objects.map((o) => o.kind).sort()
}
