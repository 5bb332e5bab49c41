import type middy from "@middy/core";
import { optionalIdentity } from "../auth/identity.ts";
import { parseCacheControl } from "../cache/http-semantics.ts";
import type { ResponseCache } from "../cache/response-cache.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { recordCount } from "../middleware/request-metrics.ts";
import { logger } from "../observability/logger.ts";
import { MetricUnit, metrics } from "../observability/metrics.ts";
import type { CacheInvalidation, CompiledRoute, RouteCache } from "./compile.ts";
import { type CacheLookup, type ChosenTarget, targetChooser } from "./proxy-call.ts";

/** The scope that lets a caller's `Cache-Control: max-age=0` or `no-cache` refresh an entry. */
const CACHE_INVALIDATE_SCOPE = "cache:invalidate";

type Step = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

/** What the step's two sides share, on the Middy request. */
const stateOf = (request: { internal: object }) => request.internal as { cache?: CacheLookup };

/**
 * The cache step of a cached route (docs/caching.md), a request step after the usage check, so a hit
 * is still a counted and metered request. Before the handler it chooses the target (a version or a
 * canary side is part of the key), derives the key, and decides whether a client's refresh request is
 * honoured; the handler then serves through the cache (shared/gateway/proxy-call.ts). Middy's early
 * return would skip every response step (metering, CORS, security headers, the error mapper), so a
 * hit is answered by the handler, not from here. After the handler: `X-Cache: bypass` on an answer
 * that did not go through the cache, and a stale-while-revalidate refresh awaited, since Lambda
 * freezes the container once the invocation returns.
 *
 * Example: `responseCacheStep(route, route.cache, cache, "x-api-version")`.
 */
export function responseCacheStep(
  route: CompiledRoute,
  routeCache: RouteCache,
  cache: ResponseCache,
  versionHeader: string,
): Step {
  const plan = route.plan;
  const choose = plan.kind === "proxy" ? targetChooser(route.key, plan, versionHeader) : undefined;
  const serve: NonNullable<CacheLookup["serve"]> = (request) =>
    cache.serve({ ...request, policy: routeCache.policy, keyedHeaders: routeCache.keyedHeaders });

  const responseCacheBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const event = request.event;
    const identity = optionalIdentity(event);
    const chosen: ChosenTarget | undefined = choose?.(event, identity);
    const key = routeCache.keyOf({
      method: event.requestContext.http.method,
      pathParameters: event.pathParameters,
      rawQueryString: event.rawQueryString,
      headers: event.headers,
      identity,
      variant: chosen?.variant,
    });
    const directives = parseCacheControl(event.headers["cache-control"]);
    const asksRefresh = directives.has("no-cache") || directives.get("max-age") === "0";
    const lookup: CacheLookup = {
      chosen,
      key: key.cacheable ? key : undefined,
      // Anyone else's refresh request is ignored: it would let any caller empty the cache at will.
      revalidate: asksRefresh && (identity?.scopes.includes(CACHE_INVALIDATE_SCOPE) ?? false),
      serve,
    };
    stateOf(request).cache = lookup;
    request.context.cacheLookup = lookup;
    // 0 or 1 each, so a route's average is its rate. A keyed request is a miss until the handler
    // says otherwise (one that fails with nothing stale to serve stays one).
    const context = request.context;
    recordCount(context, "CacheHit", 0);
    recordCount(context, "CacheMiss", lookup.key ? 1 : 0);
    recordCount(context, "CacheStale", 0);
    recordCount(context, "CacheBypass", lookup.key ? 0 : 1);
    if (lookup.key) recordCount(context, "CacheTooLarge", 0);
  };

  const responseCacheAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const lookup = stateOf(request).cache;
    if (!lookup) return;
    stateOf(request).cache = undefined;
    const response = request.response;
    // Not cacheable: bypass. Keyed but failed with nothing stale to serve: the miss it was.
    if (response && response.headers["x-cache"] === undefined)
      response.headers["x-cache"] = lookup.key ? "miss" : "bypass";
    // The answer is built; the refresh never fails (a failed one leaves the stale entry in place).
    await lookup.served?.refresh;
  };

  return { before: responseCacheBefore, after: responseCacheAfter, onError: responseCacheAfter };
}

/**
 * The invalidation step of a write route that says `cache.invalidates`: after a 2XX, the entries of
 * each named route whose shared path parameters have this request's values are purged from this
 * container's tier and the table (a route sharing none is purged whole), before the invocation ends.
 * A purge that fails is logged and counted, never the write's failure: the write has happened.
 */
export function cacheInvalidationStep(invalidates: readonly CacheInvalidation[], cache: ResponseCache): Step {
  const cacheInvalidationAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (
    request,
  ) => {
    const status = request.response?.statusCode ?? 500;
    if (status < 200 || status >= 300) return;
    const values = request.event.pathParameters ?? {};
    await Promise.all(
      invalidates.map(async ({ routeKey, params }) => {
        // Encoded as the key encodes them (shared/cache/key.ts), so the purge matches stored entries.
        const wanted: Record<string, string> = {};
        for (const name of params) {
          const value = values[name];
          if (value !== undefined) wanted[name] = encodeURIComponent(value);
        }
        try {
          await cache.purge(routeKey, wanted);
        } catch (error) {
          logger.warn("cache purge after a write failed; entries live until their TTL", { routeKey, error });
          metrics.addMetric("CachePurgeFailed", MetricUnit.Count, 1);
        }
      }),
    );
  };
  return { after: cacheInvalidationAfter };
}
