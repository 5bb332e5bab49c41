import type { GatewayConfig, RouteConfig } from "../config/gateway.ts";
import { deprecationHeaders } from "../middleware/deprecation.ts";
import { METHODS } from "../routing/router.ts";

/**
 * The gateway's OpenAPI 3.1 document, made from the config alone (a pure function: the same config
 * gives the same document, byte for byte once serialised). Used by `npm run openapi` and by the
 * public `GET /openapi.json`.
 *
 * What it says, and how:
 * - One operation per route key; `ANY` becomes every method the gateway answers on that path
 *   (without OPTIONS where an OPTIONS route exists there). Each operation names its route key in
 *   `x-gatehouse-route`. The generated CORS preflight routes (OPTIONS with no proxy, aggregate or
 *   handler: the CORS step answers them) are not operations.
 * - A greedy parameter `{rest+}` (one or more segments) is written `{rest}`, marked
 *   `x-gatehouse-greedy: true`; OpenAPI has no multi-segment parameter.
 * - Security: `bearerAuth` (http bearer, JWT) and `apiKey` (header `x-api-key`), with the route's
 *   scopes (OpenAPI 3.1 allows scopes on any scheme).
 * - Every status the gateway itself can answer for the route, with an RFC 9457 problem schema; the
 *   401/403 of the authorizer are API Gateway's own `{ "message" }` bodies. Upstream answers pass
 *   through and their shape is unknown to the gateway: their schema is `{}`.
 *
 * Example: `openApiDocument(loadGateway(definition, "prod"), { title: "gatehouse", version: "1.0.0" })`.
 */

export interface OpenApiServer {
  url: string;
  description?: string;
  variables?: Record<string, { default: string; description?: string }>;
}

export interface OpenApiOptions {
  title: string;
  version: string;
  description?: string;
  servers?: OpenApiServer[];
}

type Json = Record<string, unknown>;
type Route = RouteConfig;
type Config = Pick<GatewayConfig, "routes" | "auth" | "upstreams">;

const PROBLEM = "application/problem+json";
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const TEXT_OR_JSON = /^(application\/([\w.+-]+\+)?json)$/i;

