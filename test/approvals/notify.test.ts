// Approval notifications against a loopback receiver: generic JSON and a Slack-compatible
// `blocks` message, both signed like the SIEM webhook, retried after a failure, and queued
// without waiting (the request path never waits on a receiver).
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApprovalWebhooks } from '../../src/approvals/notify.js'
import { requesterOf } from '../../src/approvals/people.js'
import type { ApprovalRecord } from '../../src/approvals/types.js'
import type { ApprovalWebhookConfig } from '../../src/config/types.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookSignature } from '../../src/recording/webhook.js'
import { agentForAlice } from './fixtures.js'

const SECRET = 'approval-webhook-secret-0123456789'

interface Received { path: string, body: string, headers: IncomingMessage['headers'], status: number }

function approval (over: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: '6f1c2b9e-8d0a-4c55-9a53-2b1f0e7d4c11',
    requester: requesterOf(agentForAlice),
    connection: 'wh',
    connectionKind: 'bigquery',
    frontEnd: 'bigquery',
    sql: 'select * from `proj.sales.orders` where region = \'EU\' and note like \'a<b>&```\'',
    fingerprint: 'select * from `proj.sales.orders` where region = ? and note like ?',
    statementHash: 'h',
    analysis: { kinds: ['select'], tables: ['proj.sales.orders'], maskedColumns: ['email'] },
    ruleId: 'hold-big-scans',
    settings: approvalSettings({ minApprovals: 2, notify: ['ops-json', 'ops-slack', 'nowhere'] }),
    reason: 'approval required by rule hold-big-scans',
    preview: { totalBytesProcessed: '53687091200', referencedTables: ['proj.sales.orders'] },
    status: 'pending',
    createdAt: '2026-12-01T12:00:00.000000Z',
    expiresAt: '2026-12-01T12:30:00.000000Z',
    decisions: [],
    ...over
  }
}

describe('approval notifications', { timeout: 60_000 }, () => {
  let server: Server
  let base: string
  const received: Received[] = []
  // The first delivery to each path fails: the sink must retry.
  const failedOnce = new Set<string>()

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => { body += String(c) })
      req.on('end', () => {
        const path = req.url ?? ''
        const status = failedOnce.has(path) ? 200 : 503
        failedOnce.add(path)
        received.push({ path, body, headers: req.headers, status })
        res.writeHead(status).end()
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  })
  afterAll(async () => { server.close() })

  const hook = (path: string, format: 'json' | 'slack'): ApprovalWebhookConfig =>
    ({ url: `${base}${path}`, secret: SECRET, format, timeoutMs: 5000, maxAttempts: 4, backoffMs: 20, maxBackoffMs: 50, maxQueue: 100 })

  const delivered = async (path: string): Promise<Received> => {
    for (let i = 0; i < 200; i++) {
      const ok = received.find((r) => r.path === path && r.status === 200)
      if (ok !== undefined) return ok
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    throw new Error(`nothing delivered to ${path}`)
  }

  const verify = (r: Received): void => {
    const timestamp = String(r.headers[TIMESTAMP_HEADER])
    expect(r.headers[SIGNATURE_HEADER]).toBe(webhookSignature(SECRET, timestamp, r.body))
    expect(r.headers['content-type']).toBe('application/json')
  }

  it('posts a signed JSON item and a signed Slack blocks message, each retried after a failure, without waiting', async () => {
    const warnings: unknown[] = []
    const hooks = new ApprovalWebhooks({ 'ops-json': hook('/json', 'json'), 'ops-slack': hook('/slack', 'slack') },
      { baseUrl: 'https://sluice.example.com/', log: { info: () => {}, warn: (o) => warnings.push(o) } })
    // Synchronous and returns nothing to await: queued, not delivered, when the caller goes on.
    expect(hooks.requested(approval())).toBeUndefined()
    expect(received.filter((r) => r.status === 200)).toHaveLength(0)

    const json = await delivered('/json')
    verify(json)
    expect(received.filter((r) => r.path === '/json').map((r) => r.status)).toEqual([503, 200])
    const [item] = JSON.parse(json.body).items
    expect(item).toMatchObject({
      type: 'approval', event: 'requested', id: approval().id, rule: 'hold-big-scans', connection: 'wh',
      sql: approval().sql, chain: 'claude-code acting for alice',
      requester: { subject: 'alice', delegation: [{ subject: 'claude-code', clientId: 'claude-code' }] },
      preview: { totalBytesProcessed: '53687091200' }, minApprovals: 2,
      message: `waiting for approval ${approval().id} (rule hold-big-scans)`,
      link: `https://sluice.example.com/admin/v1/approvals/${approval().id}`
    })

    const slack = await delivered('/slack')
    verify(slack)
    const message = JSON.parse(slack.body)
    expect(message.text).toContain('claude-code acting for alice')
    const text = JSON.stringify(message.blocks)
    expect(message.blocks[0]).toMatchObject({ type: 'header', text: { type: 'plain_text', text: 'Approval needed: rule hold-big-scans' } })
    // The SQL in a code block, escaped for mrkdwn; the chain, the preview, a button to the approval.
    expect(text).toContain("note like 'a&lt;b&gt;&amp;'''")
    expect(text).toContain('claude-code acting for alice')
    expect(text).toContain('53687091200')
    expect(message.blocks).toContainEqual({ type: 'actions', elements: [{ type: 'button', style: 'primary', text: { type: 'plain_text', text: 'Review approval' }, url: `https://sluice.example.com/admin/v1/approvals/${approval().id}` }] })
    // A rule naming a webhook that is not configured is logged, not fatal.
    expect(warnings).toContainEqual(expect.objectContaining({ webhook: 'nowhere' }))
    await hooks.close()
  })

  it('gives up after maxAttempts and counts the loss', async () => {
    const hooks = new ApprovalWebhooks({ 'ops-json': { ...hook('/never', 'json'), url: 'http://127.0.0.1:1/closed', maxAttempts: 2 } })
    hooks.requested(approval())
    for (let i = 0; i < 200 && hooks.stats('ops-json')?.dropped === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(hooks.stats('ops-json')).toMatchObject({ dropped: 1, failedAttempts: 2, delivered: 0 })
    await hooks.close()
  })
})
