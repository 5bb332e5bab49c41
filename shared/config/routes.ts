import * as v from "valibot";
import { largestBody } from "../http.ts";
import { SECURITY_HEADER_NAMES } from "../middleware/security-headers.ts";
import { IpRulesSchema, RouteAuthSchema } from "./auth.ts";
import { RouteCacheSchema } from "./cache.ts";
import { upstreamWorstCaseMs } from "./derive.ts";
import { type ConfigProblem, described, headerName, int, strict } from "./fields.ts";
import type { GatewayConfig } from "./gateway.ts";
import { CorsSchema } from "./http.ts";
import { RouteLimitSchema, ThrottleSchema } from "./limits.ts";

/**
 * Routes: every route the HTTP API serves, keyed "METHOD /path". A route is one of three kinds, told
 * apart by the one member it has: `proxy` (sent on to an upstream), `aggregate` (several upstreams
 * merged) or `handler` (a system function). The parsed route carries `kind` so consumers can narrow;
 * the preflight OPTIONS routes the gateway adds have `kind: "preflight"`.
 */

/**
 * A JMESPath expression. Its syntax is checked by `loadGateway` (shared/config/expressions.ts), so a
 * typo fails the build, not a request; the functions parse it on its first use.
 */
const jmespath = (what: string) =>
  v.pipe(v.string(), v.minLength(1, `${what} is a JMESPath expression such as "{ id: id, name: name }"`));

/**
 * Headers a mapping may not touch: the gateway's own identity and forwarding headers, the caller's
 * credentials for the gateway (`forwardAuthorization` is the one way to pass `Authorization` on), the
 * content coding (the gateway negotiates it, so that `Content-Encoding` always describes the bytes),
 * CORS (the route's `cors` rules answer it), the trace context (each upstream attempt sends its
 * own), and hop-by-hop ones.
 */
const RESERVED_HEADER =
  /^(x-gatehouse-.*|x-forwarded-.*|forwarded|x-request-id|traceparent|tracestate|x-amzn-trace-id|authorization|x-api-key|host|content-length|content-encoding|accept-encoding|access-control-.*|connection|keep-alive|te|trailer|transfer-encoding|upgrade|proxy-.*)$/;
const mappableHeader = v.pipe(
  headerName,
  v.check(
    (name) => !RESERVED_HEADER.test(name),
    "this header is the gateway's own (identity, credentials, forwarding, request id, trace context, content coding, CORS or hop-by-hop) and cannot be mapped; remove it",
  ),
);
const queryName = v.pipe(
  v.string(),
  v.minLength(1, "a query parameter name is not empty"),
  v.maxLength(128, "a query parameter name is at most 128 characters"),
);
const HeaderMapSchema = described(
  v.strictObject({
    rename: v.optional(v.record(mappableHeader, mappableHeader), {}),
    remove: v.optional(v.array(mappableHeader), []),
    set: v.optional(v.record(mappableHeader, v.string()), {}),
  }),
  "Header mapping, applied in this order: rename, then remove, then set.",
);
const QueryMapSchema = described(
  v.strictObject({
    rename: v.optional(v.record(queryName, queryName), {}),
    remove: v.optional(v.array(queryName), []),
    set: v.optional(v.record(queryName, v.string()), {}),
  }),
  "Query mapping, applied in this order: rename, then remove, then set.",
);

/** A header `response.passHeaders` may list: one of the gateway's security headers, never CORS. */
const passableHeader = v.pipe(
  headerName,
  v.check(
    (name) => !name.startsWith("access-control-"),
    "CORS headers are always the gateway's, from the route's cors rules; an upstream's never pass; remove it",
  ),
  v.check(
    (name) => name.startsWith("access-control-") || SECURITY_HEADER_NAMES.includes(name),
    `only the gateway's own headers need listing (${SECURITY_HEADER_NAMES.join(", ")}); an upstream's other headers pass anyway, so remove it`,
  ),
);

