import type middy from "@middy/core";
import { createMemoryTier } from "../cache/memory.ts";
import { createResponseCache, type ResponseCache } from "../cache/response-cache.ts";
import type { LambdaClientSource } from "../clients/lambda.ts";
import { routeCachePolicy } from "../config/derive.ts";
import type { GatewayConfig } from "../config/gateway.ts";
import { MethodNotAllowedError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpHandler, HttpResult } from "../http.ts";
import { corsByRoute, routeCors } from "../middleware/cors.ts";
import { deprecation } from "../middleware/deprecation.ts";
import { httpHandler } from "../middleware/http-handler.ts";
import { requestBody } from "../middleware/request-body.ts";
import { requestMetrics } from "../middleware/request-metrics.ts";
import { responseCompression } from "../middleware/response-compression.ts";
import { responseSize } from "../middleware/response-size.ts";
import { responseTransform } from "../middleware/response-transform.ts";
import { usageLimits } from "../middleware/usage-limits.ts";
import { createLimitPolicy, type LimitPolicy } from "../quota/limit-policy.ts";
import type { Limiter } from "../quota/limiter.ts";
import { createLocalLimiter } from "../quota/local-limiter.ts";
import type { Metering } from "../quota/metering.ts";
import type { Limits } from "../quota/plans.ts";
import { METHODS } from "../routing/router.ts";
import { createUpstreamClient, type UpstreamClient } from "../upstream/http-client.ts";
import { createLambdaUpstreamClient } from "../upstream/lambda-client.ts";
import { cacheInvalidationStep, responseCacheStep } from "./cache-step.ts";
import { type CompiledRoute, compileGateway, type GatewayTable } from "./compile.ts";
import { type CallSettings, routeHandler } from "./proxy-call.ts";

/**
 * What the gateway function is given besides its config: everything that comes from the deployment
 * (handlers/http/gateway.ts reads the environment and builds these once per container).
 */
export interface GatewayDependencies {
  /** The usage limiter and metering, on the usage table: required when the config has `limits`. */
  limiter?: Limiter;
  metering?: Metering;
  /** Clock of the in-memory limits used while the usage table is unreachable (tests). */
  now?: () => number;
  /** The scheme clients reach the gateway by: `https` on API Gateway (the default), `http` locally. */
  proto?: "http" | "https";
  /**
   * The response cache (both tiers, made once per container): used by the routes that say `cache`.
   * Without it, such routes get a container-only cache from the stage's `cache.memory`.
   */
  cache?: ResponseCache;
  /** How `lambda` upstreams are invoked: required when the config has one. */
  lambda?: { functionPrefix: string; client: LambdaClientSource };
}

type Step = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

/**
 * The gateway function: every proxied and aggregate route of the config, and API Gateway's catch-all.
 * The config is compiled once into a route table (shared/gateway/compile.ts) and each route gets its
 * own Middy chain, holding only the steps it needs; a request goes to the chain of the route API
 * Gateway matched. On the catch-all the router only tells 404 from 405 and answers CORS preflights
 * (it never proxies there: that route has no authorizer).
 *
 * Example: `createGatewayHandler(loadGateway(definition, "dev"), { limiter, metering, lambda })`.
 */
export function createGatewayHandler(
  gateway: GatewayConfig,
  dependencies: GatewayDependencies = {},
): (event: HttpEvent, context: GatehouseContext) => Promise<HttpResult> {
  const table = compileGateway(gateway, { clients: upstreamClients(gateway, dependencies) });
  const settings: CallSettings = {
    versionHeader: table.versionHeader,
    compression: table.compression,
    trustedProxy: table.trustedProxy,
    proto: dependencies.proto ?? "https",
  };
  const usage = gateway.limits && usageWiring(gateway.limits, gateway.routes, dependencies);
  const caches = [...table.routes.values()].some((route) => route.cache);
  const cache =
    caches && (dependencies.cache ?? createResponseCache({ memory: createMemoryTier(gateway.cache.memory) }));
  const corsSteps = new Map(
    [...table.routes.values()].flatMap((route) =>
      route.cors ? [[route.key, routeCors(route.cors.rules, route.cors.methods)] as const] : [],
    ),
  );
  // A route's chain is built on its first request, not at the cold start: a new container serves one
  // route first, and building every route's chain up front was the largest part of the import.
  const chains = new Map<string, ReturnType<typeof routeChain>>();
  const chainOf = (route: CompiledRoute) => {
    let chain = chains.get(route.key);
    if (chain === undefined) {
      chain = routeChain(route, settings, {
        usage: route.limit ? usage : undefined,
        cors: corsSteps.get(route.key),
        cache:
          route.cache && cache
            ? responseCacheStep(route, route.cache, cache, table.versionHeader)
            : declaresCache(gateway, route.key)
              ? cacheOffStep
              : undefined,
        invalidation:
          route.invalidates.length > 0 && cache ? cacheInvalidationStep(route.invalidates, cache) : undefined,
      });
      chains.set(route.key, chain);
    }
    return chain;
  };
  const unmatched = unmatchedChain(table, corsSteps);
  return (event, context) => {
    const route = table.match(event.routeKey);
    return (route === undefined ? unmatched : chainOf(route))(event, context);
  };
}

