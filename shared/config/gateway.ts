import ipaddr from "ipaddr.js";
import * as v from "valibot";
import { SCOPE_TOKEN } from "../auth/scopes.ts";
import { largestBody } from "../http.ts";
import { SECURITY_HEADER_NAMES } from "../middleware/security-headers.ts";
import { jmespathProblem } from "../upstream/transform.ts";
import { CHAT_ACTIONS, type ChatAction } from "../ws/protocol.ts";

/**
 * The gateway config: one typed module (`gateway.config.ts`) that says who may call which route.
 * It is validated when the project builds (the tests and `npm run package` load it) and again at
 * cold start. An error names the field's path and how to fix it.
 */

const httpsUrl = (what: string) =>
  v.pipe(
    v.string(),
    v.url(`${what} must be a URL`),
    v.check(
      (value) => value.startsWith("https://"),
      `${what} must use https:// (tokens and keys are not fetched in clear text)`,
    ),
  );

const cidr = v.pipe(
  v.string(),
  v.check((value) => {
    try {
      ipaddr.parseCIDR(value);
      return true;
    } catch {
      return false;
    }
  }, "must be a CIDR block such as 203.0.113.0/24 or 2001:db8::/32 (a single address is /32 or /128)"),
);

const IpRulesSchema = v.object({
  /** When non-empty, only these blocks are admitted. */
  allow: v.optional(v.array(cidr), []),
  /** Always refused; deny wins over allow. */
  deny: v.optional(v.array(cidr), []),
});

const scope = v.pipe(v.string(), v.regex(SCOPE_TOKEN, "a scope is one word of printable ASCII (RFC 6749)"));
const nonEmptyList = (item: v.GenericSchema<string, string>, what: string) =>
  v.pipe(v.array(item), v.minLength(1, `${what}: list at least one (leaving it out would accept any)`));

const issuerId = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,31}$/, "an issuer id is lower-case letters, digits and -"),
);
const claimNames = v.optional(
  v.object({
    /** Claim that carries the caller's tenant. */
    tenant: v.optional(v.string()),
    /** Claim that carries the caller's plan. */
    plan: v.optional(v.string()),
  }),
  {},
);

const CognitoIssuerSchema = v.object({
  kind: v.literal("cognito"),
  id: issuerId,
  userPoolId: v.pipe(
    v.string(),
    v.regex(/^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$/, "a user pool id looks like us-east-1_AbCdEf123"),
  ),
  /** App client ids whose tokens are accepted (the `client_id` / `aud` claim). Required. */
  clientId: nonEmptyList(v.string(), "clientId"),
  /** `access` or `id`: which Cognito token is accepted. Required: the two carry different claims. */
  tokenUse: v.picklist(["access", "id"], "tokenUse is required: 'access' or 'id'"),
  defaultPlan: v.optional(v.string(), "default"),
  claims: claimNames,
});

const OidcIssuerSchema = v.object({
  kind: v.literal("oidc"),
  id: issuerId,
  /** Expected `iss` claim. */
  issuer: httpsUrl("issuer"),
  /** Where the signing keys are; default `<issuer>/.well-known/jwks.json`. */
  jwksUri: v.optional(httpsUrl("jwksUri")),
  /**
   * PEM file of a private CA that signs the JWKS server's TLS certificate (an internal IdP, or the
   * local dev issuer). TLS is still verified, against this CA only.
   */
  jwksCaFile: v.optional(v.string()),
  /** Accepted `aud` values. Required. */
  audience: nonEmptyList(v.string(), "audience"),
  defaultPlan: v.optional(v.string(), "default"),
  claims: claimNames,
});

const RouteAuthSchema = v.union(
  [
    v.literal("public"),
    v.strictObject({ jwt: v.strictObject({ scopes: v.optional(v.array(scope), []) }) }),
    v.strictObject({ apiKey: v.strictObject({ scopes: v.optional(v.array(scope), []) }) }),
  ],
  'auth must be "public", { jwt: { scopes } } or { apiKey: { scopes } }',
);

/** Hosts an upstream may never be: cloud metadata services and link-local addresses (SSRF targets). */
const FORBIDDEN_HOSTS = new Set(["metadata.google.internal", "metadata", "instance-data"]);
function forbiddenUpstreamHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (FORBIDDEN_HOSTS.has(host)) return true;
  if (!ipaddr.isValid(host)) return false;
  const address = ipaddr.process(host);
  const range = address.range();
  return range === "linkLocal" || (address.kind() === "ipv6" && host.startsWith("fd00:ec2:"));
}

