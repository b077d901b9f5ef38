// `sluice approvals …` and `sluice grants …` as an approver runs them (in-process `main`, the
// code the binary runs) against a listening gateway with tokens from a real OIDC provider:
// the decision is the approver's own, refused for the human the agent acts for.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ApprovalService } from '../../src/approvals/service.js'
import { main } from '../../src/cli/main.js'
import { approvalHoldStage } from '../../src/pipeline/hold.js'
import type { DecideStage } from '../../src/pipeline/stages.js'
import { approvalSettings } from '../../src/policy/approval.js'
import { migrate } from '../../src/store/migrate.js'
import { decideForTests, startHarness, type Harness } from '../recording/harness.js'
import { startTestIdp, type TestIdp } from '../support/oidc-provider.js'
import { pgliteEngine } from '../support/stores.js'

const decide: DecideStage = {
  ...decideForTests,
  decide (statement, analysis) {
    if (analysis.statements.some((s) => s.kind === 'delete')) {
      const detail = "DELETE needs a human's approval."
      return { effect: 'require_approval', ruleId: 'hold-deletes', reason: `approval required by rule hold-deletes: ${detail}`, detail, limits: {}, approval: approvalSettings() }
    }
    return decideForTests.decide(statement, analysis)
  }
}

async function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, env)
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += c.toString(); return true })
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += c.toString(); return true })
  try {
    return { code: await main(args), out, err }
  } finally {
    o.mockRestore()
    e.mockRestore()
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) Reflect.deleteProperty(process.env, k); else process.env[k] = v }
  }
}

describe('sluice approvals / grants', { timeout: 120_000 }, () => {
  const engine = pgliteEngine()
  let idp: TestIdp
  let h: Harness
  let url: string
  let agent: string
  let alice: string
  let carol: string

  const hold = async (sql: string): Promise<string> => {
    const res = await h.app.inject({ method: 'POST', url: '/test/sql', headers: { authorization: `Bearer ${agent}` }, payload: { sql } })
    expect(res.statusCode).toBe(403)
    return /waiting for approval ([0-9a-f-]{36})/.exec(res.json().message)?.[1] as string
  }

  beforeAll(async () => {
    idp = await startTestIdp()
    const store = await engine.open()
    await migrate(store)
    const service = new ApprovalService({ store })
    h = await startHarness({ store, identity: idp.identityConfig(), decide, hold: approvalHoldStage(service), approvals: service, groupRoles: { approvers: ['approver'] } })
    url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    agent = await idp.userToken({ subject: 'alice', groups: ['analysts'], act: { sub: 'claude-code', client_id: 'claude-code' } })
    alice = await idp.userToken({ subject: 'alice', groups: ['approvers'] })
    carol = await idp.userToken({ subject: 'carol', groups: ['approvers'] })
  })
  afterAll(async () => {
    await h?.app.close()
    await idp?.close()
    await engine.cleanup()
  })

  it('lists, shows and approves with a grant; refuses self-approval; lists and revokes the grant', async () => {
    const id = await hold('delete from analytics.public.orders where id = 7')
    const list = await run(['approvals', 'list', '--status', 'pending', '--url', url, '--token', carol])
    expect(list.code).toBe(0)
    expect(list.out).toMatch(new RegExp(`^${id}  pending  hold-deletes  wh  claude-code acting for alice  .*  delete from analytics.public.orders where id = 7$`, 'm'))
    const show = await run(['approvals', 'show', id, '--url', url], { SLUICE_TOKEN: carol })
    expect(show.out).toContain(`approval ${id}: pending (rule hold-deletes)`)
    expect(show.out).toContain('requested by claude-code acting for alice on wh (snowflake)')
    expect(show.out).toContain('delete from analytics.public.orders where id = 7')

    const self = await run(['approvals', 'approve', id, '--url', url, '--token', alice])
    expect(self.code).toBe(1)
    expect(self.err).toMatch(/^SLUICE_APPROVAL_SELF: approval .* alice cannot approve/)

    const ok = await run(['approvals', 'approve', id, '--reason', 'ticket 9', '--grant-minutes', '10', '--url', url, '--token', carol])
    expect(ok.code).toBe(0)
    const grant = /grant ([0-9a-f-]{36}) until/.exec(ok.out)?.[1]
    expect(ok.out).toMatch(new RegExp(`^approval ${id} approved; grant ${grant ?? '-'} until `))
    const grants = await run(['grants', 'list', '--active', '--url', url, '--token', carol])
    expect(grants.out).toMatch(new RegExp(`^${grant ?? '-'}  active  wh  claude-code acting for alice  until .*  uses 0  by carol  delete from analytics\\.public\\.orders where id = \\?$`, 'm'))
    expect((await run(['grants', 'revoke', grant as string, '--url', url, '--token', carol])).out).toBe(`grant ${grant ?? '-'} revoked by carol\n`)
    expect((await run(['grants', 'list', '--active', '--url', url, '--token', carol])).out).toBe('no grants\n')
  })

  it('denies with a reason only, and says what is missing', async () => {
    const id = await hold('delete from analytics.public.customers where id = 8')
    const bare = await run(['approvals', 'deny', id, '--url', url, '--token', carol])
    expect(bare).toMatchObject({ code: 1, err: expect.stringMatching(/^SLUICE_APPROVAL_REASON_REQUIRED/) })
    expect((await run(['approvals', 'deny', id, '--reason', 'use the archive', '--url', url, '--token', carol])).out).toBe(`approval ${id} denied\n`)
    expect((await run(['approvals', 'show', id, '--json', '--url', url, '--token', carol])).out).toContain('"decisionReason": "use the archive"')
    const noToken = await run(['approvals', 'list', '--url', url], { SLUICE_TOKEN: '' })
    expect(noToken).toMatchObject({ code: 1, err: expect.stringContaining('an OIDC token of the approver is needed') })
    expect((await run(['approvals', 'frobnicate', id, '--url', url, '--token', carol])).code).toBe(1)
  })
})
