// Tells people a statement waits for them: one webhook per name a rule's `approval.notify`
// lists (approvals.webhooks in sluice.yaml), as generic JSON (`{ items: [...] }`, like the SIEM
// webhook) or as a Slack-compatible `blocks` message. Delivery reuses the SIEM webhook's sink:
// signed (`x-sluice-signature` over timestamp and body), retried with backoff, off the request
// path — `requested` only queues.
import type { ApprovalWebhookConfig } from '../config/types.js'
import { WebhookSink, type WebhookItem } from '../recording/webhook.js'
import type { StoreLog } from '../store/store.js'
import { justificationText, waitingMessage } from './messages.js'
import { chainText } from './people.js'
import type { ApprovalNotifier } from './service.js'
import type { ApprovalRecord } from './types.js'

export interface NotifyOptions {
  /** The gateway's public address; links are relative paths without it. */
  baseUrl?: string
  log?: StoreLog
}

/** One approval's notification through one webhook, delivered or given up on after retries. */
export interface Notified {
  approvalId: string
  connection: string
  webhook: string
  delivered: boolean
}

export function approvalLink (id: string, baseUrl?: string): string {
  const path = `/admin/v1/approvals/${id}`
  return baseUrl === undefined ? path : `${baseUrl.replace(/\/+$/, '')}${path}`
}

/** The generic JSON notification: everything an approver needs to decide, and where to do it. */
export function approvalItem (approval: ApprovalRecord, baseUrl?: string): WebhookItem {
  const r = approval.requester
  return {
    type: 'approval',
    event: 'requested',
    id: approval.id,
    status: approval.status,
    message: waitingMessage(approval),
    rule: approval.ruleId,
    reason: approval.reason,
    connection: approval.connection,
    connectionKind: approval.connectionKind,
    sql: approval.sql,
    fingerprint: approval.fingerprint,
    requester: { subject: r.subject, issuer: r.issuer, type: r.type, clientId: r.clientId ?? null, delegation: r.delegation },
    chain: chainText(r),
    analysis: approval.analysis,
    preview: approval.preview ?? null,
    justification: justificationText(approval) ?? null,
    minApprovals: approval.settings.minApprovals,
    approvers: approval.settings.approvers,
    createdAt: approval.createdAt,
    expiresAt: approval.expiresAt,
    link: approvalLink(approval.id, baseUrl)
  }
}

// Slack refuses a section text over 3000 characters; the full SQL is one click away.
const SLACK_TEXT = 2800

function clip (text: string, max = SLACK_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`
}

/** mrkdwn treats these three as markup; inside code blocks a ``` would end the block. */
function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/```/g, "'''")
}

/** A Slack incoming-webhook message (`text` fallback plus `blocks`) for one approval item. */
export function slackMessage (item: WebhookItem): Record<string, unknown> {
  const s = (k: string): string => String(item[k] ?? '')
  const analysis = item.analysis as { kinds?: string[], tables?: string[], maskedColumns?: string[] } | undefined
  const link = s('link')
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`Approval needed: rule ${s('rule')}`, 150) } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Requested by*\n${escape(s('chain'))}` },
        { type: 'mrkdwn', text: `*Connection*\n${escape(`${s('connection')} (${s('connectionKind')})`)}` },
        { type: 'mrkdwn', text: `*Approvals needed*\n${s('minApprovals')}` },
        { type: 'mrkdwn', text: `*Expires*\n${s('expiresAt')}` }
      ]
    },
    { type: 'section', text: { type: 'mrkdwn', text: `*SQL*\n\`\`\`${escape(clip(s('sql')))}\`\`\`` } }
  ]
  const facts = [
    analysis?.kinds?.length ? `kinds: ${analysis.kinds.join(', ')}` : undefined,
    analysis?.tables?.length ? `tables: ${analysis.tables.join(', ')}` : undefined,
    analysis?.maskedColumns?.length ? `masked: ${analysis.maskedColumns.join(', ')}` : undefined
  ].filter((f) => f !== undefined)
  if (facts.length > 0) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escape(facts.join(' · ')) }] })
  if (typeof item.justification === 'string') {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Justification*\n${escape(clip(item.justification, 1500))}` } })
  }
  if (item.preview !== null && item.preview !== undefined) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Preview*\n\`\`\`${escape(clip(JSON.stringify(item.preview, null, 2), 1500))}\`\`\`` } })
  }
  // A button needs an absolute URL: without approvals.baseUrl the path is shown as text.
  if (/^https?:\/\//.test(link)) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', style: 'primary', text: { type: 'plain_text', text: 'Review approval' }, url: link }] })
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escape(`approval ${s('id')} · ${link} · sluice approvals approve ${s('id')}`) }] })
  return {
    text: clip(`${s('chain')} asks to run a statement on ${s('connection')} (rule ${s('rule')}): approval ${s('id')}`, 500),
    blocks
  }
}

export class ApprovalWebhooks implements ApprovalNotifier {
  readonly #sinks = new Map<string, WebhookSink>()
  readonly #options: NotifyOptions
  #listener: ((n: Notified) => void) | undefined

  constructor (webhooks: Record<string, ApprovalWebhookConfig>, options: NotifyOptions = {}) {
    this.#options = options
    for (const [name, config] of Object.entries(webhooks)) {
      const slack = config.format === 'slack'
      const settled = (batch: WebhookItem[], delivered: boolean): void => {
        for (const item of batch) this.#listener?.({ approvalId: String(item.id), connection: String(item.connection), webhook: name, delivered })
      }
      // A Slack message carries one approval; the JSON body batches like the SIEM webhook.
      this.#sinks.set(name, new WebhookSink({ ...config, batchSize: slack ? 1 : 50 }, options.log,
        slack ? { encode: (batch) => JSON.stringify(slackMessage(batch[0] as WebhookItem)), settled } : { settled }))
    }
  }

  /** Told of every notification once delivered or given up on (the trail's "notified" step). */
  onSettled (listener: (n: Notified) => void): void {
    this.#listener = listener
  }

  /** Queues the notification for every webhook the rule names; never waits, never throws. */
  requested (approval: ApprovalRecord): void {
    for (const name of approval.settings.notify) {
      const sink = this.#sinks.get(name)
      if (sink === undefined) {
        this.#options.log?.warn({ webhook: name, rule: approval.ruleId, approval: approval.id }, 'approvals: rule names a webhook that approvals.webhooks does not define; nobody was notified through it')
        continue
      }
      sink.push([approvalItem(approval, this.#options.baseUrl)])
    }
  }

  /** Delivery counters per webhook, for tests and health output. */
  stats (name: string): WebhookSink['stats'] | undefined {
    return this.#sinks.get(name)?.stats
  }

  async close (graceMs?: number): Promise<void> {
    await Promise.all([...this.#sinks.values()].map(async (s) => { await s.close(graceMs) }))
  }
}