const upstreamUrl = v.pipe(
  v.string(),
  v.url("an upstream target is a URL such as https://users.internal:8443"),
  v.check((value) => /^https?:\/\//.test(value), "an upstream target uses http:// or https://"),
  v.check((value) => {
    const url = new URL(value);
    return url.username === "" && url.password === "" && url.search === "" && url.hash === "";
  }, "an upstream target has no credentials, query or fragment"),
  v.check(
    (value) => !forbiddenUpstreamHost(new URL(value).hostname),
    "an upstream target may not be a link-local or cloud metadata address",
  ),
);

const resilience = {
  /** Per attempt. */
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(50), v.maxValue(25_000)), 5_000),
  /** Extra attempts, idempotent methods only. */
  retries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)), 2),
  breaker: v.optional(
    v.object({
      consecutiveFailures: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 5),
      halfOpenAfterMs: v.optional(
        v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(300_000)),
        10_000,
      ),
    }),
    {},
  ),
  /**
   * The largest answer read from the upstream (and the most a compressed one may decode to). It must
   * fit Lambda's 6 MB answer in base64, headers beside it: at most 4,694,016.
   */
  maxResponseBytes: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.minValue(1),
      v.maxValue(
        largestBody(true),
        `at most ${largestBody(true)}: a binary answer travels in base64 (4 bytes per 3) inside Lambda's 6 MB (6,291,456-byte) answer`,
      ),
    ),
    4_500_000,
  ),
};

/** An HTTP service: weighted targets (the default kind). */
const HttpUpstreamSchema = v.object({
  kind: v.optional(v.literal("http"), "http"),
  targets: v.pipe(
    v.array(
      v.object({ url: upstreamUrl, weight: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1) }),
    ),
    v.minLength(1, "an upstream needs at least one target"),
  ),
  ...resilience,
  followRedirects: v.optional(v.boolean(), false),
});

/**
 * Another Lambda function, invoked directly (no HTTP hop). `function` is a function key of
 * serverless.yml (it becomes `<service>-<stage>-<key>`) or a full function ARN. `payload: "http"`
 * sends an API Gateway v2 event and expects an HTTP result (any Lambda HTTP handler fits);
 * `payload: "json"` sends `{ method, path, params, query, headers, body, identity }` and answers
 * whatever JSON the function returns with 200.
 */
const LambdaUpstreamSchema = v.object({
  kind: v.literal("lambda"),
  function: v.pipe(
    v.string(),
    v.regex(
      /^([A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?)$/,
      "a function is a serverless.yml function key (catalog) or a function ARN",
    ),
  ),
  payload: v.optional(v.picklist(["http", "json"]), "http"),
  ...resilience,
});

const UpstreamSchema = v.variant("kind", [HttpUpstreamSchema, LambdaUpstreamSchema]);

/** A JMESPath expression, parsed here so a typo fails at build and at cold start, not per request. */
const jmespath = (what: string) =>
  v.pipe(
    v.string(),
    v.minLength(1, `${what} is a JMESPath expression such as "{ id: id, name: name }"`),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const problem = jmespathProblem(dataset.value);
      if (problem) addIssue({ message: `${what} is not valid JMESPath: ${problem}` });
    }),
  );

const headerName = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, "a header name in lower case, such as x-client-id"),
);
/**
 * Headers a mapping may not touch: the gateway's own identity and forwarding headers, the caller's
 * credentials for the gateway (`forwardAuthorization` is the one way to pass `Authorization` on), the
 * content coding (the gateway negotiates it, so that `Content-Encoding` always describes the bytes),
 * CORS (the route's `cors` rules answer it), and hop-by-hop ones.
 */
const RESERVED_HEADER =
  /^(x-gatehouse-.*|x-forwarded-.*|forwarded|x-request-id|authorization|x-api-key|host|content-length|content-encoding|accept-encoding|access-control-.*|connection|keep-alive|te|trailer|transfer-encoding|upgrade|proxy-.*)$/;
const mappableHeader = v.pipe(
  headerName,
  v.check(
    (name) => !RESERVED_HEADER.test(name),
    "this header is the gateway's own (identity, credentials, forwarding, request id, content coding, CORS or hop-by-hop) and cannot be mapped",
  ),
);
const queryName = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
/** Mapping steps, applied in this order: rename, then remove, then set. */
const HeaderMapSchema = v.strictObject({
  rename: v.optional(v.record(mappableHeader, mappableHeader), {}),
  remove: v.optional(v.array(mappableHeader), []),
  set: v.optional(v.record(mappableHeader, v.string()), {}),
});
const QueryMapSchema = v.strictObject({
  rename: v.optional(v.record(queryName, queryName), {}),
  remove: v.optional(v.array(queryName), []),
  set: v.optional(v.record(queryName, v.string()), {}),
});