const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** Problem responses, by name in `components.responses`. */
const PROBLEMS: Record<string, { status: string; description: string; headers?: string[] }> = {
  BadRequest: {
    status: "400",
    description:
      "Bad input: a body that is not JSON or breaks the route's schema (`errors` names each field), a bad path parameter, or a bad version/canary header.",
  },
  Unauthorized: {
    status: "401",
    description:
      'No credential. API Gateway answers it itself, before any function, with `{ "message": "Unauthorized" }`; a function that finds no identity answers problem+json.',
  },
  Forbidden: {
    status: "403",
    description:
      'Refused: the authorizer denied the credential (API Gateway\'s `{ "message": "Forbidden" }`: bad or expired token, unknown or revoked key, IP rule), or the function did (problem+json: a missing scope, or a plan that does not include the route).',
  },
  NotFound: { status: "404", description: "No route for this path (problem+json)." },
  MethodNotAllowed: {
    status: "405",
    description: "The path exists, the method does not; `Allow` lists the methods that do.",
    headers: ["Allow"],
  },
  PayloadTooLarge: { status: "413", description: "The body is over the route's `body.maxBytes`." },
  UnsupportedMediaType: {
    status: "415",
    description: "The body's Content-Type is not one the route accepts.",
  },
  TooManyRequests: {
    status: "429",
    description:
      "The caller's plan refused the request: its rate (`rate-limited`) or its quota (`quota-exceeded`). `Retry-After` says when to try again. (API Gateway's own throttling answers 429 `{ \"message\" }` without these headers.)",
    headers: ["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
  },
  InternalServerError: {
    status: "500",
    description: "The gateway failed; the body names the request id to quote, never the cause.",
  },
  BadGateway: {
    status: "502",
    description: "An upstream could not be reached, or answered something the gateway cannot pass on.",
  },
  ServiceUnavailable: {
    status: "503",
    description:
      "An upstream's circuit is open, or the usage table did not answer in time to count the request.",
    headers: ["Retry-After"],
  },
  GatewayTimeout: { status: "504", description: "An upstream did not answer in time." },
};

const HEADERS: Json = {
  "Retry-After": {
    description: "Seconds to wait before trying again (RFC 9110).",
    schema: { type: "integer", minimum: 1 },
  },
  "RateLimit-Limit": {
    description: "Cost units the caller's current window holds.",
    schema: { type: "integer", minimum: 0 },
  },
  "RateLimit-Remaining": {
    description: "Cost units left in the current window.",
    schema: { type: "integer", minimum: 0 },
  },
  "RateLimit-Reset": {
    description: "Seconds until the current window ends.",
    schema: { type: "integer", minimum: 0 },
  },
  Allow: { description: "The methods the path answers.", schema: { type: "string" } },
  Deprecation: {
    description: "When the route was deprecated, as `@<unix seconds>` (RFC 9745).",
    schema: { type: "string" },
  },
  Sunset: { description: "When the route stops working (RFC 8594).", schema: { type: "string" } },
  Link: {
    description: 'Where to read about the deprecation (`rel="deprecation"`, `rel="sunset"`).',
    schema: { type: "string" },
  },
  "X-Request-Id": {
    description: "The request id (the caller's valid `x-request-id`, else API Gateway's).",
    schema: { type: "string" },
  },
};

const SCHEMAS: Json = {
  Problem: {
    type: "object",
    description: "An RFC 9457 problem: 4XX details are shown, 5XX details are generic.",
    required: ["type", "title", "status", "detail", "requestId"],
    properties: {
      type: { type: "string", description: "`urn:gatehouse:problem:<slug>`" },
      title: { type: "string" },
      status: { type: "integer" },
      detail: { type: "string" },
      instance: { type: "string", description: "The request path." },
      requestId: { type: "string" },
      errors: {
        type: "array",
        description: "On a 400 for a body that breaks the route's schema: each failing field.",
        items: {
          type: "object",
          required: ["field", "message"],
          properties: { field: { type: "string" }, message: { type: "string" } },
        },
      },
    },
  },
  ApiGatewayMessage: {
    type: "object",
    description: "A response API Gateway makes itself (no function ran): see docs/api-gateway-responses.md.",
    required: ["message"],
    properties: { message: { type: "string" } },
  },
};

function problemResponse(name: string): Json {
  const problem = PROBLEMS[name] as (typeof PROBLEMS)[string];
  const content: Json = { [PROBLEM]: { schema: ref("schemas", "Problem") } };
  if (name === "Unauthorized" || name === "Forbidden") {
    content["application/json"] = { schema: ref("schemas", "ApiGatewayMessage") };
  }
  return {
    description: problem.description,
    ...(problem.headers
      ? { headers: Object.fromEntries(problem.headers.map((h) => [h, ref("headers", h)])) }
      : {}),
    content,
  };
}

/** `{rest+}` → `{rest}`; the parameters in order, with whether each is greedy. */
function pathTemplate(path: string): { path: string; params: { name: string; greedy: boolean }[] } {
  const params: { name: string; greedy: boolean }[] = [];
  const openApiPath = path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}/g, (_, name: string, plus: string) => {
    params.push({ name, greedy: plus === "+" });
    return `{${name}}`;
  });
  return { path: openApiPath, params };
}

function operationId(method: string, path: string): string {
  const words = path
    .replace(/[{}+]/g, "")
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word[0]?.toUpperCase() + word.slice(1));
  return `${method.toLowerCase()}${words.join("")}`;
}

function security(route: Route): Json[] {
  if (route.auth === "public") return [];
  if ("jwt" in route.auth) return [{ bearerAuth: route.auth.jwt.scopes }];
  return [{ apiKey: route.auth.apiKey.scopes }];
}