const RequestMapSchema = v.strictObject({
  headers: v.optional(HeaderMapSchema),
  query: v.optional(QueryMapSchema),
  body: described(
    v.optional(jmespath("request.body")),
    "JMESPath over the (validated) JSON body; its result is the JSON body sent upstream. Parsed when the config is checked (the tests, `npm run package`); compiled on first use.",
  ),
});
const statusCode = v.pipe(
  v.number(),
  v.integer("a status code is a whole number"),
  v.minValue(200, "a status code from 200 to 599"),
  v.maxValue(599, "a status code from 200 to 599"),
);
const ResponseMapSchema = v.strictObject({
  status: described(
    v.optional(
      v.record(v.pipe(v.string(), v.regex(/^[1-5]\d\d$/, "a status code such as 404")), statusCode),
      {},
    ),
    'Upstream status → the status the client sees, e.g. `{ "404": 200 }`.',
  ),
  headers: v.optional(HeaderMapSchema),
  body: described(
    v.optional(jmespath("response.body")),
    "JMESPath over the upstream's JSON body, applied to 2XX answers only (errors keep their shape). Parsed when the config is checked (the tests, `npm run package`); compiled on first use.",
  ),
  passHeaders: described(
    v.optional(v.array(passableHeader), []),
    "The gateway's security headers this route takes from the upstream instead (say `cache-control` for a cacheable answer); the upstream's other headers pass anyway, its CORS headers never.",
  ),
});

const proxyTargetEntries = {
  upstream: described(v.string(), "A key of `upstreams`."),
  path: described(
    v.pipe(v.string(), v.regex(/^\//, "a proxy path starts with /, such as /users/{id}")),
    "The upstream path, with the route's parameters: `/api/users/{id}`.",
  ),
  forwardAuthorization: described(
    v.optional(v.boolean(), false),
    "Pass the caller's `Authorization` header on to the upstream.",
  ),
  request: described(
    v.optional(RequestMapSchema),
    "What the upstream receives: headers, query and body mapped from the client's.",
  ),
  response: described(
    v.optional(ResponseMapSchema),
    "What the client receives: status, headers and body mapped from the upstream's answer.",
  ),
};
const ProxyTargetSchema = v.strictObject(proxyTargetEntries);
const ProxySchema = v.strictObject({
  ...proxyTargetEntries,
  canary: described(
    v.optional(
      v.strictObject({
        ...proxyTargetEntries,
        weight: v.pipe(
          v.number(),
          v.minValue(0, "a canary weight is a percentage, 0 to 100"),
          v.maxValue(100, "a canary weight is a percentage, 0 to 100"),
        ),
        header: described(
          v.optional(headerName),
          "A request header that forces a side (`always` or `never`), for testing a canary before it has weight.",
        ),
      }),
    ),
    "A canary: this share of callers (by weight, in percent) goes to another target. Assignment is sticky per caller (the principal, else the client IP): the same caller always lands on the same side, and raising the weight only moves callers onto the canary.",
  ),
  versions: described(
    v.optional(
      v.record(
        v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,16}$/, "a version is a short token, such as 2")),
        ProxyTargetSchema,
      ),
      {},
    ),
    "Other versions of this route, chosen by the `versionHeader` (API Gateway cannot route on a header). A request without the header gets the default above.",
  ),
});

