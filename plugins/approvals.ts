// /admin/v1/approvals and /admin/v1/grants: the approver's window on held statements. Reading
// needs the approver or auditor role, deciding the approver role (and then what the rule says:
// its approvers, never the requester). Every call is a recorded admin round trip, and each
// decision's event names the approval, the approver and what was decided — or why it was refused.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { waitingMessage } from '../src/approvals/messages.js'
import { chainText } from '../src/approvals/people.js'
import { ApprovalService, type DecisionResult } from '../src/approvals/service.js'
import type { ApprovalRecord, ApprovalStatus, GrantRecord } from '../src/approvals/types.js'
import type { Principal } from '../src/identity/principal.js'
import { ADMIN_PREFIX, AUDITOR_ROLE } from './admin.js'
import { approvalQuery, approveBody, denyBody, grantQuery, uuidParams } from './approvals-openapi.js'
import { refuseOtherMethods } from './method-not-allowed.js'

export const APPROVER_ROLE = 'approver'

declare module 'fastify' {
  interface FastifyInstance {
    /** The approvals service (store-backed), shared with the pipeline's hold stage. */
    approvals: ApprovalService
  }
}

interface ListRoute { Querystring: { status?: ApprovalStatus, connection?: string, requester?: string, cursor?: string, limit?: number } }
interface GrantsRoute { Querystring: { active?: boolean, connection?: string, requester?: string, cursor?: string, limit?: number } }
interface IdRoute { Params: { id: string } }
interface ApproveRoute extends IdRoute { Body: { reason?: string, grant?: { minutes: number } } | undefined }
interface DenyRoute extends IdRoute { Body: { reason?: string } | undefined }

/** An approval as the API shows it: the record, the chain in words, the client's status message. */
export function approvalView (approval: ApprovalRecord): ApprovalRecord & { chain: string, message: string } {
  return { ...approval, chain: chainText(approval.requester), message: waitingMessage(approval) }
}

function describe (result: DecisionResult): string {
  const a = result.approval
  const approvals = a.decisions.filter((d) => d.decision === 'approve').length
  if (result.result === 'denied') return `approval ${a.id} denied by ${a.decidedBy ?? '?'}: ${a.decisionReason ?? 'no reason given'}`
  const grant = result.grant === undefined ? '' : `; grant ${result.grant.id} until ${result.grant.expiresAt}`
  if (result.result === 'approved') return `approval ${a.id} approved by ${a.decidedBy ?? '?'} (rule ${a.ruleId})${grant}`
  return `approval ${a.id}: approval ${approvals} of ${a.settings.minApprovals} recorded (rule ${a.ruleId})`
}

export function createApprovalHandlers (service: ApprovalService) {
  /** Names the approval and the approver on the round trip before acting, so a refusal is recorded too. */
  async function decided<T> (request: FastifyRequest, approvalId: string, act: (approver: Principal) => Promise<T>, summary: (out: T) => string): Promise<T> {
    const approver = request.principal as Principal
    const action: NonNullable<typeof request.roundTrip.approvalAction> = { approvalId, approver: approver.subject }
    request.roundTrip.approvalAction = action
    try {
      const out = await act(approver)
      action.summary = summary(out)
      return out
    } catch (err) {
      action.summary = `refused: ${(err as Error).message}`
      throw err
    }
  }

  return {
    async list (request: FastifyRequest<ListRoute>) {
      const { cursor, limit, ...filter } = request.query
      const page = await service.list(filter, cursor, limit)
      return { items: page.items.map(approvalView), nextCursor: page.nextCursor }
    },

    async get (request: FastifyRequest<IdRoute>) {
      return approvalView(await service.get(request.params.id))
    },

    async approve (request: FastifyRequest<ApproveRoute>) {
      const body = request.body ?? {}
      const out = await decided(request, request.params.id,
        async (approver) => await service.approve(request.params.id, approver, body), describe)
      return { ...out, approval: approvalView(out.approval) }
    },

    async deny (request: FastifyRequest<DenyRoute>) {
      const out = await decided(request, request.params.id,
        async (approver) => await service.deny(request.params.id, approver, request.body?.reason), describe)
      return { ...out, approval: approvalView(out.approval) }
    },

    async listGrants (request: FastifyRequest<GrantsRoute>) {
      const { cursor, limit, ...filter } = request.query
      return await service.listGrants(filter, cursor, limit)
    },

    async revokeGrant (request: FastifyRequest<IdRoute>) {
      // The event is about the grant's approval; the grant id is in its reason.
      const grant = await decided<GrantRecord>(request, request.params.id,
        async (by) => await service.revokeGrant(request.params.id, by),
        (g) => `grant ${g.id} (approval ${g.approvalId}) revoked by ${g.revokedBy ?? '?'}`)
      if (request.roundTrip.approvalAction !== undefined) request.roundTrip.approvalAction.approvalId = grant.approvalId
      return grant
    }
  }
}

export interface ApprovalsPluginOptions {
  /** Built by the gateway so the hold stage shares it; built on the store otherwise. */
  approvals?: ApprovalService
}

async function approvalsPlugin (fastify: FastifyInstance, options: ApprovalsPluginOptions): Promise<void> {
  const service = options.approvals ?? new ApprovalService({ store: fastify.store })
  fastify.decorate('approvals', service)
  const handlers = createApprovalHandlers(service)
  const config = { authenticate: true, frontEnd: 'admin' }
  // Authorized in onRequest, before the body is read: a caller without the role is refused
  // before any parsing or validation (media type, schema), so it learns nothing of the API.
  const read = { config, onRequest: fastify.requireRole(APPROVER_ROLE, AUDITOR_ROLE) }
  const decide = { config, onRequest: fastify.requireRole(APPROVER_ROLE) }
  // A decision without a body (`curl -X POST`) is one with no reason and no grant.
  const decideWithBody = { ...decide, preValidation: async function emptyBody (request: FastifyRequest) { request.body ??= {} } }

  await fastify.register(async function approvalRoutes (api) {
    api.get<ListRoute>('/approvals', { ...read, schema: { querystring: approvalQuery } }, handlers.list)
    api.get<IdRoute>('/approvals/:id', { ...read, schema: { params: uuidParams } }, handlers.get)
    api.post<ApproveRoute>('/approvals/:id/approve', { ...decideWithBody, schema: { params: uuidParams, body: approveBody } }, handlers.approve)
    api.post<DenyRoute>('/approvals/:id/deny', { ...decideWithBody, schema: { params: uuidParams, body: denyBody } }, handlers.deny)
    api.get<GrantsRoute>('/grants', { ...read, schema: { querystring: grantQuery } }, handlers.listGrants)
    api.delete<IdRoute>('/grants/:id', { ...decide, schema: { params: uuidParams } }, handlers.revokeGrant)
    for (const [path, methods, guard] of [
      ['/approvals', ['GET'], read], ['/approvals/:id', ['GET'], read], ['/approvals/:id/approve', ['POST'], decide],
      ['/approvals/:id/deny', ['POST'], decide], ['/grants', ['GET'], read], ['/grants/:id', ['DELETE'], decide]
    ] as const) {
      refuseOtherMethods(api, path, [...methods], { config, authorize: guard.onRequest, label: `${ADMIN_PREFIX}${path}` })
    }
  }, { prefix: ADMIN_PREFIX })
}

export default fp(approvalsPlugin, {
  name: 'sluice-approvals',
  fastify: '5.x',
  dependencies: ['sluice-auth', 'sluice-roles', 'sluice-recording', 'sluice-admin']
})
