import { clientMessage } from '../policy/messages';
import type { PolicyDecision } from '../policy/decide';
import type { DecisionResponse } from './schemas';

/**
 * Renders a policy decision as the `POST /v1/decisions` response body (concentrators.md §8.3).
 *
 * Guarantees: `decision` is `allow` exactly when `decision.allow` is true and the reason is OK; the client message
 * is the bilingual, personal-data-free text of `clientMessage()`; `radius` carries `reply:Class = dec:<id>` (and
 * `reply:Session-Timeout` for a positive ttl) so RADIUS accounting can be tied back to the decision.
 */
export function toDecisionResponse(decision: PolicyDecision, decisionId: string): DecisionResponse {
  const allow = decision.allow === true && decision.reasonCode === 'OK';
  const radius: Record<string, string | number> = { 'reply:Class': `dec:${decisionId}` };
  if (allow && decision.ttlSeconds > 0) radius['reply:Session-Timeout'] = decision.ttlSeconds;
  return {
    decision: allow ? 'allow' : 'deny',
    decision_id: decisionId,
    device_id: decision.deviceId,
    reason_code: allow ? 'OK' : decision.reasonCode === 'OK' ? 'INTERNAL_ERROR' : decision.reasonCode,
    client_message: clientMessage(allow ? 'OK' : decision.reasonCode === 'OK' ? 'INTERNAL_ERROR' : decision.reasonCode, decisionId),
    ttl_seconds: allow ? decision.ttlSeconds : 0,
    policy_version: decision.policyVersion,
    radius,
  };
}