/** A header `response.passHeaders` may list: one of the gateway's security headers, never CORS. */
const passableHeader = v.pipe(
  headerName,
  v.check(
    (name) => !name.startsWith("access-control-"),
    "CORS headers are always the gateway's, from the route's cors rules; an upstream's never pass",
  ),
  v.check(
    (name) => name.startsWith("access-control-") || SECURITY_HEADER_NAMES.includes(name),
    `only the gateway's own headers need listing (${SECURITY_HEADER_NAMES.join(", ")}); an upstream's other headers pass anyway`,
  ),
);

const RequestMapSchema = v.strictObject({
  headers: v.optional(HeaderMapSchema),
  query: v.optional(QueryMapSchema),
  /** JMESPath over the (validated) JSON body; its result is the JSON body sent upstream. */
  body: v.optional(jmespath("request.body")),
});
const statusCode = v.pipe(v.number(), v.integer(), v.minValue(200), v.maxValue(599));
const ResponseMapSchema = v.strictObject({
  /** Upstream status → the status the client sees, e.g. `{ "404": 200 }`. */
  status: v.optional(
    v.record(v.pipe(v.string(), v.regex(/^[1-5]\d\d$/, "a status code such as 404")), statusCode),
    {},
  ),
  headers: v.optional(HeaderMapSchema),
  /** JMESPath over the upstream's JSON body, applied to 2XX answers only (errors keep their shape). */
  body: v.optional(jmespath("response.body")),
  /**
   * The gateway's security headers this route takes from the upstream instead (say `cache-control`
   * for a cacheable answer); the upstream's other headers pass anyway, its CORS headers never.
   */
  passHeaders: v.optional(v.array(passableHeader), []),
});

const ProxyTargetSchema = v.strictObject({
  /** A key of `upstreams`. */
  upstream: v.string(),
  /** The upstream path, with the route's parameters: `/api/users/{id}`. */
  path: v.pipe(v.string(), v.regex(/^\//, "a proxy path starts with /")),
  forwardAuthorization: v.optional(v.boolean(), false),
  /** What the upstream receives: headers, query and body mapped from the client's. */
  request: v.optional(RequestMapSchema),
  /** What the client receives: status, headers and body mapped from the upstream's answer. */
  response: v.optional(ResponseMapSchema),
});
const ProxySchema = v.strictObject({
  ...ProxyTargetSchema.entries,
  /**
   * A canary: this share of callers (by weight, in percent) goes to another target. Assignment is
   * sticky per caller (the principal, else the client IP): the same caller always lands on
   * the same side, and raising the weight only moves callers onto the canary.
   */
  canary: v.optional(
    v.strictObject({
      ...ProxyTargetSchema.entries,
      weight: v.pipe(v.number(), v.minValue(0), v.maxValue(100, "a canary weight is a percentage, 0 to 100")),
      /** A request header that forces a side (`always` or `never`), for testing a canary before it has weight. */
      header: v.optional(headerName),
    }),
  ),
  /**
   * Other versions of this route, chosen by the `versionHeader` (API Gateway cannot route on a
   * header). A request without the header gets the default above.
   */
  versions: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]{1,16}$/, "a version is a short token")),
      ProxyTargetSchema,
    ),
    {},
  ),
});

const callName = v.pipe(
  v.string(),
  v.regex(/^[a-z][A-Za-z0-9]{0,31}$/, "a call name is a short identifier such as user or orders"),
);
/**
 * Composition: calls several upstreams in parallel (GET) and merges their JSON answers into one
 * document with a JMESPath `merge` over `{ <call>: <body>, … }`.
 */
const AggregateSchema = v.strictObject({
  calls: v.pipe(
    v.record(
      callName,
      v.strictObject({
        upstream: v.string(),
        path: v.pipe(v.string(), v.regex(/^\//, "a call path starts with /")),
        /** Query parameters; values may use the route's `{params}`. */
        query: v.optional(v.record(queryName, v.string()), {}),
        /** Under `partial`, a failure of this call still fails the request (under `fail`, every call is required). */
        required: v.optional(v.boolean(), false),
        /** The whole call, retries included; past it the call fails with 504. */
        timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(50), v.maxValue(25_000))),
      }),
    ),
    v.check((calls) => Object.keys(calls).length >= 1, "an aggregate makes at least one call"),
  ),
  /** JMESPath over `{ <call>: <body> }`; without it the client gets that object as it is. */
  merge: v.optional(jmespath("aggregate.merge")),
  /**
   * `fail`: any failed call fails the request: 404 when an upstream answered 404 (the thing asked for
   * is not there), else 502, 503 (circuit open) or 504 (timeout); the other calls are cancelled.
   * `partial`: answer 200 with what came; each failed call is null in the merge input, listed under
   * `_errors` in the body, and `x-gatehouse-complete: false` is set. If a `required` call fails, or
   * every call does, the request fails as under `fail`.
   */
  onFailure: v.optional(v.picklist(["fail", "partial"]), "fail"),
});

