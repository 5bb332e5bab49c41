import { compileIpRules } from "../auth/ip-rules.ts";
import { type CacheKey, type CacheKeyRequest, compileCacheKey } from "../cache/key.ts";
import { type CachePolicy, routeCachePolicy, routeWorstCaseMs } from "../config/derive.ts";
import type { GatewayConfig, RouteConfig } from "../config/parse.ts";
import type { CorsRules } from "../middleware/cors.ts";
import { type BodyRules, type BodyValidator, lazyBodySchema } from "../middleware/request-body.ts";
import type { ResponseMap } from "../middleware/response-transform.ts";
import { effectiveLimit } from "../middleware/usage-limits.ts";
import {
  compileRouter,
  METHODS,
  type Method,
  type RouteMatch,
  routeKeyCandidates,
} from "../routing/router.ts";
import type { UpstreamClient } from "../upstream/http-client.ts";
import { compilePathRewrite } from "../upstream/rewrite.ts";
import { compileJmespath, type NameMap } from "../upstream/transform.ts";
import { type CompiledCall, compileAggregate } from "./aggregate.ts";

/**
 * The gateway config compiled once, at cold start, into named data: a route table the gateway
 * function builds its chains from (shared/gateway/gateway-handler.ts). Pure: the upstream clients
 * come in, nothing is read from the environment, nothing is sent. A route's body schema and JMESPath
 * expressions compile on the route's first use (a cold container serves one route first); the config
 * check (`loadGateway`, run by the tests and `npm run package`) has compiled each of them once.
 */

type ProxyConfig = NonNullable<RouteConfig["proxy"]>;
type AggregateConfig = NonNullable<RouteConfig["aggregate"]>;
type ProxyTargetConfig = ProxyConfig["versions"][string];
type RouteLimit = NonNullable<ReturnType<typeof effectiveLimit>>;
type Deprecation = NonNullable<RouteConfig["deprecated"]>;

/** One upstream a proxied request can go to, with its mappings compiled. */
export interface CompiledTarget {
  upstream: string;
  client: UpstreamClient;
  forwardAuthorization: boolean;
  maxResponseBytes: number;
  passHeaders: readonly string[];
  rewrite: ReturnType<typeof compilePathRewrite>;
  requestHeaders: NameMap | undefined;
  requestQuery: NameMap | undefined;
  requestBody: ((data: unknown) => unknown) | undefined;
  response: ResponseMap | undefined;
}

/** A proxied route: its default target, its versions (by the version header), its canary. */
export interface ProxyPlan {
  kind: "proxy";
  target: CompiledTarget;
  versions: ReadonlyMap<string, CompiledTarget>;
  canary: { target: CompiledTarget; weight: number; header: string | undefined } | undefined;
  /** Request headers the answer depends on (version, canary): caches must key on them. */
  varies: readonly string[];
}

/** An aggregate route: its calls, their merge, and what a failed call does. */
export interface AggregatePlan {
  kind: "aggregate";
  calls: readonly CompiledCall[];
  merge: ((data: unknown) => unknown) | undefined;
  onFailure: "fail" | "partial";
}

/** A cached route's policy and key derivation (docs/caching.md); the chain step uses both. */
export interface RouteCache {
  policy: CachePolicy;
  /** The headers the key holds: the route's own `key.headers` and the ones its plan varies on. */
  keyedHeaders: readonly string[];
  keyOf: (request: CacheKeyRequest) => CacheKey;
}

/** One cached route a write route purges after a 2XX. */
export interface CacheInvalidation {
  routeKey: string;
  params: readonly string[];
}