const callName = v.pipe(
  v.string(),
  v.regex(/^[a-z][A-Za-z0-9]{0,31}$/, "a call name is a short identifier such as user or orders"),
);
const AggregateSchema = v.strictObject({
  calls: described(
    v.pipe(
      v.record(
        callName,
        v.strictObject({
          upstream: described(v.string(), "A key of `upstreams`."),
          path: v.pipe(v.string(), v.regex(/^\//, "a call path starts with /, such as /users/{id}")),
          query: described(
            v.optional(v.record(queryName, v.string()), {}),
            "Query parameters; values may use the route's `{params}`.",
          ),
          required: described(
            v.optional(v.boolean(), false),
            "Under `partial`, a failure of this call still fails the request (under `fail`, every call is required).",
          ),
          timeoutMs: described(
            v.optional(int(50, 25_000)),
            "The whole call, retries included; past it the call fails with 504.",
          ),
        }),
      ),
      v.check((calls) => Object.keys(calls).length >= 1, "an aggregate makes at least one call; add one"),
    ),
    "The GET calls made in parallel, by name.",
  ),
  merge: described(
    v.optional(jmespath("aggregate.merge")),
    "JMESPath over `{ <call>: <body> }`; without it the client gets that object as it is. Parsed when the config is checked (the tests, `npm run package`); compiled on first use.",
  ),
  onFailure: described(
    v.optional(v.picklist(["fail", "partial"], 'onFailure is "fail" or "partial"'), "fail"),
    "`fail`: any failed call fails the request: 404 when an upstream answered 404, else 502, 503 (circuit open) or 504 (timeout); the other calls are cancelled. `partial`: answer 200 with what came; each failed call is null in the merge input, listed under `_errors` in the body, and `x-gatehouse-complete: false` is set. If a `required` call fails, or every call does, the request fails as under `fail`.",
  ),
});

const isoDate = v.pipe(v.string(), v.isoTimestamp("a time such as 2027-01-01T00:00:00Z"));
const DeprecationSchema = v.strictObject({
  since: described(isoDate, "When the route was deprecated (sent as `Deprecation`, RFC 9745)."),
  sunset: described(v.optional(isoDate), "When it will stop working (sent as `Sunset`, RFC 8594)."),
  link: described(
    v.optional(v.pipe(v.string(), v.url("a link is a URL such as https://docs.example.com/migrate"))),
    'Where to read about it (sent as `Link; rel="deprecation"`).',
  ),
});

/** Media types API Gateway passes as text; any other request body may arrive base64. */
const TEXT_BODY = /^(text\/[\w.+*-]+|application\/([\w.+-]+\+)?json)$/i;

const BodySchema = strict("body", {
  maxBytes: described(
    v.optional(
      v.pipe(
        int(1),
        v.maxValue(
          largestBody(false),
          `at most ${largestBody(false)}: the event that carries the body must fit Lambda's 6 MB`,
        ),
      ),
      1_048_576,
    ),
    `Largest request body in bytes. The body reaches the function inside API Gateway's event, which Lambda takes up to 6 MB: at most ${largestBody(true)} when a binary (base64) body is accepted, ${largestBody(false)} when only JSON or text is.`,
  ),
  contentTypes: described(
    v.optional(
      v.pipe(
        v.array(
          v.pipe(v.string(), v.regex(/^[\w.+*-]+\/[\w.+*-]+$/, "a media type such as application/json")),
        ),
        v.minLength(1, "list at least one media type, or */* for any"),
      ),
      ["application/json"],
    ),
    "Accepted media types; `*/*` accepts any.",
  ),
  schema: described(
    v.optional(v.record(v.string(), v.unknown())),
    "JSON Schema for a JSON body, checked when the config is checked (the tests, `npm run package`); compiled on the route's first body.",
  ),
});

const handlerKey = v.pipe(
  v.string(),
  v.regex(
    /^[a-z][A-Za-z0-9]{0,63}$/,
    "a handler is a function key under functions: in serverless.yml, such as usage",
  ),
);

/** A member a route of this kind may not have, refused with what to do instead. */
const not = (message: string) => v.optional(v.never(message));

const commonRouteEntries = {
  auth: RouteAuthSchema,
  cors: described(
    v.optional(v.union([CorsSchema, v.literal(false)], "cors is { origins, ... } or false")),
    "Browser access from other origins; `false` turns the global `cors` off for this route.",
  ),
  deprecated: described(
    v.optional(DeprecationSchema),
    "Marks the route deprecated: every response carries `Deprecation` (and `Sunset`, `Link`).",
  ),
  ipRules: described(
    v.optional(IpRulesSchema, { allow: [], deny: [] }),
    "Extra IP rules for this route, on top of the global ones.",
  ),
  limit: described(
    v.optional(v.union([RouteLimitSchema, v.literal(false)], "limit is { cost, subject, plan } or false")),
    "Count this route against the caller's plan (rate, quota, metering). Any route with an identity may be limited, and a proxied public route by client IP. `false` turns off a default limit (the HTTP→WebSocket bridge is limited unless it says `false`).",
  ),
  throttle: v.optional(ThrottleSchema),
};
const cacheEntry = described(
  v.optional(RouteCacheSchema),
  "Cache this route's answers (GET and HEAD routes), or, on a write route, purge the cached routes it changes. See docs/caching.md.",
);
/** Thresholds of the route's generated alarms (plugins/observability.mjs, docs/dashboards-and-alarms.md). */
const RouteAlarmsSchema = v.strictObject({
  latencyP99Ms: described(
    v.optional(int(1, 30_000)),
    "The route's p99 latency budget in ms: the latency alarm fires when p99 is over it in 2 of 3 periods of 5 min. Default: the longest the route's upstream calls can take (attempts × timeout, with backoffs); a route with no upstream call and no budget gets no latency alarm.",
  ),
  errorRate: described(
    v.optional(v.pipe(v.number(), v.minValue(0.001, "at least 0.001"), v.maxValue(1, "at most 1"))),
    "The share of 5XX answers (0.001 to 1) in 5 min, with at least 10 requests, that fires the route's 5XX alarm. Default 0.05.",
  ),
});
const alarmsEntry = described(
  v.optional(RouteAlarmsSchema),
  "Tunes the route's generated CloudWatch alarms (5XX rate, p99 latency over budget). See docs/dashboards-and-alarms.md.",
);
const bodyEntry = described(
  v.optional(BodySchema, {}),
  "What the route accepts as a request body (checked by the gateway function before anything is sent upstream).",
);

const proxyRouteEntries = {
  ...commonRouteEntries,
  body: bodyEntry,
  cache: cacheEntry,
  alarms: alarmsEntry,
  proxy: described(ProxySchema, "Send the request on to an upstream service."),
  aggregate: not("a route has proxy or aggregate, not both; remove one"),
  handler: not("a proxy route is answered by the gateway function; remove handler or proxy"),
};
const aggregateRouteEntries = {
  ...commonRouteEntries,
  body: bodyEntry,
  cache: cacheEntry,
  alarms: alarmsEntry,
  aggregate: described(AggregateSchema, "Answer from several upstreams at once (GET routes only)."),
  proxy: not("a route has proxy or aggregate, not both; remove one"),
  handler: not("an aggregate route is answered by the gateway function; remove handler or aggregate"),
};
const handlerRouteEntries = {
  ...commonRouteEntries,
  handler: described(
    handlerKey,
    "A system route: the serverless.yml function (its key under `functions`) that answers it, e.g. `usage`.",
  ),
  body: not(
    "a handler route's function reads its own request body; body rules apply to proxy and aggregate routes, so remove body",
  ),
  cache: not(
    "a handler route's function makes its own answer; the cache applies to proxy and aggregate routes, so remove cache",
  ),
  alarms: not(
    "a handler route is watched through its function's own metrics, not per route; alarms apply to proxy and aggregate routes, so remove alarms",
  ),
  proxy: not("a handler route is answered by its function; remove proxy or handler"),
  aggregate: not("a handler route is answered by its function; remove aggregate or handler"),
};

type RouteKind = "proxy" | "aggregate" | "handler";
const unknownMember = (what: string, entries: Record<string, unknown>) => (issue: v.BaseIssue<unknown>) =>
  issue.expected === "never"
    ? `${what} takes ${Object.keys(entries).join(", ")}; remove ${String(issue.input)}`
    : `${what} is an object`;
const routeVariant = <const TKind extends RouteKind, const TEntries extends v.ObjectEntries>(
  kind: TKind,
  entries: TEntries,
) => v.strictObject({ kind: v.literal(kind), ...entries }, unknownMember(`a ${kind} route`, entries));

/** What a route may say, per kind (for the JSON Schema; parsing adds `kind`). */
export const ROUTE_INPUT_SCHEMAS = {
  ProxyRoute: v.strictObject(proxyRouteEntries),
  AggregateRoute: v.strictObject(aggregateRouteEntries),
  HandlerRoute: v.strictObject(handlerRouteEntries),
};

const RouteVariantSchema = v.variant("kind", [
  routeVariant("proxy", proxyRouteEntries),
  routeVariant("aggregate", aggregateRouteEntries),
  routeVariant("handler", handlerRouteEntries),
]);
type RouteInputOf<T extends v.GenericSchema> = Omit<v.InferInput<T>, "kind">;
export type RouteInput =
  | RouteInputOf<(typeof ROUTE_INPUT_SCHEMAS)["ProxyRoute"]>
  | RouteInputOf<(typeof ROUTE_INPUT_SCHEMAS)["AggregateRoute"]>
  | RouteInputOf<(typeof ROUTE_INPUT_SCHEMAS)["HandlerRoute"]>;

const ROUTE_KINDS: readonly RouteKind[] = ["proxy", "aggregate", "handler"];

/** Any object, typed as a route as written; the pipe below decides its kind. */
export const RouteShape = v.custom<RouteInput>(
  (input) => typeof input === "object" && input !== null && !Array.isArray(input),
  'a route is an object such as { auth: "public", handler: "health" }',
);

const RouteSchema = v.pipe(
  RouteShape,
  v.description(
    "One of: a proxy route (`proxy`), an aggregate route (`aggregate`, GET only) or a system route (`handler`).",
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const route = dataset.value as Record<string, unknown>;
    const present = ROUTE_KINDS.filter((member) => route[member] !== undefined);
    const [kind] = present;
    if (present.length !== 1 || kind === undefined) {
      addIssue({
        message:
          present.length === 0
            ? 'says neither proxy, aggregate nor handler; add one: proxy: { upstream, path } sends it to an upstream, handler: "<function key>" names the system function that answers it'
            : `has both ${present.join(" and ")}; a route does one of proxy, aggregate or handler, so remove the others`,
      });
      return NEVER;
    }
    return { ...route, kind } as v.InferInput<typeof RouteVariantSchema>;
  }),
  RouteVariantSchema,
);

/** The public OPTIONS route the gateway adds beside an `ANY` route behind an authorizer (see preflightRoutes). */
const PreflightRouteSchema = v.strictObject({
  kind: v.literal("preflight"),
  auth: v.literal("public"),
  ipRules: v.optional(IpRulesSchema, { allow: [], deny: [] }),
  cors: v.optional(v.never()),
  deprecated: v.optional(v.never()),
  limit: v.optional(v.never()),
  throttle: v.optional(v.never()),
  body: v.optional(v.never()),
  cache: v.optional(v.never()),
  alarms: v.optional(v.never()),
  proxy: v.optional(v.never()),
  aggregate: v.optional(v.never()),
  handler: v.optional(v.never()),
});

const routeKey = v.pipe(
  v.string(),
  v.regex(
    /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) \/[A-Za-z0-9_.~{}+/-]*$/,
    'a route key is "METHOD /path", e.g. "GET /things/{id}"; the method is upper case, the path starts with /',
  ),
);