const isoDate = v.pipe(v.string(), v.isoTimestamp("a time such as 2027-01-01T00:00:00Z"));
const DeprecationSchema = v.strictObject({
  /** When the route was deprecated (sent as `Deprecation`, RFC 9745). */
  since: isoDate,
  /** When it will stop working (sent as `Sunset`, RFC 8594). */
  sunset: v.optional(isoDate),
  /** Where to read about it (sent as `Link; rel="deprecation"`). */
  link: v.optional(v.pipe(v.string(), v.url())),
});

/** `*`, an exact origin, or one wildcard leftmost label: `https://*.example.com`. */
const corsOrigin = v.pipe(
  v.string(),
  v.regex(
    /^(\*|https?:\/\/(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?)$/,
    "an origin is *, https://app.example.com, or https://*.example.com (scheme and host, no path)",
  ),
);
const CorsSchema = v.pipe(
  v.object({
    origins: v.pipe(v.array(corsOrigin), v.minLength(1, "list the origins that may call this route")),
    credentials: v.optional(v.boolean(), false),
    headers: v.optional(v.array(v.string()), ["content-type", "authorization", "x-api-key", "x-request-id"]),
    exposeHeaders: v.optional(v.array(v.string()), ["x-request-id", "retry-after"]),
    maxAgeSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(86_400)), 600),
  }),
  v.check(
    (cors) => !(cors.credentials && cors.origins.includes("*")),
    'origins "*" with credentials would let any site call with the user\'s cookies; list the origins',
  ),
);

/** Defaults chosen with `npm run bench -- gatewayBodies` (docs/proxying.md). */
const COMPRESSION_DEFAULTS = { minBytes: 1_024, gzipLevel: 1, brotliQuality: 1 };
const CompressionSchema = v.strictObject({
  /** The smallest body compressed, in bytes. */
  minBytes: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_048_576)),
    COMPRESSION_DEFAULTS.minBytes,
  ),
  /** zlib's gzip level, 1 (fastest) to 9 (smallest). */
  gzipLevel: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(9)),
    COMPRESSION_DEFAULTS.gzipLevel,
  ),
  /** Brotli's quality, 0 (fastest) to 11 (smallest; far too slow for answers made per request). */
  brotliQuality: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(11)),
    COMPRESSION_DEFAULTS.brotliQuality,
  ),
});

/** Media types API Gateway passes as text; any other request body may arrive base64. */
const TEXT_BODY = /^(text\/[\w.+*-]+|application\/([\w.+-]+\+)?json)$/i;

const BodySchema = v.object({
  /**
   * Largest request body in bytes. The body reaches the function inside API Gateway's event, which
   * Lambda takes up to 6 MB: at most 4,694,016 when a binary (base64) body is accepted, 6,258,688 when
   * only JSON or text is.
   */
  maxBytes: v.optional(
    v.pipe(
      v.number(),
      v.integer(),
      v.minValue(1),
      v.maxValue(
        largestBody(false),
        `at most ${largestBody(false)}: the event that carries the body must fit Lambda's 6 MB`,
      ),
    ),
    1_048_576,
  ),
  /** Accepted media types; `*\/*` accepts any. */
  contentTypes: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(/^[\w.+*-]+\/[\w.+*-]+$/, "a media type such as application/json"))),
      v.minLength(1),
    ),
    ["application/json"],
  ),
  /** JSON Schema for a JSON body, compiled once at cold start. */
  schema: v.optional(v.record(v.string(), v.unknown())),
});

const planName = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,31}$/, "a plan name is lower-case letters, digits and -"),
);

/** Requests (or messages) per second, with a burst: a fixed window of `burst / perSecond` seconds. */
const RateSchema = v.strictObject({
  perSecond: v.pipe(v.number(), v.minValue(0.001), v.maxValue(100_000)),
  burst: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
});

/**
 * Chat. API Gateway refuses a WebSocket frame over 128 KB, and a message is sent on wrapped in a frame
 * of about 400 bytes, so `maxMessageBytes` (the whole incoming JSON, counted before any other work)
 * stays under 127 KiB.
 */
/** Scopes each chat action needs (from the token or key the connection was opened with). */
const CHAT_SCOPE_DEFAULTS: Record<ChatAction, string[]> = {
  join: [],
  leave: [],
  send: ["chat:write"],
  direct: ["chat:write"],
  rooms: [],
  members: [],
  history: [],
};
const ChatScopesSchema = v.strictObject(
  Object.fromEntries(
    CHAT_ACTIONS.map((action) => [action, v.optional(v.array(scope), CHAT_SCOPE_DEFAULTS[action])]),
  ) as Record<ChatAction, v.OptionalSchema<v.ArraySchema<typeof scope, undefined>, string[]>>,
);

