import type { Identity } from "../auth/identity.ts";
import type { GatewayConfig, RouteConfig } from "../config/gateway.ts";
import type { PlanLimits } from "./limiter.ts";

export type Limits = NonNullable<GatewayConfig["limits"]>;
type PlanConfig = Limits["plans"][string];
type RouteLimit = Exclude<NonNullable<RouteConfig["limit"]>, false>;

/**
 * A declared plan by name: own entries of `limits.plans` only, so a caller whose plan is
 * `constructor`, `__proto__` or `toString` finds no plan rather than `Object.prototype`'s members.
 */
export function declaredPlan(limits: Limits, name: string): PlanConfig | undefined {
  return Object.hasOwn(limits.plans, name) ? limits.plans[name] : undefined;
}

/** The names of the declared plans, in the config's order (for messages that list them). */
export function declaredPlanNames(limits: Limits): string[] {
  return Object.keys(limits.plans);
}

/** The plan a caller is counted against: its own if the config declares it, else the default one. */
export function planFor(
  limits: Limits,
  identity: Identity | undefined,
  limit: RouteLimit | undefined,
): PlanLimits {
  const name = identity
    ? declaredPlan(limits, identity.plan)
      ? identity.plan
      : limits.defaultPlan
    : (limit?.plan ?? limits.anonymousPlan);
  const plan = declaredPlan(limits, name);
  // loadGateway checks that every route's fallback plan exists; this is the last line of defence.
  if (!plan) throw new Error(`limits.plans has no plan "${name}"`);
  return { name, rate: plan.rate, quota: plan.quota, shards: plan.shards };
}

/**
 * Who is counted: the API key (`key:<keyId>`), the principal (`principal:<sub>`) or the client IP
 * (`ip:<address>`). By default it follows the route's auth.
 */
export function subjectFor(
  route: Pick<RouteConfig, "auth">,
  limit: RouteLimit,
  identity: Identity | undefined,
  sourceIp: string | undefined,
): string {
  const kind =
    limit.subject ?? (route.auth === "public" ? "ip" : "apiKey" in route.auth ? "apiKey" : "principal");
  if (kind === "apiKey" && identity?.keyId) return `key:${identity.keyId}`;
  if ((kind === "apiKey" || kind === "principal") && identity) return `principal:${identity.principal}`;
  return `ip:${sourceIp ?? "unknown"}`;
}
