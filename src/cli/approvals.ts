// `sluice approvals list|show|approve|deny` and `sluice grants list|revoke`: the approver's
// tools. Unlike `sluice audit` (which reads the store directly: verifying the trail needs no
// identity beyond database access, and must work with the gateway down), these talk to the
// gateway's admin API with the approver's own OIDC token. An approval is a person's decision:
// the rule's approvers and the no-self-approval check need a verified identity, and the
// decision must be an audit event naming that person — a direct store connection would let
// whoever holds the database credentials decide as anyone, unrecorded.
//
// Exit status: 0 done, 1 refused (the API's code and message on stderr) or unreachable.
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ERR_BAD_REQUEST } from '../errors.js'
import { configFrom, parseCommon } from './options.js'

const APPROVALS_USAGE = 'usage: sluice approvals list [--status S] [--connection C] [--requester P] [--limit N] [--json] | show <id> [--json] | approve <id> [--reason R] [--grant-minutes N] | deny <id> --reason R   (with --url, --token or SLUICE_TOKEN / --token-file)'
const GRANTS_USAGE = 'usage: sluice grants list [--active] [--connection C] [--json] | revoke <id>   (with --url, --token or SLUICE_TOKEN / --token-file)'

const CONNECT = {
  url: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' }
} as const

interface Connect { url?: unknown, token?: unknown, 'token-file'?: unknown, config?: unknown }

interface Api {
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number, body: any }>
}

/** The gateway's address: --url, SLUICE_URL, approvals.baseUrl, or the configured listener. */
async function connect (values: Connect): Promise<Api> {
  let base = typeof values.url === 'string' ? values.url : process.env.SLUICE_URL
  if (base === undefined) {
    const { config } = configFrom(values)
    const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host
    base = config.approvals.baseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`
  }
  let token = typeof values.token === 'string' ? values.token : process.env.SLUICE_TOKEN
  if (typeof values['token-file'] === 'string') token = (await readFile(resolve(values['token-file']), 'utf8')).trim()
  if (token === undefined || token === '') throw new ERR_BAD_REQUEST('an OIDC token of the approver is needed: --token, --token-file or SLUICE_TOKEN')
  const root = `${base.replace(/\/+$/, '')}/admin/v1`
  return {
    async call (method, path, body) {
      const res = await fetch(`${root}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) })
      })
      const text = await res.text()
      let parsed: unknown
      try { parsed = JSON.parse(text) } catch { parsed = { code: 'SLUICE_BAD_RESPONSE', message: text.slice(0, 500) } }
      return { status: res.status, body: parsed }
    }
  }
}

function refused (res: { status: number, body: any }): number {
  process.stderr.write(`${String(res.body?.code ?? res.status)}: ${String(res.body?.message ?? 'request failed')}\n`)
  return 1
}

const out = (line: string): void => { process.stdout.write(`${line}\n`) }

