import type middy from "@middy/core";
import { optionalIdentity } from "../auth/identity.ts";
import type { GatewayConfig, RouteConfig } from "../config/gateway.ts";
import { ForbiddenError, QuotaExceededError, RateLimitedError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { countEvent } from "../observability/metrics.ts";
import {
  createLimitPolicy,
  type LimitOutcome,
  type LimitPolicy,
  rateLimitHeaders,
} from "../quota/limit-policy.ts";
import type { Limiter } from "../quota/limiter.ts";
import type { Metering } from "../quota/metering.ts";
import { declaredPlan, type Limits, planFor, subjectFor } from "../quota/plans.ts";

/**
 * The usage step of an HTTP chain (after route match, before the body checks), for every limited
 * route: gateway routes, the HTTP→WebSocket bridge and system routes alike.
 * - before the handler, one limit check for the route's cost against the caller's plan, under the
 *   one limit policy (shared/quota/limit-policy.ts): a refusal is 429 problem+json (`rate-limited`
 *   or `quota-exceeded`) with `Retry-After`; a plan that does not include the route is 403; a table
 *   too slow to answer in the budget is 503 (never an uncounted admission);
 * - on every answer of a limited route that was decided, `RateLimit-Limit`, `-Remaining`, `-Reset`;
 * - after the answer, one metering write (admitted with its status, or refused by a limit). A
 *   metering write that fails is kept and retried with the next one (shared/quota/metering.ts).
 *
 * Counts are taken here, in the function, never in the authorizer, whose answers API Gateway caches.
 */

type RouteLimit = Exclude<NonNullable<RouteConfig["limit"]>, false>;
type Step = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

/** What the check hands to the metering step, on the Middy request. */
interface UsageState {
  subject: string;
  route: string;
  cost: number;
  outcome?: LimitOutcome;
}
const stateOf = (request: { internal: object }) => request.internal as { usage?: UsageState };

export interface UsageLimitsOptions {
  limits: Limits;
  routes: Readonly<Record<string, RouteConfig>>;
  routeKeyOf: (event: HttpEvent) => string | undefined;
  policy: LimitPolicy;
  metering: Metering;
  /** The limit of a route the config leaves unlimited (the bridge is limited by default). */
  defaultLimit?: (routeKey: string) => RouteLimit | undefined;
  /**
   * Time the request still needs after the check (its upstream attempts): the check's budget is
   * `limits.timeoutMs`, or less when the invocation's time left minus this is less.
   */
  reserveMs?: (routeKey: string) => number;
}

/** The limit that applies to a route: its own, else the default, none when it says `false`. */
export function effectiveLimit(
  route: RouteConfig | undefined,
  key: string,
  defaultLimit?: (routeKey: string) => RouteLimit | undefined,
): RouteLimit | undefined {
  if (!route || route.limit === false) return undefined;
  return route.limit ?? defaultLimit?.(key);
}

export function usageLimits({
  limits,
  routes,
  routeKeyOf,
  policy,
  metering,
  defaultLimit,
  reserveMs = () => 0,
}: UsageLimitsOptions): { check: Step; meter: Step } {
  const usageLimitsBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const key = routeKeyOf(request.event);
    if (!key) return;
    const route = Object.hasOwn(routes, key) ? routes[key] : undefined;
    const limit = effectiveLimit(route, key, defaultLimit);
    if (!route || !limit) return;
    const identity = optionalIdentity(request.event);
    const plan = planFor(limits, identity, limit);
    const allowed = declaredPlan(limits, plan.name)?.routes;
    if (allowed && !allowed.includes(key)) {
      throw new ForbiddenError(`The ${plan.name} plan does not include ${key}`);
    }
    const state: UsageState = {
      subject: subjectFor(route, limit, identity, request.event.requestContext.http.sourceIp),
      route: key,
      cost: limit.cost,
    };
    stateOf(request).usage = state;
    const left = request.context.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    const budgetMs = Math.min(limits.timeoutMs, left - reserveMs(key));
    const outcome = await policy.check(state.subject, plan, state.cost, budgetMs);
    state.outcome = outcome;
    if (outcome.admitted) return;
    const headers = { ...rateLimitHeaders(outcome), "retry-after": String(outcome.retryAfterSeconds ?? 1) };
    const Refusal = outcome.reason === "quota" ? QuotaExceededError : RateLimitedError;
    throw new Refusal(
      outcome.reason === "quota"
        ? `Quota of the ${plan.name} plan used up; it resets in ${outcome.retryAfterSeconds} s`
        : `Rate limit of the ${plan.name} plan reached; retry in ${outcome.retryAfterSeconds} s`,
      outcome.retryAfterSeconds ?? 1,
      { headers, extensions: { plan: plan.name, limit: outcome.reason } },
    );
  };

  const usageLimitsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const state = stateOf(request).usage;
    // Nothing to meter when the check itself could not decide (503): nothing was admitted or refused.
    if (!state?.outcome) return;
    stateOf(request).usage = undefined;
    const response = request.response;
    if (response) Object.assign(response.headers, rateLimitHeaders(state.outcome));
    const left = request.context.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    try {
      await metering.record(
        {
          subject: state.subject,
          route: state.route,
          cost: state.cost,
          status: response?.statusCode ?? 500,
          admitted: state.outcome.admitted,
        },
        AbortSignal.timeout(Math.max(1, Math.floor(Math.min(limits.timeoutMs, left - 500)))),
      );
    } catch (error) {
      // The answer is ready: a metering write that failed is kept for the next one, never an error.
      logger.warn("usage metering write failed; kept to retry", { route: state.route, error });
      // Published at once: the bridge's function publishes no request record of its own.
      countEvent("MeteringFailed");
    }
  };
  // Two steps: the check is a request step; the metering is a response step registered after the
  // request metrics, so it runs before they are published.
  return {
    check: { before: usageLimitsBefore },
    meter: { after: usageLimitsAfter, onError: usageLimitsAfter },
  };
}

/** Usage steps of a system function (the bridge, usage, admin): none when the config has no limits. */
export function routeLimitSteps({
  gateway,
  limiter,
  metering,
  defaultLimit,
  reserveMs,
}: {
  gateway: Pick<GatewayConfig, "limits" | "routes">;
  limiter: Limiter;
  metering: Metering;
  defaultLimit?: UsageLimitsOptions["defaultLimit"];
  reserveMs?: UsageLimitsOptions["reserveMs"];
}): { request: Step[]; response: Step[] } {
  const limits = gateway.limits;
  if (!limits) return { request: [], response: [] };
  const steps = usageLimits({
    limits,
    routes: gateway.routes,
    // A system route's key is exactly its declared key.
    routeKeyOf: (event) => event.routeKey,
    policy: createLimitPolicy({ limiter, onStoreFailure: limits.onStoreFailure, what: "Usage limits" }),
    metering,
    ...(defaultLimit ? { defaultLimit } : {}),
    ...(reserveMs ? { reserveMs } : {}),
  });
  return { request: [steps.check], response: [steps.meter] };
}