/** A route the gateway function answers, as the chain needs it. */
export interface CompiledRoute {
  /** The declared key, `METHOD /path` (the metrics' route dimension). */
  key: string;
  method: Method | "ANY";
  path: string;
  body: BodyRules;
  /** The body schema, compiled on the route's first body (the config check already compiled it once). */
  validate: BodyValidator | undefined;
  /** The route's limit (its own, else none): the usage step runs only where there is one. */
  limit: RouteLimit | undefined;
  /** Time the request still needs after the usage check: its upstream attempts' worst case, plus a second. */
  reserveMs: number;
  cors: { rules: CorsRules; methods: readonly string[] } | undefined;
  deprecated: Deprecation | undefined;
  /** How the route is cached; undefined when it is not (no `cache`, or caching is off for the stage). */
  cache: RouteCache | undefined;
  /**
   * The cached routes a write route's 2XX purges (`cache.invalidates`), each with the path parameters
   * the two routes share (the entries of those values are purged; none shared: the whole route).
   */
  invalidates: readonly CacheInvalidation[];
  plan: ProxyPlan | AggregatePlan;
}

/** The compiled gateway: its routes, how an event finds one, and the settings every proxy call shares. */
export interface GatewayTable {
  routes: ReadonlyMap<string, CompiledRoute>;
  /** The route API Gateway matched (`event.routeKey`), when the gateway function answers it. */
  match(routeKey: string): CompiledRoute | undefined;
  /** Every declared route by method and path: throws 404, 405 or 400 (the catch-all's answer). */
  route(method: string, path: string): RouteMatch<string>;
  versionHeader: string;
  compression: GatewayConfig["compression"];
  /** Whether a peer may set the forwarded headers (`trustedProxies`). */
  trustedProxy: (ip: string | undefined) => boolean;
}

/** What compiling needs besides the config: the upstream clients, by upstream name. */
export interface CompileDependencies {
  clients: ReadonlyMap<string, UpstreamClient>;
}

/**
 * The one place a route's kind is read: proxied, aggregate, or neither (a system route, answered by
 * the function it names). Everything after works on the plan.
 */
function kindOf(
  route: RouteConfig,
): { kind: "proxy"; proxy: ProxyConfig } | { kind: "aggregate"; aggregate: AggregateConfig } | undefined {
  if (route.kind === "proxy") return { kind: "proxy", proxy: route.proxy };
  if (route.kind === "aggregate") return { kind: "aggregate", aggregate: route.aggregate };
  return undefined;
}

