import type { GatewayConfig } from "../config/gateway.ts";
import type { LimitOutcome, LimitPolicy } from "./limit-policy.ts";

type WebSocketLimits = NonNullable<GatewayConfig["limits"]>["websocket"];

/**
 * WebSocket message limits, under the same limit policy as HTTP requests (shared/quota/limit-policy.ts):
 * a rate per connection (`conn:<connectionId>`) and per principal (`principal:<sub>`, over all of
 * its connections). A message costs one conditional write per configured limit. The connection is
 * checked first, so a noisy connection is refused without spending its principal's allowance; a
 * message the principal's limit refuses has still used one unit of its connection's rate. A table
 * too slow for the budget is a 503 (`ServiceUnavailableError`), never an uncounted message.
 */
export async function checkWebSocketMessage(
  policy: LimitPolicy,
  limits: WebSocketLimits,
  { connectionId, principal }: { connectionId: string; principal: string },
  budgetMs: number,
): Promise<LimitOutcome | undefined> {
  let last: LimitOutcome | undefined;
  const checks = [
    ["perConnection", `conn:${connectionId}`] as const,
    ["perPrincipal", `principal:${principal}`] as const,
  ];
  const deadline = performance.now() + budgetMs;
  for (const [kind, subject] of checks) {
    const rate = limits[kind];
    if (!rate) continue;
    const plan = { name: `ws-${kind}`, rate, shards: 1 };
    last = await policy.check(subject, plan, 1, deadline - performance.now());
    if (!last.admitted) return last;
  }
  return last;
}