const ChatSchema = v.strictObject({
  maxMessageBytes: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(256), v.maxValue(127 * 1024)),
    32 * 1024,
  ),
  maxRoomsPerConnection: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 20),
  /** Room and inbox history is kept this long (DynamoDB TTL), then expires. */
  historyDays: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(365)), 7),
  /** PostToConnection calls in flight at once during one fan-out. */
  fanoutConcurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(256)), 32),
  /**
   * Scopes each action needs, per action (an action left out keeps its default): `send` and `direct`
   * need `chat:write`, the others nothing beyond an admitted connection.
   */
  scopes: v.optional(ChatScopesSchema, CHAT_SCOPE_DEFAULTS),
});

/**
 * A usage plan. `rate` is requests per second with a burst: a fixed window of `burst / perSecond`
 * seconds holds `burst` cost units. `quota` is cost units per calendar window (UTC). Both are counted
 * exactly in DynamoDB, per subject.
 */
const PlanSchema = v.strictObject({
  rate: v.optional(RateSchema),
  quota: v.optional(
    v.strictObject({
      limit: v.pipe(v.number(), v.integer(), v.minValue(1)),
      period: v.picklist(["day", "week", "month"], "a quota period is day, week or month"),
    }),
  ),
  /** Route keys this plan may call; leave it out to allow every limited route. */
  routes: v.optional(v.array(v.string())),
  /**
   * Counter shards, for subjects past DynamoDB's 1,000 writes/s per partition: each shard holds
   * 1/shards of the limits. Never admits more than the limits; near exhaustion a request may be
   * refused while another shard still has room.
   */
  shards: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(64)), 1),
});

/**
 * API Gateway's own throttling for one route (requests per second and burst, token bucket, per
 * stage): it refuses with its own 429 before any function runs. Rough and best effort, per AWS; the
 * exact per-caller limits are `limit`.
 */
const ThrottleSchema = v.strictObject({
  rateLimit: v.pipe(v.number(), v.minValue(0), v.maxValue(1_000_000)),
  burstLimit: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000_000)),
});

/** A route's usage limiting: present means limited. */
const RouteLimitSchema = v.strictObject({
  /** Cost units one request uses (default 1). */
  cost: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), 1),
  /**
   * Who is counted: `apiKey` (the key id), `principal`, or `ip` (the client address). The default
   * follows the route's auth: the key on API-key routes, the principal on JWT routes, the IP on public ones.
   */
  subject: v.optional(v.picklist(["apiKey", "principal", "ip"])),
  /** The plan for this route's callers on a public route (default `limits.anonymousPlan`). */
  plan: v.optional(planName),
});

const RouteSchema = v.object({
  auth: RouteAuthSchema,
  /** What the route accepts as a request body (checked before anything is sent upstream). */
  body: v.optional(BodySchema, {}),
  /** Browser access from other origins; `false` turns the global `cors` off for this route. */
  cors: v.optional(v.union([CorsSchema, v.literal(false)])),
  /** Marks the route deprecated: every response carries `Deprecation` (and `Sunset`, `Link`). */
  deprecated: v.optional(DeprecationSchema),
  /** Send the request on to an upstream service. */
  proxy: v.optional(ProxySchema),
  /** Answer from several upstreams at once (a route has `proxy` or `aggregate`, not both). */
  aggregate: v.optional(AggregateSchema),
  /**
   * A system route: the serverless.yml function (its key under `functions`) that answers it, e.g.
   * `usage`. A route has one of `proxy`, `aggregate` or `handler`; proxy and aggregate routes are
   * answered by the `gateway` function.
   */
  handler: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z][A-Za-z0-9]{0,63}$/, "a handler is a function key, e.g. usage")),
  ),
  /** Extra IP rules for this route, on top of the global ones. */
  ipRules: v.optional(IpRulesSchema, { allow: [], deny: [] }),
  /**
   * Count this route against the caller's plan (rate, quota, metering). Any route with an identity
   * may be limited, and a proxied public route by client IP. `false` turns off a default limit (the
   * HTTP→WebSocket bridge is limited unless it says `false`).
   */
  limit: v.optional(v.union([RouteLimitSchema, v.literal(false)])),
  /** API Gateway's throttling for this route on every stage (see also the stage-wide params). */
  throttle: v.optional(ThrottleSchema),
});

