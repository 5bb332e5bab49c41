import * as v from "valibot";
import { AuthSchema, checkAuth, IpRulesSchema } from "./auth.ts";
import { CacheSchema, checkCache } from "./cache.ts";
import type { GatewayDefinition } from "./define.ts";
import { type ConfigProblem, described, strict } from "./fields.ts";
import { httpEntries } from "./http.ts";
import { checkLimits, LimitsSchema } from "./limits.ts";
import { checkRoutes, RoutesSchema, withPreflightRoutes } from "./routes.ts";
import { checkUpstreams, UpstreamsSchema } from "./upstreams.ts";
import { WebSocketSchema } from "./websocket.ts";

/**
 * The gateway config: one typed module (`gateway.config.ts`) that says who may call which route.
 * It is validated when the project builds (the tests, the CLIs and `npm run package` load it with
 * `loadGateway`), and a function gets the checked result at cold start (./checked.ts). An error names
 * the field's path and how to fix it. Each concern (auth, http,
 * upstreams, routes, limits, cache, websocket) owns its schema and its cross-field checks; this module
 * puts them together. docs/configuration.md is generated from the schema (`npm run config:docs`).
 */

import type { RouteConfig } from "./routes.ts";

export { defineGateway, type GatewayDefinition } from "./define.ts";
export { routeWorstCaseMs, upstreamWorstCaseMs } from "./derive.ts";
export type { RouteConfig, RouteInput } from "./routes.ts";
export type { ConnectConfig } from "./websocket.ts";

export const GatewayConfigSchema = strict("the gateway config", {
  auth: described(AuthSchema, "Who a caller is: JWT issuers, API keys, the admin scope."),
  ipRules: described(
    v.optional(IpRulesSchema, { allow: [], deny: [] }),
    "IP allow and deny lists for every route and `$connect` (a route's own rules add to them).",
  ),
  ...httpEntries,
  upstreams: UpstreamsSchema,
  routes: RoutesSchema,
  limits: LimitsSchema,
  cache: CacheSchema,
  websocket: WebSocketSchema,
});

type ParsedConfig = v.InferOutput<typeof GatewayConfigSchema>;
/** The loaded config: the parsed one, with the preflight routes loadGateway adds. */
export type GatewayConfig = Omit<ParsedConfig, "routes"> & { routes: Record<string, RouteConfig> };
export type GatewayConfigInput = v.InferInput<typeof GatewayConfigSchema>;
export type IssuerConfig = GatewayConfig["auth"]["issuers"][number];
export type RouteAuth = RouteConfig["auth"];
export type IpRules = GatewayConfig["ipRules"];

/**
 * The cross-field checks, one per concern; each runs once every field has the right shape. `says` is
 * what the JSON Schema cannot express (docs/configuration.md lists it).
 */
export const CONFIG_CHECKS: ReadonlyArray<{
  concern: string;
  says: string;
  check: (config: GatewayConfig) => ConfigProblem[];
}> = [
  {
    concern: "auth",
    says: "issuer ids are unique; a route or `$connect` that asks for a JWT needs an issuer",
    check: checkAuth,
  },
  {
    concern: "routes",
    says: "proxy and aggregate calls name declared upstreams and only the route's `{params}`; an aggregate route is GET; an aggregate call's timeoutMs fits its upstream's attempts; a body that may be binary fits Lambda's 6 MB in base64",
    check: checkRoutes,
  },
  {
    concern: "limits",
    says: "a limited route has limits.plans, its plan exists, its subject exists on the route, and `limits.timeoutMs` plus its upstream attempts fit the gateway's 28 s; a public handler route is not limited; a plan's routes are limited routes, its burst per shard covers the largest route cost and lasts at least 100 ms",
    check: checkLimits,
  },
  {
    concern: "cache",
    says: 'only GET and HEAD routes cache (an ANY route is refused); a write route\'s cache says only `invalidates`, naming cached routes; `scope: "public"` behind an authorizer needs `sameForEveryCaller: true`; `tenant` and `principal` need an authorizer; a cache stores something (a TTL or a stale-if-error window); the `{params}` of a tag are path parameters of its route, each followed by a separator or the end of the tag',
    check: checkCache,
  },
  {
    concern: "upstreams",
    says: "every attempt of an upstream with the backoff between them fits the gateway's 28 s",
    check: checkUpstreams,
  },
];

export class GatewayConfigError extends Error {
  override readonly name = "GatewayConfigError";
  constructor(
    readonly stage: string,
    readonly problems: string[],
  ) {
    super(
      `gateway.config.ts is invalid for stage "${stage}":\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
  }
}

/** Parses and checks a definition; `compiled` adds the problems of compiling its expressions and schemas. */
export function parseGateway(
  definition: GatewayDefinition,
  stage: string,
  compiled?: (input: unknown) => ConfigProblem[],
): GatewayConfig {
  const input = definition({ stage });
  const result = v.safeParse(GatewayConfigSchema, input, { abortEarly: false });
  // Like a shape problem: reported with them, before the cross-field checks.
  const expressions = compiled?.(input) ?? [];
  if (!result.success) {
    throw new GatewayConfigError(stage, [
      ...result.issues.map((issue) => {
        const path = v.getDotPath(issue) ?? "(root)";
        // A missing member: say so plainly rather than valibot's "Invalid key: Expected …".
        if (issue.kind === "schema" && issue.input === undefined && issue.type !== "never") {
          return `${path}: is required; add it (docs/configuration.md describes it)`;
        }
        // valibot's own wording for a wrong type ("Invalid type: Expected …"): say what to write.
        if (issue.kind === "schema" && issue.message.startsWith("Invalid type:")) {
          return `${path}: must be ${issue.expected}, not ${issue.received}; change the value`;
        }
        return `${path}: ${issue.message}`;
      }),
      ...expressions,
    ]);
  }
  if (expressions.length > 0) throw new GatewayConfigError(stage, expressions);
  const config: GatewayConfig = result.output;
  const problems = CONFIG_CHECKS.flatMap(({ check }) => check(config));
  if (problems.length > 0) throw new GatewayConfigError(stage, problems);
  return withPreflightRoutes(config);
}
