import type { GatewayConfig } from "../config/gateway.ts";
import type { LimitDecision, Limiter } from "./limiter.ts";

type WebSocketLimits = NonNullable<GatewayConfig["limits"]>["websocket"];

/**
 * WebSocket message limits, counted by the same limiter as HTTP requests: a rate per connection
 * (`conn:<connectionId>`) and per principal (`principal:<sub>`, over all of its connections). A
 * message costs one conditional write per configured limit. The connection is checked first, so a
 * noisy connection is refused without spending its principal's allowance; a message the principal's
 * limit refuses has still used one unit of its connection's rate.
 */
export async function checkWebSocketMessage(
  limiter: Limiter,
  limits: WebSocketLimits,
  { connectionId, principal }: { connectionId: string; principal: string },
  signal?: AbortSignal,
): Promise<LimitDecision | undefined> {
  let last: LimitDecision | undefined;
  const checks = [
    ["perConnection", `conn:${connectionId}`] as const,
    ["perPrincipal", `principal:${principal}`] as const,
  ];
  for (const [kind, subject] of checks) {
    const rate = limits[kind];
    if (!rate) continue;
    last = await limiter.check(subject, { name: `ws-${kind}`, rate, shards: 1 }, 1, signal);
    if (!last.admitted) return last;
  }
  return last;
}