export const RoutesSchema = described(
  v.record(routeKey, RouteSchema),
  'Every route of the HTTP API, keyed "METHOD /path" (API Gateway\'s route key; `{name}` and a last `{name+}` are parameters).',
);

export type RouteConfig =
  | v.InferOutput<typeof RouteVariantSchema>
  | v.InferOutput<typeof PreflightRouteSchema>;

const paramsOf = (template: string) =>
  [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\+?\}/g)].map((m) => m[1] as string);

/** Routes name upstreams that exist and parameters they have; bodies fit Lambda; aggregates answer GET. */
export function checkRoutes(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const checkUpstream = (where: string, name: string) => {
    if (!config.upstreams[name]) {
      const known = Object.keys(config.upstreams).join(", ") || "none declared";
      problems.push(
        `${where}.upstream: "${name}" is not in upstreams (${known}); declare it or fix the name`,
      );
    }
  };
  const checkParams = (where: string, template: string, routeParams: Set<string>) => {
    for (const param of paramsOf(template)) {
      if (!routeParams.has(param)) {
        problems.push(`${where}: {${param}} is not a parameter of the route; use one of the route key's`);
      }
    }
  };
  for (const [key, route] of Object.entries(config.routes)) {
    const routeParams = new Set(paramsOf(key));
    if (
      (route.kind === "proxy" || route.kind === "aggregate") &&
      !route.body.contentTypes.every((type) => TEXT_BODY.test(type)) &&
      route.body.maxBytes > largestBody(true)
    ) {
      problems.push(
        `routes.${key}.body.maxBytes: at most ${largestBody(true)} when the route accepts ${route.body.contentTypes.join(", ")}: a binary body arrives base64 (4 bytes per 3) in an event Lambda takes up to 6 MB`,
      );
    }
    if (route.kind === "proxy") {
      const targets = [
        [`routes.${key}.proxy`, route.proxy] as const,
        ...Object.entries(route.proxy.versions).map(
          ([version, target]) => [`routes.${key}.proxy.versions.${version}`, target] as const,
        ),
        ...(route.proxy.canary ? [[`routes.${key}.proxy.canary`, route.proxy.canary] as const] : []),
      ];
      for (const [where, target] of targets) {
        checkUpstream(where, target.upstream);
        checkParams(`${where}.path`, target.path, routeParams);
      }
    }
    if (route.kind === "aggregate") {
      if (!key.startsWith("GET ")) {
        problems.push(
          `routes.${key}.aggregate: an aggregate route answers GET (its calls are GETs); make the route GET or use proxy`,
        );
      }
      for (const [name, call] of Object.entries(route.aggregate.calls)) {
        const where = `routes.${key}.aggregate.calls.${name}`;
        checkUpstream(where, call.upstream);
        checkParams(`${where}.path`, call.path, routeParams);
        for (const [param, template] of Object.entries(call.query)) {
          checkParams(`${where}.query.${param}`, template, routeParams);
        }
        const upstream = config.upstreams[call.upstream];
        if (upstream && call.timeoutMs !== undefined && call.timeoutMs > upstreamWorstCaseMs(upstream)) {
          problems.push(
            `${where}.timeoutMs: longer than every attempt of ${call.upstream} together; lower it or leave it out`,
          );
        }
      }
    }
  }
  return problems;
}

