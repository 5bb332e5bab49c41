import { RETRY_BACKOFF } from "../upstream/retry-backoff.ts";
import type { CacheScope } from "./cache.ts";
import type { GatewayConfig } from "./gateway.ts";
import type { RouteConfig } from "./routes.ts";

/**
 * What the functions work out from the checked config at run time, in a module without the schema:
 * a function's bundle gets the config checked (shared/config/checked.ts), and importing any module
 * that declares a schema would build that schema at every cold start.
 */

/** The methods a route may cache. */
export const CACHEABLE_METHODS = new Set(["GET", "HEAD"]);

/** The method of a route key: `GET /things/{id}` → `GET`. */
export const methodOf = (routeKey: string) => routeKey.slice(0, routeKey.indexOf(" "));

/** How one route is cached, every default filled in. */
export interface CachePolicy {
  ttlSeconds: number;
  statuses: readonly number[];
  respectUpstreamCacheControl: boolean;
  staleWhileRevalidateSeconds: number;
  staleIfErrorSeconds: number;
  scope: CacheScope;
  key: { query: readonly string[]; headers: readonly string[] };
}

/**
 * The cache policy of a route: undefined when it is not cached (no `cache`, not GET or HEAD, or
 * caching is off for the stage). Example: `routeCachePolicy(config, "GET /things/{id}")?.ttlSeconds`.
 */
export function routeCachePolicy(
  config: Pick<GatewayConfig, "cache" | "routes">,
  routeKey: string,
): CachePolicy | undefined {
  const route = config.routes[routeKey];
  if (!config.cache.enabled || !route || !("cache" in route) || !route.cache) return undefined;
  if (!CACHEABLE_METHODS.has(methodOf(routeKey))) return undefined;
  const { cache } = route;
  const defaults = config.cache.defaults;
  return {
    ttlSeconds: cache.ttlSeconds ?? defaults.ttlSeconds,
    statuses: cache.statuses ?? defaults.statuses,
    respectUpstreamCacheControl: cache.respectUpstreamCacheControl ?? defaults.respectUpstreamCacheControl,
    staleWhileRevalidateSeconds: cache.staleWhileRevalidateSeconds ?? defaults.staleWhileRevalidateSeconds,
    staleIfErrorSeconds: cache.staleIfErrorSeconds ?? defaults.staleIfErrorSeconds,
    scope: cache.scope ?? (route.auth === "public" ? "public" : "principal"),
    key: cache.key,
  };
}

/**
 * The longest one upstream call can take: every attempt at its timeout, plus the backoff between
 * attempts (each at most `RETRY_BACKOFF.maxDelayMs`). The one formula: the config checks, the
 * gateway's limit budget and the aggregate calls all ask it. Example: `upstreamWorstCaseMs({ timeoutMs: 2_000, retries: 2 })` is 7,000.
 */
export function upstreamWorstCaseMs(upstream: { timeoutMs: number; retries: number } | undefined): number {
  if (!upstream) return 0;
  return upstream.timeoutMs * (upstream.retries + 1) + upstream.retries * RETRY_BACKOFF.maxDelayMs;
}

/** The upstreams a route calls (its proxy targets, versions and canary, or its aggregate calls). */
function routeUpstreams(route: RouteConfig): string[] {
  switch (route.kind) {
    case "proxy": {
      const { proxy } = route;
      return [
        proxy.upstream,
        ...Object.values(proxy.versions).map((target) => target.upstream),
        ...(proxy.canary ? [proxy.canary.upstream] : []),
      ];
    }
    case "aggregate":
      return Object.values(route.aggregate.calls).map((call) => call.upstream);
    default:
      return [];
  }
}

/** The longest a route's upstream calls can take (0 for a route that calls none). */
export function routeWorstCaseMs(config: Pick<GatewayConfig, "upstreams">, route: RouteConfig): number {
  return Math.max(0, ...routeUpstreams(route).map((name) => upstreamWorstCaseMs(config.upstreams[name])));
}