/** Whether a route says `cache` on a stage that turns caching off (`cache.enabled: false`). */
const declaresCache = (gateway: GatewayConfig, key: string) =>
  !gateway.cache.enabled &&
  routeCachePolicy({ ...gateway, cache: { ...gateway.cache, enabled: true } }, key) !== undefined;

/** A cached route on a stage with caching off says so: `X-Cache: bypass`, as the config reference promises. */
const cacheOffStep: Step = {
  after: (request) => {
    if (request.response) request.response.headers["x-cache"] = "bypass";
  },
};

/** The upstream clients, one per upstream of the config, made once. */
function upstreamClients(
  gateway: GatewayConfig,
  { lambda }: GatewayDependencies,
): ReadonlyMap<string, UpstreamClient> {
  return new Map(
    Object.entries(gateway.upstreams).map(([name, upstream]) => {
      if (upstream.kind !== "lambda") return [name, createUpstreamClient({ name, ...upstream })];
      if (!lambda)
        throw new Error(
          `upstream ${name} invokes a function: give the gateway handler \`lambda: { functionPrefix, client }\``,
        );
      return [name, createLambdaUpstreamClient({ name, ...upstream, ...lambda })];
    }),
  );
}

/** What the usage steps of every limited route share: one limit policy, over the injected limiter, and the metering. */
interface UsageWiring {
  limits: Limits;
  routes: GatewayConfig["routes"];
  policy: LimitPolicy;
  metering: Metering;
}

function usageWiring(
  limits: Limits,
  routes: GatewayConfig["routes"],
  { limiter, metering, now }: GatewayDependencies,
): UsageWiring {
  if (!limiter || !metering)
    throw new Error(
      "The config has limits: give the gateway handler a `limiter` and `metering` on the usage table",
    );
  return {
    limits,
    routes,
    policy: createLimitPolicy({
      limiter,
      onStoreFailure: limits.onStoreFailure,
      what: "Usage limits",
      local: createLocalLimiter(now ? { now } : {}),
    }),
    metering,
  };
}

/** A route's chain: only the steps the route needs, in the gateway's one order. */
function routeChain(
  route: CompiledRoute,
  settings: CallSettings,
  {
    usage,
    cors,
    cache,
    invalidation,
  }: {
    usage: UsageWiring | undefined;
    cors: Step | undefined;
    cache: Step | undefined;
    invalidation: Step | undefined;
  },
): HttpHandler {
  const key = route.key;
  const routeKeyOf = () => key;
  const metrics = requestMetrics(routeKeyOf);
  // The check leaves the route's upstream attempts their time.
  const usageSteps = usage && usageLimits({ ...usage, routeKeyOf, reserveMs: () => route.reserveMs });
  const body = { rules: route.body, ...(route.validate ? { validate: route.validate } : {}) };
  return httpHandler(routeHandler(route, settings), {
    // The cache step after the usage check: a hit is still a counted, metered request.
    request: [
      metrics.start,
      ...(usageSteps ? [usageSteps.check] : []),
      ...(cache ? [cache] : []),
      // Its after side runs once the answer is final, and holds the invocation until the purge is done.
      ...(invalidation ? [invalidation] : []),
      requestBody(() => body),
    ],
    // Middy runs these in reverse: the mapping, compression of the final body, deprecation and CORS
    // headers, the size of the whole answer, then metering and metrics (so they see its 502).
    response: [
      metrics.publish,
      ...(usageSteps ? [usageSteps.meter] : []),
      responseSize(),
      ...(cors ? [cors] : []),
      ...(route.deprecated ? [deprecation(route.deprecated)] : []),
      ...(settings.compression ? [responseCompression(settings.compression)] : []),
      ...(route.plan.kind === "proxy" ? [responseTransform()] : []),
    ],
  });
}

/**
 * The catch-all's chain: a CORS preflight for a gateway route (API Gateway sends it here) gets that
 * route's CORS; anything else is 404, or 405 with the methods the path takes.
 */
function unmatchedChain(table: GatewayTable, corsSteps: ReadonlyMap<string, Step>) {
  /** The route a preflight asks about, by path and requested method. */
  const preflightKeyOf = (event: HttpEvent): string | undefined => {
    const requested = event.headers["access-control-request-method"];
    if (event.requestContext.http.method.toUpperCase() !== "OPTIONS" || !requested || !event.headers.origin)
      return;
    try {
      return table.route(requested.toUpperCase(), event.rawPath).value;
    } catch {
      return undefined;
    }
  };
  const metrics = requestMetrics(() => undefined);
  const unmatchedHandler: HttpHandler = async (event) => {
    const method = event.requestContext.http.method.toUpperCase();
    const preflight = preflightKeyOf(event);
    if (preflight && corsSteps.has(preflight)) return { statusCode: 204, headers: {} }; // the CORS step fills it in
    const match = table.route(method, event.rawPath); // throws 404, 405 or 400
    const declared = match.value.split(" ")[0] as string;
    const allowed = declared === "ANY" ? [...METHODS] : [declared];
    throw new MethodNotAllowedError(`${method} is not allowed on ${event.rawPath}`, allowed);
  };
  return httpHandler(unmatchedHandler, {
    request: [metrics.start],
    response: [
      metrics.publish,
      responseSize(),
      corsByRoute(corsSteps, preflightKeyOf),
      ...(table.compression ? [responseCompression(table.compression)] : []),
    ],
  });
}