function summary(route: Route): string {
  if (route.proxy) return `Proxied to ${route.proxy.upstream} ${route.proxy.path}`;
  if (route.aggregate) {
    const calls = Object.values(route.aggregate.calls).map((call) => `${call.upstream} ${call.path}`);
    return `Composed from ${calls.join(", ")}`;
  }
  if (route.handler) return `Answered by the ${route.handler} function`;
  return "Answered by the gateway";
}

function requestBody(body: NonNullable<Route["body"]>): Json {
  const { maxBytes, contentTypes, schema } = body;
  const content = Object.fromEntries(
    contentTypes.map((type: string) => [type, { schema: schema && TEXT_OR_JSON.test(type) ? schema : {} }]),
  );
  return {
    description: `At most ${maxBytes} bytes.`,
    required: schema !== undefined,
    content,
    "x-gatehouse-max-bytes": maxBytes,
  };
}

/** The statuses the gateway itself answers on this route (not the upstream's). */
function problemsOf(route: Route): string[] {
  const upstream = route.kind === "proxy" || route.kind === "aggregate";
  const names: string[] = [];
  if (upstream) names.push("BadRequest");
  if (route.auth !== "public") names.push("Unauthorized", "Forbidden");
  else if (route.limit) names.push("Forbidden");
  if (route.aggregate) names.push("NotFound");
  if (upstream) names.push("PayloadTooLarge", "UnsupportedMediaType");
  if (route.limit) names.push("TooManyRequests");
  names.push("InternalServerError");
  if (upstream) names.push("BadGateway", "ServiceUnavailable", "GatewayTimeout");
  else if (route.limit) names.push("ServiceUnavailable");
  return [...new Set(names)];
}

function successResponses(route: Route): Json {
  if (route.aggregate) {
    return {
      "200": {
        description:
          route.aggregate.onFailure === "partial"
            ? "The merged answers. When a call that is not required failed, it is null in the merge, listed under `_errors`, and `x-gatehouse-complete: false` is set."
            : "The merged answers of every call.",
        content: { "application/json": { schema: {} } },
      },
    };
  }
  if (route.proxy) {
    const mapped = route.proxy.response?.body
      ? " Its JSON body is mapped by the route's `response.body`."
      : "";
    return {
      "2XX": {
        description: `The upstream's answer, passed on.${mapped} Its shape is the upstream's, unknown to the gateway.`,
        content: { "*/*": { schema: {} } },
      },
      default: {
        description: "Any other answer of the upstream, passed on as it came (status, headers and body).",
        content: { "*/*": { schema: {} } },
      },
    };
  }
  return {
    "2XX": {
      description: `The ${route.handler ?? "system"} function's answer.`,
      content: { "application/json": { schema: {} } },
    },
    default: {
      description: `Any other problem the ${route.handler ?? "system"} function reports (bad input, a thing not found).`,
      content: { [PROBLEM]: { schema: ref("schemas", "Problem") } },
    },
  };
}