const routeKey = v.pipe(
  v.string(),
  v.regex(
    /^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) \/[A-Za-z0-9_.~{}+/-]*$/,
    'a route key is "METHOD /path", e.g. "GET /things/{id}"',
  ),
);

export const GatewayConfigSchema = v.object({
  auth: v.object({
    issuers: v.optional(v.array(v.variant("kind", [CognitoIssuerSchema, OidcIssuerSchema])), []),
    /** Allowed clock difference for `iat` in the future, `nbf` and `exp`. */
    clockSkewSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(300)), 60),
    /** Time budget for fetching a JWKS; past it the request is denied (fail closed). */
    jwksTimeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(100), v.maxValue(5_000)), 1_500),
    /** Verified tokens kept in memory (keyed by a hash of the token) until they expire. */
    tokenCacheEntries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 10_000),
    apiKeys: v.optional(
      v.object({
        /**
         * How long a container trusts an API key lookup. With API Gateway's authorizer cache TTL this
         * bounds how long a revoked key keeps working.
         */
        cacheSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(300)), 10),
        cacheEntries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 10_000),
        /**
         * Keys issued in the old `gh_` format (no checksum: each costs a read to refuse). `accept`
         * keeps them working until revoked; `refuse` turns them away unread, once they are reissued.
         */
        legacyKeys: v.optional(
          v.picklist(["accept", "refuse"], 'legacyKeys is "accept" or "refuse"'),
          "accept",
        ),
        /**
         * Lookups that find no key, counted per source IP (per /64 for IPv6) in each authorizer
         * container. Past `perIp` within `windowSeconds`, keys from that address are refused without
         * a read until the window ends, except keys the container has recently found.
         */
        unknownKeys: v.optional(
          v.strictObject({
            perIp: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), 20),
            windowSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3_600)), 60),
          }),
          {},
        ),
      }),
      {},
    ),
    /** Scope that grants the API-key admin endpoints. */
    adminScope: v.optional(scope, "gatehouse:admin"),
  }),
  ipRules: v.optional(IpRulesSchema, { allow: [], deny: [] }),
  /**
   * Proxies in front of API Gateway (a CDN, a corporate proxy), as CIDR blocks: a request that comes
   * from one keeps its X-Forwarded-For chain and Forwarded elements, extended by the gateway. Empty
   * (the default): the gateway is the first hop, and a client's own forwarding headers are dropped.
   */
  trustedProxies: v.optional(
    v.array(
      v.pipe(
        cidr,
        v.check(
          (block) => !block.endsWith("/0"),
          "a /0 block trusts every address, so any client could forge its X-Forwarded-For; list your proxies' ranges",
        ),
      ),
    ),
    [],
  ),
  /** The request header that picks a route's `proxy.versions` entry. */
  versionHeader: v.optional(
    v.pipe(v.string(), v.regex(/^[a-z0-9-]+$/, "a lower-case header name")),
    "x-api-version",
  ),
  /** Default CORS for every proxied route (a route's own `cors` replaces it). */
  cors: v.optional(CorsSchema),
  /**
   * Answers of the gateway function that are not compressed yet are compressed (br, else gzip, as the
   * client accepts) when they are text-like; `false` never compresses. See docs/proxying.md.
   */
  compression: v.optional(
    v.union(
      [CompressionSchema, v.literal(false)],
      "compression is { minBytes, gzipLevel, brotliQuality } or false",
    ),
    COMPRESSION_DEFAULTS,
  ),
  upstreams: v.optional(
    v.record(
      v.pipe(
        v.string(),
        v.regex(/^[a-z][a-z0-9-]{0,31}$/, "an upstream name is lower-case letters, digits and -"),
      ),
      UpstreamSchema,
    ),
    {},
  ),
  routes: v.record(routeKey, RouteSchema),
  /** Usage plans: rate limits, quotas and metering, counted in the usage table. */
  limits: v.optional(
    v.strictObject({
      plans: v.record(planName, PlanSchema),
      /** The plan of a caller whose plan is not in `plans`. */
      defaultPlan: v.optional(planName, "default"),
      /** The plan of anonymous callers on public limited routes. */
      anonymousPlan: v.optional(planName, "anonymous"),
      /**
       * When the usage table is unreachable or failing (not when it is slow: see `timeoutMs`):
       * `open` counts in each container's memory at the plan's own limits, so the worst case is
       * containers × the plan per window (every such admission is the `LimiterDegradedAdmission`
       * metric, and is booked into the table once it answers); `closed` answers 503.
       */
      onStoreFailure: v.optional(v.picklist(["open", "closed"]), "open"),
      /**
       * Most time one limit check may take (the conditional write, and the read after a refusal):
       * a slow table is waited for, since a request can afford it. At run time the budget is also
       * cut to what the invocation has left after the route's own upstream attempts. A table still
       * not answering by then is refused with 503 and `Retry-After`, never admitted uncounted.
       */
      timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(20), v.maxValue(20_000)), 10_000),
      /** WebSocket messages: a rate per connection and per principal (all their connections together). */
      websocket: v.optional(
        v.strictObject({
          perConnection: v.optional(RateSchema),
          perPrincipal: v.optional(RateSchema),
        }),
        {},
      ),
    }),
  ),
  websocket: v.optional(
    v.object({
      /** Who may open a WebSocket (`$connect`). */
      connect: RouteSchema,
      /**
       * Live WebSocket connections one principal may hold at once (every tab and device), counted
       * exactly at `$connect`; one more is refused with 429 in the handshake.
       */
      maxConnectionsPerPrincipal: v.optional(
        v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000)),
        10,
      ),
      /** Chat rooms: limits, history and fan-out (the rates are `limits.websocket`). */
      chat: v.optional(ChatSchema, {}),
    }),
    {
      connect: { auth: "public", ipRules: { allow: [], deny: [] } },
      maxConnectionsPerPrincipal: 10,
      chat: {},
    },
  ),
});

