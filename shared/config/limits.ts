import * as v from "valibot";
import { routeWorstCaseMs } from "./derive.ts";
import { type ConfigProblem, described, int } from "./fields.ts";
import type { GatewayConfig } from "./gateway.ts";
import { GATEWAY_BUDGET_MS } from "./upstreams.ts";

/** Limits: usage plans (rates, quotas, metering) and what each route counts against them. */

const planName = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,31}$/, "a plan name is lower-case letters, digits and -, such as free"),
);

const RateSchema = described(
  v.strictObject({
    perSecond: v.pipe(
      v.number(),
      v.minValue(0.001, "at least 0.001 (one a 1,000 seconds)"),
      v.maxValue(100_000, "at most 100,000"),
    ),
    burst: int(1, 1_000_000),
  }),
  "Requests (or messages) per second, with a burst: a fixed window of `burst / perSecond` seconds holds `burst` cost units.",
);

const PlanSchema = described(
  v.strictObject({
    rate: v.optional(RateSchema),
    quota: described(
      v.optional(
        v.strictObject({
          limit: int(1),
          period: v.picklist(["day", "week", "month"], "a quota period is day, week or month"),
        }),
      ),
      "Cost units per calendar window (UTC).",
    ),
    routes: described(
      v.optional(v.array(v.string())),
      "Route keys this plan may call; leave it out to allow every limited route.",
    ),
    shards: described(
      v.optional(int(1, 64), 1),
      "Counter shards, for subjects past DynamoDB's 1,000 writes/s per partition: each shard holds 1/shards of the limits. Never admits more than the limits; near exhaustion a request may be refused while another shard still has room.",
    ),
  }),
  "A usage plan, counted exactly in DynamoDB per subject.",
);

/**
 * API Gateway's own throttling for one route: it refuses with its own 429 before any function runs.
 */
export const ThrottleSchema = described(
  v.strictObject({
    rateLimit: v.pipe(v.number(), v.minValue(0, "at least 0"), v.maxValue(1_000_000, "at most 1,000,000")),
    burstLimit: int(0, 1_000_000),
  }),
  "API Gateway's throttling for this route on every stage (requests per second and burst, token bucket, per stage). Rough and best effort, per AWS; the exact per-caller limits are `limit`.",
);

export const RouteLimitSchema = v.strictObject({
  cost: described(v.optional(int(1, 10_000), 1), "Cost units one request uses."),
  subject: described(
    v.optional(v.picklist(["apiKey", "principal", "ip"], 'subject is "apiKey", "principal" or "ip"')),
    "Who is counted: `apiKey` (the key id), `principal`, or `ip` (the client address). The default follows the route's auth: the key on API-key routes, the principal on JWT routes, the IP on public ones.",
  ),
  plan: described(
    v.optional(planName),
    "The plan for this route's callers on a public route (default `limits.anonymousPlan`).",
  ),
});

export const LimitsSchema = described(
  v.optional(
    v.strictObject({
      plans: described(v.record(planName, PlanSchema), "Usage plans by name."),
      defaultPlan: described(
        v.optional(planName, "default"),
        "The plan of a caller whose plan is not in `plans`.",
      ),
      anonymousPlan: described(
        v.optional(planName, "anonymous"),
        "The plan of anonymous callers on public limited routes.",
      ),
      onStoreFailure: described(
        v.optional(v.picklist(["open", "closed"], 'onStoreFailure is "open" or "closed"'), "open"),
        "When the usage table is unreachable or failing (not when it is slow: see `timeoutMs`): `open` counts in each container's memory at the plan's own limits, so the worst case is containers × the plan per window (every such admission is the `LimiterDegradedAdmission` metric, and is booked into the table once it answers); `closed` answers 503.",
      ),
      timeoutMs: described(
        v.optional(int(20, 20_000), 10_000),
        "Most time one limit check may take (the conditional write, and the read after a refusal): a slow table is waited for, since a request can afford it. At run time the budget is also cut to what the invocation has left after the route's own upstream attempts. A table still not answering by then is refused with 503 and `Retry-After`, never admitted uncounted.",
      ),
      websocket: described(
        v.optional(
          v.strictObject({
            perConnection: v.optional(RateSchema),
            perPrincipal: v.optional(RateSchema),
          }),
          {},
        ),
        "WebSocket messages: a rate per connection and per principal (all their connections together).",
      ),
    }),
  ),
  "Usage plans: rate limits, quotas and metering, counted in the usage table.",
);

/** Route limits name plans that exist, fit the time budget and count a subject the route has; plans fit their routes. */
export function checkLimits(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const limits = config.limits;
  for (const [key, route] of Object.entries(config.routes)) {
    if (!route.limit) continue;
    if (route.auth === "public" && route.kind === "handler") {
      problems.push(
        `routes.${key}.limit: a public system route has no caller to count; remove limit and use throttle (API Gateway's) instead`,
      );
    }
    if (!limits) {
      problems.push(`routes.${key}.limit: needs a top-level limits section with plans; add limits.plans`);
      continue;
    }
    const slowest = routeWorstCaseMs(config, route);
    if (limits.timeoutMs + slowest >= GATEWAY_BUDGET_MS) {
      problems.push(
        `routes.${key}.limit: limits.timeoutMs (${limits.timeoutMs} ms) and the route's upstream attempts (${slowest} ms) pass the gateway's ${GATEWAY_BUDGET_MS / 1000} s; lower one of them`,
      );
    }
    const plans = route.auth === "public" ? [route.limit.plan ?? limits.anonymousPlan] : [limits.defaultPlan];
    for (const plan of plans) {
      if (!Object.hasOwn(limits.plans, plan)) {
        problems.push(
          `routes.${key}.limit: plan "${plan}" is not in limits.plans; add it (it is who gets no other plan)`,
        );
      }
    }
    if (route.auth === "public" && route.limit.subject && route.limit.subject !== "ip") {
      problems.push(`routes.${key}.limit.subject: a public route has no ${route.limit.subject}; use ip`);
    }
  }
  const costs = Object.values(config.routes).flatMap((route) => (route.limit ? [route.limit.cost] : []));
  const largest = Math.max(0, ...costs);
  for (const [name, plan] of Object.entries(limits?.plans ?? {})) {
    for (const key of plan.routes ?? []) {
      if (!config.routes[key]?.limit) {
        problems.push(
          `limits.plans.${name}.routes: "${key}" is not a limited route; give it a limit or remove it from the list`,
        );
      }
    }
    if (plan.rate && Math.ceil(plan.rate.burst / plan.shards) < largest) {
      problems.push(
        `limits.plans.${name}.rate.burst: below the largest route cost (${largest}) per shard; no such request could pass; raise the burst or lower shards`,
      );
    }
    if (plan.rate && plan.rate.burst / plan.rate.perSecond < 0.1) {
      problems.push(`limits.plans.${name}.rate: burst / perSecond is under 100 ms; raise the burst`);
    }
  }
  return problems;
}