function operation(
  key: string,
  method: string,
  route: Route,
  params: { name: string; greedy: boolean }[],
): Json {
  const responses: Json = successResponses(route);
  for (const name of problemsOf(route)) {
    responses[(PROBLEMS[name] as (typeof PROBLEMS)[string]).status] = ref("responses", name);
  }
  // Headers every answer of the route carries: RateLimit-* when limited, Deprecation & co when deprecated.
  const extraHeaders: Json = {
    "X-Request-Id": ref("headers", "X-Request-Id"),
    ...(route.limit
      ? Object.fromEntries(
          ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"].map((h) => [h, ref("headers", h)]),
        )
      : {}),
    ...(route.deprecated
      ? Object.fromEntries(
          Object.keys(deprecationHeaders(route.deprecated)).map((h) => {
            const name = h[0]?.toUpperCase() + h.slice(1);
            return [name, ref("headers", name)];
          }),
        )
      : {}),
  };
  for (const [status, response] of Object.entries(responses)) {
    if ("$ref" in (response as Json)) {
      if (!route.deprecated) continue;
      // A referenced response cannot take more headers: the deprecated route's own copy carries them.
      const name = ((response as { $ref: string }).$ref.split("/").pop() ?? "") as string;
      const own = problemResponse(name);
      responses[status] = { ...own, headers: { ...(own.headers as Json | undefined), ...extraHeaders } };
    } else {
      (response as Json).headers = extraHeaders;
    }
  }
  const tags = route.proxy
    ? [route.proxy.upstream]
    : route.aggregate
      ? ["aggregate"]
      : [route.handler ?? "gateway"];
  return {
    operationId: operationId(method, key.split(" ")[1] as string),
    summary: summary(route),
    tags,
    ...(params.length > 0
      ? {
          parameters: params.map(({ name, greedy }) => ({
            name,
            in: "path",
            required: true,
            schema: { type: "string" },
            ...(greedy
              ? {
                  description: `Greedy: one or more path segments, slashes included (API Gateway's \`{${name}+}\`).`,
                  "x-gatehouse-greedy": true,
                }
              : {}),
          })),
        }
      : {}),
    ...(route.body && BODY_METHODS.has(method) ? { requestBody: requestBody(route.body) } : {}),
    security: security(route),
    responses,
    ...(route.deprecated ? { deprecated: true } : {}),
    "x-gatehouse-route": key,
  };
}

/** The methods an OpenAPI document lists for a route key (`ANY` expanded). */
function operationMethods(key: string, routes: Config["routes"]): string[] {
  const [method, path] = key.split(" ") as [string, string];
  if (method !== "ANY") return [method];
  return METHODS.filter((m) => m !== "OPTIONS" || !Object.hasOwn(routes, `OPTIONS ${path}`));
}

export function openApiDocument(config: Config, options: OpenApiOptions): Json {
  const paths: Record<string, Json> = {};
  const ids = new Set<string>();
  const byPath = ([a]: [string, Route], [b]: [string, Route]) =>
    (a.split(" ")[1] as string).localeCompare(b.split(" ")[1] as string) || a.localeCompare(b);
  for (const [key, route] of Object.entries(config.routes).sort(byPath)) {
    if (route.kind === "preflight") continue; // the gateway's CORS step answers it: not an operation
    const { path, params } = pathTemplate(key.split(" ")[1] as string);
    const item = paths[path] ?? {};
    paths[path] = item;
    for (const method of operationMethods(key, config.routes)) {
      const verb = method.toLowerCase();
      if (item[verb]) continue; // an explicit method beats the ANY route on the same path, as in the router
      const op = operation(key, method, route, params);
      if (ids.has(op.operationId as string)) op.operationId = `${op.operationId}${ids.size}`;
      ids.add(op.operationId as string);
      item[verb] = op;
    }
  }
  const issuers = config.auth.issuers.map((issuer) =>
    issuer.kind === "cognito" ? `Cognito user pool ${issuer.userPoolId}` : issuer.issuer,
  );
  return {
    openapi: "3.1.0",
    info: {
      title: options.title,
      version: options.version,
      description: [
        options.description ?? "",
        "Generated from gateway.config.ts. A path or method not listed here is answered 404 or 405 (problem+json).",
        'Any route may also get an answer API Gateway makes itself, before or instead of the gateway\'s: 429 when its throttling refuses, 500 or 503 when a function failed or hung, with a `{ "message" }` body (components.schemas.ApiGatewayMessage).',
      ]
        .filter(Boolean)
        .join("\n\n"),
    },
    ...(options.servers ? { servers: options.servers } : {}),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: `A JWT from ${issuers.length > 0 ? issuers.join(", ") : "no issuer (none is configured)"}.`,
        },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "A Gatehouse API key." },
      },
      schemas: SCHEMAS,
      headers: HEADERS,
      responses: Object.fromEntries(Object.keys(PROBLEMS).map((name) => [name, problemResponse(name)])),
    },
  };
}