export type GatewayConfig = v.InferOutput<typeof GatewayConfigSchema>;
export type GatewayConfigInput = v.InferInput<typeof GatewayConfigSchema>;
export type IssuerConfig = GatewayConfig["auth"]["issuers"][number];
export type RouteConfig = GatewayConfig["routes"][string];
export type RouteAuth = RouteConfig["auth"];
export type IpRules = GatewayConfig["ipRules"];

/** What a config module receives: the stage it is loaded for. */
export interface GatewayContext {
  stage: string;
}
export type GatewayDefinition = (context: GatewayContext) => GatewayConfigInput;

/**
 * Declares the gateway. Example:
 * `export default defineGateway(({ stage }) => ({ auth: { issuers: [...] }, routes: { "GET /health": { auth: "public" } } }))`
 */
export function defineGateway(definition: GatewayDefinition): GatewayDefinition {
  return definition;
}

/** The gateway function's own timeout (serverless.yml), under API Gateway's 30 s integration limit. */
const GATEWAY_BUDGET_MS = 28_000;

/**
 * The longest an upstream call can take: every attempt at its timeout, plus the backoff between
 * retries (at most 500 ms each, the cap in shared/upstream/http-client.ts).
 */
export function upstreamWorstCaseMs(upstream: { timeoutMs: number; retries: number } | undefined): number {
  if (!upstream) return 0;
  return upstream.timeoutMs * (upstream.retries + 1) + upstream.retries * 500;
}

/** The longest a route's upstream calls can take (0 for a route that calls none). */
export function routeWorstCaseMs(config: Pick<GatewayConfig, "upstreams">, route: RouteConfig): number {
  return Math.max(0, ...routeUpstreams(route).map((name) => upstreamWorstCaseMs(config.upstreams[name])));
}

/** The upstreams a route calls (its proxy targets, versions and canary, or its aggregate calls). */
function routeUpstreams(route: RouteConfig): string[] {
  const proxy = route.proxy;
  return [
    ...(proxy ? [proxy.upstream, ...Object.values(proxy.versions).map((t) => t.upstream)] : []),
    ...(proxy?.canary ? [proxy.canary.upstream] : []),
    ...Object.values(route.aggregate?.calls ?? {}).map((call) => call.upstream),
  ];
}

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