/** Compiles the config into the gateway's route table. Example: `compileGateway(loadGateway(definition, "dev"), { clients })`. */
export function compileGateway(gateway: GatewayConfig, { clients }: CompileDependencies): GatewayTable {
  const clientOf = (key: string, upstream: string) => {
    const client = clients.get(upstream);
    if (!client) throw new Error(`route ${key}: no upstream ${upstream}`);
    return client;
  };
  const maxResponseBytesOf = (upstream: string) => gateway.upstreams[upstream]?.maxResponseBytes ?? 0;

  const compileTarget = (key: string, target: ProxyTargetConfig): CompiledTarget => {
    const { upstream, path, forwardAuthorization, request, response } = target;
    return {
      upstream,
      forwardAuthorization,
      client: clientOf(key, upstream),
      maxResponseBytes: maxResponseBytesOf(upstream),
      passHeaders: response?.passHeaders ?? [],
      rewrite: compilePathRewrite(path),
      requestHeaders: request?.headers,
      requestQuery: request?.query,
      requestBody: request?.body === undefined ? undefined : compileJmespath(request.body),
      response: response && {
        upstream,
        status: new Map(Object.entries(response.status).map(([from, to]) => [Number(from), to])),
        headers: response.headers,
        body: response.body === undefined ? undefined : compileJmespath(response.body),
      },
    };
  };

  const compilePlan = (key: string, route: RouteConfig): ProxyPlan | AggregatePlan | undefined => {
    const kind = kindOf(route);
    if (kind?.kind === "proxy") {
      const { proxy } = kind;
      const canary = proxy.canary && {
        target: compileTarget(key, proxy.canary),
        weight: proxy.canary.weight,
        header: proxy.canary.header,
      };
      const versions = new Map(
        Object.entries(proxy.versions).map(([version, target]) => [version, compileTarget(key, target)]),
      );
      return {
        kind: "proxy",
        target: compileTarget(key, proxy),
        versions,
        canary,
        varies: [
          ...(versions.size > 0 ? [gateway.versionHeader] : []),
          ...(canary?.header ? [canary.header] : []),
        ],
      };
    }
    if (kind?.kind === "aggregate") {
      const { aggregate } = kind;
      return {
        kind: "aggregate",
        calls: compileAggregate(aggregate.calls, (upstream) => clientOf(key, upstream), maxResponseBytesOf),
        merge: aggregate.merge === undefined ? undefined : compileJmespath(aggregate.merge),
        onFailure: aggregate.onFailure,
      };
    }
    return undefined;
  };

  const routes = new Map<string, CompiledRoute>();
  for (const [key, route] of Object.entries(gateway.routes)) {
    if (route.kind !== "proxy" && route.kind !== "aggregate") continue;
    const plan = compilePlan(key, route);
    if (!plan) continue;
    const [method, path] = key.split(" ") as [Method | "ANY", string];
    const body: BodyRules = route.body; // the config schema fills in the defaults
    const validate = body.schema ? lazyBodySchema(body.schema) : undefined;
    const corsRules = route.cors === false ? undefined : (route.cors ?? gateway.cors);
    routes.set(key, {
      key,
      method,
      path,
      body,
      validate,
      limit: gateway.limits ? effectiveLimit(route, key) : undefined,
      reserveMs: routeWorstCaseMs(gateway, route) + 1_000,
      cors: corsRules && { rules: corsRules, methods: method === "ANY" ? [...METHODS] : [method] },
      deprecated: route.deprecated,
      cache: compileRouteCache(gateway, key, plan),
      invalidates: compileInvalidations(gateway, key, route),
      plan,
    });
  }

  const router = compileRouter(
    Object.keys(gateway.routes).map((key) => {
      const [method, path] = key.split(" ") as [Method | "ANY", string];
      return { method, path, value: key };
    }),
  );
  const trustedRanges = compileIpRules({ allow: gateway.trustedProxies, deny: [] });
  return {
    routes,
    // The route API Gateway matched, as declared (exact first, then ANY): a declared route that is
    // not the gateway's (the preflight OPTIONS route beside an ANY route) is not the ANY route.
    match: (routeKey) => {
      const declared = routeKeyCandidates(routeKey).find((candidate) =>
        Object.hasOwn(gateway.routes, candidate),
      );
      return declared === undefined ? undefined : routes.get(declared);
    },
    route: router,
    versionHeader: gateway.versionHeader,
    compression: gateway.compression,
    trustedProxy: (ip) => gateway.trustedProxies.length > 0 && trustedRanges(ip).allowed,
  };
}

/** Path parameter names of a route key: `PUT /things/{id}/{rest+}` → `["id", "rest"]`. */
const pathParams = (routeKey: string) =>
  [...routeKey.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1] as string);

/** A write route's invalidations; none when the stage has caching off (there is nothing to purge). */
function compileInvalidations(gateway: GatewayConfig, key: string, route: RouteConfig): CacheInvalidation[] {
  const targets = route.cache && "invalidates" in route.cache ? (route.cache.invalidates ?? []) : [];
  if (!gateway.cache.enabled) return [];
  const own = new Set(pathParams(key));
  return targets.map((target) => ({
    routeKey: target,
    params: pathParams(target).filter((name) => own.has(name)),
  }));
}

/** A route's cache: its policy, and its key over the route's keyed headers plus the ones its plan varies on. */
function compileRouteCache(
  gateway: GatewayConfig,
  key: string,
  plan: ProxyPlan | AggregatePlan,
): RouteCache | undefined {
  const policy = routeCachePolicy(gateway, key);
  if (!policy) return undefined;
  const keyedHeaders = [...new Set([...policy.key.headers, ...(plan.kind === "proxy" ? plan.varies : [])])];
  return {
    policy,
    keyedHeaders,
    keyOf: compileCacheKey({
      routeKey: key,
      query: policy.key.query,
      headers: keyedHeaders,
      scope: policy.scope,
    }),
  };
}