function oneLine (sql: string, max = 80): string {
  const flat = sql.replace(/\s+/g, ' ').trim()
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`
}

function showApproval (a: any): void {
  out(`approval ${String(a.id)}: ${String(a.status)} (rule ${String(a.ruleId)})`)
  out(`  requested by ${String(a.chain)} on ${String(a.connection)} (${String(a.connectionKind)}) at ${String(a.createdAt)}; expires ${String(a.expiresAt)}`)
  out(`  needs ${String(a.settings?.minApprovals ?? 1)} approval(s)${a.settings?.grant?.maxMinutes > 0 ? `; grants up to ${String(a.settings.grant.maxMinutes)} min` : ''}`)
  out(`  kinds: ${(a.analysis?.kinds ?? []).join(', ') || '-'}; tables: ${(a.analysis?.tables ?? []).join(', ') || '-'}${a.analysis?.maskedColumns?.length > 0 ? `; masked: ${String(a.analysis.maskedColumns.join(', '))}` : ''}`)
  if (a.justification !== undefined) out(`  justification: ${String(a.justification)}`)
  else if (a.settings?.justification === 'required' || a.settings?.justification === 'optional') out('  justification: no justification given')
  if (a.preview !== undefined) out(`  preview: ${JSON.stringify(a.preview)}`)
  if (a.params !== undefined) out(`  binds: ${JSON.stringify(a.params)}`)
  for (const d of a.decisions ?? []) out(`  ${String(d.decision)}d by ${String(d.approver)} at ${String(d.at)}${d.reason !== undefined ? `: ${String(d.reason)}` : ''}`)
  if (a.grantId !== undefined) out(`  released by grant ${String(a.grantId)}`)
  out('')
  out(String(a.sql))
}

function decisionLine (body: any): string {
  const a = body.approval
  const grant = body.grant === undefined ? '' : `; grant ${String(body.grant.id)} until ${String(body.grant.expiresAt)}`
  if (body.result === 'recorded') return `approval ${String(a.id)}: your approval is recorded; ${String(a.settings.minApprovals - a.decisions.filter((d: any) => d.decision === 'approve').length)} more needed`
  return `approval ${String(a.id)} ${String(body.result)}${grant}`
}

export async function runApprovals (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parseCommon(rest, {
    ...CONNECT,
    status: { type: 'string' },
    connection: { type: 'string' },
    requester: { type: 'string' },
    limit: { type: 'string' },
    reason: { type: 'string' },
    'grant-minutes': { type: 'string' }
  })
  const id = positionals[0]
  if (sub === 'list') {
    const api = await connect(values)
    const query = new URLSearchParams()
    for (const key of ['status', 'connection', 'requester', 'limit'] as const) if (typeof values[key] === 'string') query.set(key, values[key])
    const res = await api.call('GET', `/approvals${query.size > 0 ? `?${query.toString()}` : ''}`)
    if (res.status !== 200) return refused(res)
    if (values.json === true) { out(JSON.stringify(res.body, null, 2)); return 0 }
    for (const a of res.body.items) out([a.id, a.status, a.ruleId, a.connection, a.chain, a.createdAt, oneLine(a.sql)].join('  '))
    if (res.body.items.length === 0) out('no approvals')
    return 0
  }
  if (id === undefined || !['show', 'approve', 'deny'].includes(sub ?? '')) throw new ERR_BAD_REQUEST(APPROVALS_USAGE)
  const api = await connect(values)
  const path = `/approvals/${encodeURIComponent(id)}`
  if (sub === 'show') {
    const res = await api.call('GET', path)
    if (res.status !== 200) return refused(res)
    if (values.json === true) out(JSON.stringify(res.body, null, 2))
    else showApproval(res.body)
    return 0
  }
  const body: Record<string, unknown> = {}
  if (typeof values.reason === 'string') body.reason = values.reason
  if (sub === 'approve' && typeof values['grant-minutes'] === 'string') {
    const minutes = Number(values['grant-minutes'])
    if (!Number.isInteger(minutes) || minutes < 1) throw new ERR_BAD_REQUEST('--grant-minutes must be a whole number of minutes, 1 or more')
    body.grant = { minutes }
  }
  const res = await api.call('POST', `${path}/${sub as string}`, body)
  if (res.status !== 200) return refused(res)
  out(values.json === true ? JSON.stringify(res.body, null, 2) : decisionLine(res.body))
  return 0
}

export async function runGrants (args: string[]): Promise<number> {
  const [sub, ...rest] = args
  const { values, positionals } = parseCommon(rest, { ...CONNECT, active: { type: 'boolean' }, connection: { type: 'string' } })
  if (sub === 'list') {
    const api = await connect(values)
    const query = new URLSearchParams()
    if (values.active === true) query.set('active', 'true')
    if (typeof values.connection === 'string') query.set('connection', values.connection)
    const res = await api.call('GET', `/grants${query.size > 0 ? `?${query.toString()}` : ''}`)
    if (res.status !== 200) return refused(res)
    if (values.json === true) { out(JSON.stringify(res.body, null, 2)); return 0 }
    for (const g of res.body.items) {
      const who = [...(g.requester.delegation ?? []).map((a: { subject: string }) => a.subject), g.requester.subject].join(' acting for ')
      out([g.id, g.state, g.connection, who, `until ${String(g.expiresAt)}`, `uses ${String(g.uses)}`, `by ${String(g.grantedBy)}`, oneLine(g.fingerprint, 60)].join('  '))
    }
    if (res.body.items.length === 0) out('no grants')
    return 0
  }
  const id = positionals[0]
  if (sub !== 'revoke' || id === undefined) throw new ERR_BAD_REQUEST(GRANTS_USAGE)
  const res = await (await connect(values)).call('DELETE', `/grants/${encodeURIComponent(id)}`)
  if (res.status !== 200) return refused(res)
  out(`grant ${String(res.body.id)} revoked by ${String(res.body.revokedBy)}`)
  return 0
}