/** Validates a definition for a stage; throws `GatewayConfigError` naming every bad field. */
export function loadGateway(definition: GatewayDefinition, stage: string): GatewayConfig {
  const result = v.safeParse(GatewayConfigSchema, definition({ stage }), { abortEarly: false });
  if (!result.success) {
    throw new GatewayConfigError(
      stage,
      result.issues.map((issue) => {
        const path = v.getDotPath(issue) ?? "(root)";
        // A missing member: say so plainly rather than valibot's "Invalid key: Expected …".
        if (issue.kind === "schema" && issue.input === undefined && issue.type === "object") {
          return `${path}: is required (see its description in shared/config/gateway.ts)`;
        }
        return `${path}: ${issue.message}`;
      }),
    );
  }
  const config = result.output;
  const problems: string[] = [];
  const issuerIds = config.auth.issuers.map((issuer) => issuer.id);
  for (const [index, id] of issuerIds.entries()) {
    if (issuerIds.indexOf(id) !== index) problems.push(`auth.issuers.${index}.id: "${id}" is used twice`);
  }
  for (const [key, route] of [
    ...Object.entries(config.routes),
    ["websocket.connect", config.websocket.connect] as const,
  ]) {
    if (route.auth !== "public" && "jwt" in route.auth && config.auth.issuers.length === 0) {
      problems.push(`routes.${key}.auth: needs a JWT but auth.issuers is empty; add an issuer or use apiKey`);
    }
  }
  const paramsOf = (template: string) =>
    [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\+?\}/g)].map((m) => m[1] as string);
  const checkUpstream = (where: string, name: string) => {
    if (!config.upstreams[name]) {
      const known = Object.keys(config.upstreams).join(", ") || "none declared";
      problems.push(`${where}.upstream: "${name}" is not in upstreams (${known})`);
    }
  };
  const checkParams = (where: string, template: string, routeParams: Set<string>) => {
    for (const param of paramsOf(template)) {
      if (!routeParams.has(param)) problems.push(`${where}: {${param}} is not a parameter of the route`);
    }
  };
  for (const [key, route] of Object.entries(config.routes)) {
    if (
      !route.body.contentTypes.every((type) => TEXT_BODY.test(type)) &&
      route.body.maxBytes > largestBody(true)
    ) {
      problems.push(
        `routes.${key}.body.maxBytes: at most ${largestBody(true)} when the route accepts ${route.body.contentTypes.join(", ")}: a binary body arrives base64 (4 bytes per 3) in an event Lambda takes up to 6 MB`,
      );
    }
  }
  for (const [key, route] of Object.entries(config.routes)) {
    const routeParams = new Set(paramsOf(key));
    if (route.proxy && route.aggregate) {
      problems.push(`routes.${key}: has both proxy and aggregate; a route does one or the other`);
    }
    if (route.handler && (route.proxy || route.aggregate)) {
      problems.push(
        `routes.${key}.handler: a route answered by the gateway's ${route.proxy ? "proxy" : "aggregate"} names no handler; remove one of them`,
      );
    }
    if (route.proxy) {
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
    if (route.aggregate) {
      if (!key.startsWith("GET ")) {
        problems.push(`routes.${key}.aggregate: an aggregate route answers GET (its calls are GETs)`);
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
  const limits = config.limits;
  for (const [key, route] of Object.entries(config.routes)) {
    if (!route.limit) continue;
    if (route.auth === "public" && !route.proxy && !route.aggregate) {
      problems.push(
        `routes.${key}.limit: a public system route has no caller to count; use throttle (API Gateway's) instead`,
      );
    }
    if (!limits) {
      problems.push(`routes.${key}.limit: needs a top-level limits section with plans`);
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
  for (const [name, plan] of Object.entries(limits?.plans ?? {})) {
    for (const key of plan.routes ?? []) {
      if (!config.routes[key]?.limit)
        problems.push(`limits.plans.${name}.routes: "${key}" is not a limited route`);
    }
    const costs = Object.values(config.routes).flatMap((route) => (route.limit ? [route.limit.cost] : []));
    const largest = Math.max(0, ...costs);
    if (plan.rate && Math.ceil(plan.rate.burst / plan.shards) < largest) {
      problems.push(
        `limits.plans.${name}.rate.burst: below the largest route cost (${largest}) per shard; no such request could pass`,
      );
    }
    if (plan.rate && plan.rate.burst / plan.rate.perSecond < 0.1) {
      problems.push(`limits.plans.${name}.rate: burst / perSecond is under 100 ms; raise the burst`);
    }
  }
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstreamWorstCaseMs(upstream) >= GATEWAY_BUDGET_MS) {
      problems.push(
        `upstreams.${name}: ${upstream.retries + 1} attempts of ${upstream.timeoutMs} ms can pass API Gateway's 30 s limit; lower timeoutMs or retries`,
      );
    }
  }
  if (problems.length > 0) throw new GatewayConfigError(stage, problems);
  return withPreflightRoutes(config);
}

/**
 * A browser's preflight (`OPTIONS`, no credentials) must reach the gateway's CORS answer. On API
 * Gateway an `ANY` route also matches `OPTIONS`, so behind an authorizer the preflight would get
 * API Gateway's own 401 with no CORS headers. For every such route that browsers may call (it has
 * CORS) a public `OPTIONS` route on the same path is added, unless the config declares one; a route
 * with an explicit method needs none (its preflight falls through to the catch-all, which has no
 * authorizer). serverless.yml deploys these like any other route.
 */
export function preflightRoutes(config: Pick<GatewayConfig, "routes" | "cors">): string[] {
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

function withPreflightRoutes(config: GatewayConfig): GatewayConfig {
  const added = preflightRoutes(config);
  if (added.length === 0) return config;
  const route = v.parse(RouteSchema, { auth: "public" });
  return { ...config, routes: { ...config.routes, ...Object.fromEntries(added.map((key) => [key, route])) } };
}
