import type middy from "@middy/core";
import { optionalIdentity } from "../auth/identity.ts";
import type { RouteConfig } from "../config/gateway.ts";
import { ForbiddenError, QuotaExceededError, RateLimitedError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { MetricUnit, metrics } from "../observability/metrics.ts";
import type { LimitDecision, Limiter } from "../quota/limiter.ts";
import type { Metering } from "../quota/metering.ts";
import { type Limits, planFor, subjectFor } from "../quota/plans.ts";
import { onStoreFailure } from "../quota/store-failure.ts";

/**
 * The usage step of the gateway chain (after route match, before the body checks):
 * - before the upstream call, one limiter check for the route's cost against the caller's plan: a
 *   refusal is 429 problem+json (`rate-limited` or `quota-exceeded`) with `Retry-After`; a plan that
 *   does not include the route is 403;
 * - on every answer of a limited route, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`;
 * - after the answer, one metering write (admitted with its status, or refused).
 *
 * If the usage table is slow or down, `limits.onStoreFailure` decides: `open` admits (a warning
 * and the `LimiterFailOpen` metric), `closed` answers 503. Counts are taken here, in the gateway
 * function, never in the authorizer, whose answers API Gateway caches.
 */

interface State {
  subject: string;
  route: string;
  cost: number;
  decision?: LimitDecision;
}
const states = new WeakMap<GatehouseContext, State>();

export interface UsageLimitsOptions {
  limits: Limits;
  routes: Readonly<Record<string, RouteConfig>>;
  routeKeyOf: (event: HttpEvent) => string | undefined;
  limiter: Limiter;
  metering: Metering;
}

export function usageLimits({ limits, routes, routeKeyOf, limiter, metering }: UsageLimitsOptions): {
  check: middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;
  meter: middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;
} {
  const usageLimitsBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const key = routeKeyOf(request.event);
    const route = key === undefined ? undefined : routes[key];
    if (!key || !route?.limit) return;
    const identity = optionalIdentity(request.event);
    const plan = planFor(limits, identity, route.limit);
    const allowed = limits.plans[plan.name]?.routes;
    if (allowed && !allowed.includes(key)) {
      throw new ForbiddenError(`The ${plan.name} plan does not include ${key}`);
    }
    const state: State = {
      subject: subjectFor(route, identity, request.event.requestContext.http.sourceIp),
      route: key,
      cost: route.limit.cost,
    };
    states.set(request.context, state);
    try {
      state.decision = await limiter.check(
        state.subject,
        plan,
        state.cost,
        AbortSignal.timeout(limits.timeoutMs),
      );
    } catch (error) {
      onStoreFailure(limits.onStoreFailure, error, "Usage limits", { route: key });
      return;
    }
    const { decision } = state;
    if (decision.admitted) return;
    const headers = { ...rateLimitHeaders(decision), "retry-after": String(decision.retryAfterSeconds ?? 1) };
    const Refusal = decision.reason === "rate" ? RateLimitedError : QuotaExceededError;
    throw new Refusal(
      decision.reason === "rate"
        ? `Rate limit of the ${plan.name} plan reached; retry in ${decision.retryAfterSeconds} s`
        : `Quota of the ${plan.name} plan used up; it resets in ${decision.retryAfterSeconds} s`,
      decision.retryAfterSeconds ?? 1,
      { headers, extensions: { plan: plan.name, limit: decision.reason } },
    );
  };

  const usageLimitsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const state = states.get(request.context);
    if (!state) return;
    states.delete(request.context);
    const response = request.response;
    if (response && state.decision) Object.assign(response.headers, rateLimitHeaders(state.decision));
    const admitted = state.decision?.admitted ?? true; // admitted by the fail-open policy too
    try {
      await metering.record(
        {
          subject: state.subject,
          route: state.route,
          cost: state.cost,
          status: response?.statusCode ?? 500,
          admitted,
        },
        AbortSignal.timeout(limits.timeoutMs),
      );
    } catch (error) {
      // The answer is ready: a lost metering write is logged and counted, never turned into an error.
      logger.warn("usage metering write failed", { route: state.route, error });
      metrics.addMetric("MeteringFailed", MetricUnit.Count, 1);
    }
  };
  // Two steps: the check is a request step; the metering is a response step registered after the
  // request metrics, so it runs before they are published (its own metrics land in the same record).
  return {
    check: { before: usageLimitsBefore },
    meter: { after: usageLimitsAfter, onError: usageLimitsAfter },
  };
}

/** `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds), as the IETF draft names them. */
export function rateLimitHeaders(decision: LimitDecision): Record<string, string> {
  return {
    "ratelimit-limit": String(decision.limit),
    "ratelimit-remaining": String(decision.remaining),
    "ratelimit-reset": String(decision.resetSeconds),
  };
}
