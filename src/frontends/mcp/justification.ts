// The query tool's justification for a held statement, under a rule with
// `approval.justification`: asked through elicitation (one string field) when the client
// declared the capability, else refused with how to give it (the `justification` argument).
// Asked by the approvals service only when a new approval is about to be created.
import type { JustificationAsker } from '../../approvals/service.js'
import { ERR_MCP_JUSTIFICATION_REQUIRED } from '../../errors.js'
import type { ToolCall } from './context.js'

/** What an elicitation came back as: accepted with content, declined, cancelled (or never answered). */
export interface ElicitAnswer {
  action: 'accept' | 'decline' | 'cancel'
  content?: Record<string, unknown>
}

/** Sends one `elicitation/create` on the call's stream and waits for the client's answer. */
export type Elicit = (params: { message: string, requestedSchema: Record<string, unknown> }) => Promise<ElicitAnswer | undefined>

export const JUSTIFICATION_FIELD = 'justification'

export function elicitationParams (ruleId: string, reason: string, required: boolean): { message: string, requestedSchema: Record<string, unknown> } {
  return {
    message: `This statement needs a human's approval (rule ${ruleId}: ${reason}). ${required ? 'Say' : 'You may say'} why it should run; the approver reads it.`,
    requestedSchema: {
      type: 'object',
      properties: {
        [JUSTIFICATION_FIELD]: { type: 'string', title: 'Justification', description: 'Why this statement should run (a ticket, the question it answers).', minLength: 1, maxLength: 4000 }
      },
      ...(required && { required: [JUSTIFICATION_FIELD] })
    }
  }
}

export function mcpJustificationAsker (call: ToolCall): JustificationAsker {
  return async ({ ruleId, required, reason }) => {
    if (call.elicit === undefined) {
      if (!required) return undefined
      throw new ERR_MCP_JUSTIFICATION_REQUIRED(ruleId, 'this client does not support elicitation, so Sluice cannot ask; give it as the query tool\'s `justification` argument')
    }
    const answer = await call.elicit(elicitationParams(ruleId, reason, required))
    const text = answer?.action === 'accept' ? answer.content?.[JUSTIFICATION_FIELD] : undefined
    if (typeof text === 'string' && text.trim() !== '') return text
    if (!required) return undefined
    const why = answer === undefined ? 'the elicitation got no answer (in time)' : answer.action === 'accept' ? 'the answer was empty' : `the user chose ${answer.action}`
    throw new ERR_MCP_JUSTIFICATION_REQUIRED(ruleId, `${why}; give it when asked, or as the query tool's \`justification\` argument`)
  }
}