/**
 * A browser's preflight (`OPTIONS`, no credentials) must reach the gateway's CORS answer. On API
 * Gateway an `ANY` route also matches `OPTIONS`, so behind an authorizer the preflight would get
 * API Gateway's own 401 with no CORS headers. For every such route that browsers may call (it has
 * CORS) a public `OPTIONS` route on the same path is added, unless the config declares one; a route
 * with an explicit method needs none (its preflight falls through to the catch-all, which has no
 * authorizer). serverless.yml deploys these like any other route; the gateway function answers them.
 */
function preflightRoutes(config: Pick<GatewayConfig, "routes" | "cors">): string[] {
  return Object.entries(config.routes).flatMap(([key, route]) => {
    const [method, path] = key.split(" ") as [string, string];
    const browserCallable = route.cors === false ? false : (route.cors ?? config.cors) !== undefined;
    const preflight = `OPTIONS ${path}`;
    if (
      method !== "ANY" ||
      route.auth === "public" ||
      !browserCallable ||
      Object.hasOwn(config.routes, preflight)
    )
      return [];
    return [preflight];
  });
}

/** The config with its preflight routes added (`kind: "preflight"`). */
export function withPreflightRoutes(config: GatewayConfig): GatewayConfig {
  const added = preflightRoutes(config);
  if (added.length === 0) return config;
  const route = v.parse(PreflightRouteSchema, { kind: "preflight", auth: "public" });
  return { ...config, routes: { ...config.routes, ...Object.fromEntries(added.map((key) => [key, route])) } };
}
